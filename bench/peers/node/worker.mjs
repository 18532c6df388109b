// A worker thread of server.mjs's pool: counts primes for each { n }
// it is sent, and answers { result } or { error }.
import { parentPort } from 'node:worker_threads';
import { countPrimes } from './sieve.mjs';

parentPort.on('message', ({ n }) => {
  try {
    parentPort.postMessage({ result: countPrimes(n) });
  } catch (err) {
    parentPort.postMessage({ error: String(err) });
  }
});
