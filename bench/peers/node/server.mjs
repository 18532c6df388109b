// peer_node: the seed's endpoints as a Node user would write them, as a
// peer of taskpoold in bench/run.  Node's http module and Promise.all; the
// CPU jobs go to a pool of worker_threads, one per core (pool.mjs), since
// on the event loop they would run one after the other.  No npm packages.
//
//	node bench/peers/node/server.mjs PORT	(listens on 127.0.0.1:PORT)
import http from 'node:http';
import os from 'node:os';
import { Pool } from './pool.mjs';

const N_DEFAULT = 30000000; // 1,857,859 primes, ~50 ms on one core in C
const N_MAX = 100000000; // the range count_primes.c accepts

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A task of ms milliseconds; a zero-length one is a resolved promise.
async function task(ms, result) {
  if (ms > 0) await sleep(ms);
  return result;
}

// A detached task must not end the request, nor crash the process.
function detach(promise) {
  promise.catch((err) => console.error('peer_node:', err));
}

const cores = os.availableParallelism?.() ?? os.cpus().length;
const pool = new Pool(cores, new URL('./worker.mjs', import.meta.url));

// ?n= as an integer in 1..N_MAX (default N_DEFAULT), or null.
function paramN(url) {
  const s = url.searchParams.get('n');
  if (s === null || s === '') return N_DEFAULT;
  if (!/^[0-9]+$/.test(s)) return null;
  const n = Number(s);
  return n >= 1 && n <= N_MAX ? n : null;
}

const routes = {
  '/tasks': async () => ({
    results: await Promise.all([task(1000, 'Task 1 done'), task(2000, 'Task 2 done')]),
  }),
  '/run-tasks': async () => {
    const first = task(1000, 'First result');
    detach(task(5000, 'Second result'));
    detach(task(3000, 'Third result'));
    return { result: await first };
  },
  '/tasks-zero': async () => ({
    results: await Promise.all([task(0, 'Task 1 done'), task(0, 'Task 2 done')]),
  }),
  '/tasks-cpu': async (n) => ({ results: await Promise.all([pool.run(n), pool.run(n)]) }),
  '/cpu-one': async (n) => ({ result: await pool.run(n) }),
};
const takesN = new Set(['/tasks-cpu', '/cpu-one']);

function send(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  const route = Object.hasOwn(routes, url.pathname) ? routes[url.pathname] : null;
  if (route === null) return send(res, 404, { detail: 'Not Found' });
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, 405, { detail: 'Method Not Allowed' });
  }
  let n;
  if (takesN.has(url.pathname) && (n = paramN(url)) === null) {
    return send(res, 400, { error: `n must be an integer from 1 to ${N_MAX}` });
  }
  send(res, 200, await route(n));
}

const port = Number(process.argv[2]);
if (process.argv.length !== 3 || !Number.isInteger(port) || port < 1 || port > 65535) {
  console.error('usage: node server.mjs PORT');
  process.exit(64);
}

// HTTP keep-alive is on by default (keepAliveTimeout 5 s).
const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    if (!res.headersSent) send(res, 500, { error: String(err) });
    else res.destroy();
  });
});
server.on('error', (err) => {
  console.error('peer_node:', err.message);
  process.exit(1);
});
server.listen({ port, host: '127.0.0.1', backlog: 16384 });

// Stop accepting and close idle connections; let requests in flight finish
// (the longest waits 2 s) for up to 3 s, then stop the workers and go.
function shutdown() {
  const grace = setTimeout(() => server.closeAllConnections(), 3000);
  server.close(() => {
    clearTimeout(grace);
    pool.close().finally(() => process.exit(0));
  });
  server.closeIdleConnections();
}
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
