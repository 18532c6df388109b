// bench/queue.mjs - queue throughput on PostgreSQL: N trivial jobs
// submitted by C concurrent producers, claimed and completed by the
// workers, timed from the first submission to the last completion.
//
//   node bench/queue.mjs graphile URL N C WORKERS
//       graphile-worker in this process: WORKERS concurrent jobs, C
//       producers calling addJob() (one INSERT each), a no-op task.
//   node bench/queue.mjs taskpoold BASE_URL N C JOB
//       taskpoold instances (behind BASE_URL, which may be HAProxy): C
//       producers POSTing {"jobs": [{"job": JOB}], "wait": "none"}, keep-alive;
//       completion polled at GET /jobs?state=queued,running&limit=1.
//
// Prints one JSON line: {"submit_s", "total_s", "submitted_per_s",
// "completed_per_s", "jobs"}.  bench/run starts the database and the
// servers and calls this; graphile-worker comes from
// /opt/taskpoold-bench (tools/install-deps --bench).
import http from "node:http";
import { createRequire } from "node:module";

const [, , side, url, nArg, cArg, extra] = process.argv;
const N = Number(nArg), C = Number(cArg);

function now() {
	return Number(process.hrtime.bigint()) / 1e9;
}

async function producers(n, c, submitOne) {
	let next = 0;
	async function one() {
		while (next < n) {
			const i = next++;
			await submitOne(i);
		}
	}
	await Promise.all(Array.from({ length: c }, one));
}

function report(t0, tSubmitted, tDone) {
	console.log(JSON.stringify({
		jobs: N,
		submit_s: tSubmitted - t0,
		total_s: tDone - t0,
		submitted_per_s: N / (tSubmitted - t0),
		completed_per_s: N / (tDone - t0),
	}));
}

async function graphile() {
	const require = createRequire("/opt/taskpoold-bench/");
	const gw = require("graphile-worker");
	const workers = Number(extra || 4);
	let done = 0, finish;
	const allDone = new Promise((resolve) => { finish = resolve; });
	// The schema first, so that its migration is not timed.
	const utils = await gw.makeWorkerUtils({ connectionString: url });
	await utils.migrate();
	const runner = await gw.run({
		connectionString: url,
		concurrency: workers,
		noHandleSignals: true,
		pollInterval: 1000,
		logger: new gw.Logger(() => () => {}),
		taskList: {
			noop: async () => {
				if (++done === N)
					finish(now());
			},
		},
	});
	const t0 = now();
	await producers(N, C, (i) => utils.addJob("noop", { i }));
	const tSubmitted = now();
	const tDone = await allDone;
	report(t0, tSubmitted, tDone);
	await runner.stop();
	await utils.release();
}

function request(agent, method, path, body) {
	const u = new URL(path, url);
	return new Promise((resolve, reject) => {
		const req = http.request(u, {
			method, agent,
			headers: body ? { "content-type": "application/json",
					  "content-length": Buffer.byteLength(body) } : {},
		}, (res) => {
			let data = "";
			res.setEncoding("utf8");
			res.on("data", (d) => { data += d; });
			res.on("end", () => resolve({ status: res.statusCode, data }));
		});
		req.on("error", reject);
		req.end(body);
	});
}

async function taskpoold() {
	const job = extra || "noop";
	const agent = new http.Agent({ keepAlive: true, maxSockets: C });
	const body = JSON.stringify({ jobs: [{ job }], wait: "none" });
	let errors = 0;
	const t0 = now();
	await producers(N, C, async () => {
		const r = await request(agent, "POST", "/jobs", body);
		if (r.status !== 202 && r.status !== 200)
			errors++;
	});
	const tSubmitted = now();
	if (errors > 0) {
		console.error(`queue.mjs: ${errors} submissions refused`);
		process.exit(1);
	}
	// Done when no job is queued or running any more.
	for (;;) {
		const r = await request(agent, "GET",
					"/jobs?state=queued,running&limit=1");
		if (r.status === 200 && JSON.parse(r.data).jobs.length === 0)
			break;
		await new Promise((res) => setTimeout(res, 5));
	}
	report(t0, tSubmitted, now());
	agent.destroy();
}

if (side === "graphile")
	await graphile();
else if (side === "taskpoold")
	await taskpoold();
else {
	console.error("usage: node bench/queue.mjs graphile|taskpoold URL N C X");
	process.exit(64);
}
