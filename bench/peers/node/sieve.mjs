// The CPU job of the benchmark: the primes <= n, counted with
// examples/plugins/count_primes.c's segmented sieve (segments of 32 KiB,
// which fit in L1; sieving primes up to 10,000).  Imported by the worker
// threads of server.mjs; plain JavaScript, no dependencies.

const SEGMENT = 32768;

// The primes up to limit, by a plain sieve.
function smallPrimes(limit) {
  const composite = new Uint8Array(limit + 1);
  const primes = [];
  for (let i = 2; i <= limit; i++) {
    if (composite[i]) continue;
    primes.push(i);
    for (let j = i * i; j <= limit; j += i) composite[j] = 1;
  }
  return primes;
}

// The primes in [low, low + mark.length).
function countSegment(low, primes, mark) {
  const len = mark.length;
  let found = 0;
  mark.fill(0);
  for (const p of primes) {
    if (p * p >= low + len) break;
    let start = Math.floor((low + p - 1) / p) * p;
    if (start < p * p) start = p * p;
    for (let i = start - low; i < len; i += p) mark[i] = 1;
  }
  for (let i = 0; i < len; i++) {
    if (mark[i] === 0 && low + i >= 2) found++;
  }
  return found;
}

export function countPrimes(n) {
  const primes = smallPrimes(10000);
  const buf = new Uint8Array(SEGMENT);
  let total = 0;
  for (let low = 0; low <= n; low += SEGMENT) {
    const len = Math.min(n - low + 1, SEGMENT);
    total += countSegment(low, primes, len === SEGMENT ? buf : buf.subarray(0, len));
  }
  return { n, primes: total };
}
