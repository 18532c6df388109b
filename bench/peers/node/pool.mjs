// A small worker_threads pool, the way a Node user writes one without npm:
// one worker per core, one job per worker at a time, the others queued
// FIFO.  run(n) returns a promise of the worker's answer.
import { Worker } from 'node:worker_threads';

export class Pool {
  constructor(size, file) {
    this.file = file;
    this.idle = [];
    this.queue = []; // jobs waiting for a worker: { n, resolve, reject }
    this.pending = new Map(); // worker -> the job it runs
    this.closing = false;
    for (let i = 0; i < size; i++) this.spawn();
  }

  spawn() {
    const w = new Worker(this.file);
    w.on('message', (msg) => {
      const job = this.pending.get(w);
      this.pending.delete(w);
      if (msg.error !== undefined) job.reject(new Error(msg.error));
      else job.resolve(msg.result);
      this.release(w);
    });
    w.on('error', (err) => this.lost(w, err));
    w.on('exit', (code) => this.lost(w, new Error(`worker exited with ${code}`)));
    this.release(w);
  }

  // A worker died: fail its job, and replace it unless closing.
  lost(w, err) {
    const job = this.pending.get(w);
    if (!this.pending.delete(w) && !this.idle.includes(w)) return; // seen
    this.idle = this.idle.filter((x) => x !== w);
    if (job) job.reject(err);
    if (!this.closing) this.spawn();
  }

  release(w) {
    const job = this.queue.shift();
    if (job) this.start(w, job);
    else this.idle.push(w);
  }

  start(w, job) {
    this.pending.set(w, job);
    w.postMessage({ n: job.n });
  }

  run(n) {
    return new Promise((resolve, reject) => {
      const job = { n, resolve, reject };
      const w = this.idle.pop();
      if (w) this.start(w, job);
      else this.queue.push(job);
    });
  }

  close() {
    this.closing = true;
    const all = [...this.idle, ...this.pending.keys()];
    return Promise.all(all.map((w) => w.terminate()));
  }
}
