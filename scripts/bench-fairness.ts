// `npm run bench:fairness`: fair sharing between campaigns and the priority lane of one-off sends, measured
// with real processes (the sandbox and N send workers are children; compiled when `npm run build` made dist/).
// This process launches the campaigns (launchCsvCampaign, as `smsblast send` does), polls PostgreSQL and times
// one-off sends through sendOneMessage with the deployment's rate gate, as the API's test send does.
//
//   1. a small campaign alone, then launched while a big one sends, with fair-share priorities and in FIFO
//      order (what the queue did before), each small run timed from its launch to its campaign's finished_at;
//   2. one-off sends (sequential, --one-off-loops at once) while a --blast campaign sends, and on an idle queue;
//   3. the same under a saturated SEND_RATE_LIMIT (--limited-size recipients at --limit requests/s);
//   4. the cost of BullMQ priorities: enqueueing 1000 batch jobs with and without them.
//
// Options (defaults in brackets): --big [500000] --small [2000] --blast [1000000] --workers [2]
// --concurrency [8] --latency-ms [50] --one-off-loops [4] --limit [20] --limited-size [300000] --no-fifo
// --scenarios [fair,blast,limit,enqueue] (a subset runs only those)
// Environment: BENCH_DATABASE_URL (a database named smsblast_bench*, re-created), BENCH_REDIS_URL.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { randomUUID } from "node:crypto";
import pg from "pg";
import { launchCsvCampaign } from "../src/campaigns/launch-campaign.ts";
import { sendOneMessage } from "../src/campaigns/send-one.ts";
import { loadConfig } from "../src/config/config.ts";
import { createLogger } from "../src/config/logger.ts";
import { createProviders } from "../src/engagelab/providers.ts";
import { releaseQueuePrefix } from "../src/queue/deployment-claim.ts";
import { RateGate } from "../src/queue/rate-gate.ts";
import { createRedisConnection } from "../src/queue/redis.ts";
import { createSendQueue, enqueueBatches } from "../src/queue/send-queue.ts";
import { openDatabase } from "../src/store/database.ts";
import { recreateDatabase } from "./bench/db.ts";
import { ChildSet, type ChildHandle } from "./bench/processes.ts";

const args = process.argv.slice(2);
const num = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const OPTS = {
  big: num("big", 500_000),
  small: num("small", 2_000),
  blast: num("blast", 1_000_000),
  workers: num("workers", 2),
  concurrency: num("concurrency", 8),
  latencyMs: num("latency-ms", 50),
  oneOffLoops: num("one-off-loops", 4),
  limit: num("limit", 20),
  limitedSize: num("limited-size", 300_000),
  fifo: !args.includes("--no-fifo"),
  scenarios: (args.includes("--scenarios") ? args[args.indexOf("--scenarios") + 1]! : "fair,blast,limit,enqueue").split(
    ",",
  ),
};
const run = (scenario: string) => OPTS.scenarios.includes(scenario);
const DATABASE_URL = process.env.BENCH_DATABASE_URL || "postgresql://postgres@127.0.0.1:5432/smsblast_bench_fairness";
const REDIS_URL = process.env.BENCH_REDIS_URL || "redis://127.0.0.1:6379";
const PREFIX = "{smsblast-bench-fairness}";

const log = (line: string) => console.error(`[bench:fairness ${new Date().toISOString().slice(11, 19)}] ${line}`);
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");
const children = new ChildSet();
process.once("exit", () => children.killAllNow());
process.once("SIGINT", () => process.exit(130));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

async function waitForHttp(url: string, child: ChildHandle): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (!child.isRunning()) throw new Error(`${child.name} exited:\n${child.stderr().slice(-2000)}`);
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await sleep(100);
  }
  throw new Error(`${child.name} not reachable at ${url}`);
}

const port = await freePort();
const sandboxUrl = `http://127.0.0.1:${port}`;
const baseEnv: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(SEND_|SANDBOX_|ENGAGELAB_|QUEUE_)/.test(k))),
  DATABASE_URL,
  REDIS_URL,
  QUEUE_PREFIX: PREFIX,
  ENGAGELAB_MESSAGES_URL: sandboxUrl,
  ENGAGELAB_SMS_URL: sandboxUrl,
  ENGAGELAB_OTP_URL: sandboxUrl,
  SEND_CONCURRENCY: String(OPTS.concurrency),
  RECONCILE_INTERVAL_MS: "0",
  LOG_LEVEL: "warn",
};
const config = loadConfig(baseEnv);
const logger = createLogger("warn");

await recreateDatabase(DATABASE_URL);
const db = openDatabase(DATABASE_URL);
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
const redis = createRedisConnection(REDIS_URL, "producer");
const queue = createSendQueue(redis, { prefix: PREFIX, attempts: 6, backoffMs: 1_000 });
await queue.obliterate({ force: true });
await releaseQueuePrefix(redis, PREFIX);
const tmp = await mkdtemp(path.join(os.tmpdir(), "smsblast-bench-fairness-"));
const registry = createProviders(config);

const sandbox = children.spawnTs(
  "sandbox",
  "src/cli/main.ts",
  ["sandbox", "--port", String(port), "--latency-ms", String(OPTS.latencyMs)],
  baseEnv,
);
await waitForHttp(`${sandboxUrl}/_sandbox/health`, sandbox);

let workers: ChildHandle[] = [];
async function startWorkers(extraEnv: NodeJS.ProcessEnv = {}): Promise<void> {
  await Promise.all(workers.map((w) => children.stop(w)));
  workers = Array.from({ length: OPTS.workers }, (_, i) =>
    children.spawnTs(`worker#${i}`, "workers/send-worker.ts", [], { ...baseEnv, LOG_LEVEL: "info", ...extraEnv }),
  );
  // Pino writes to stderr: ready once each has said so (queue bound, start-up reconcile done).
  for (let i = 0; i < 600 && !workers.every((w) => w.stderr().includes("send worker started")); i++) {
    for (const w of workers) if (!w.isRunning()) throw new Error(`${w.name} exited:\n${w.stderr().slice(-2000)}`);
    await sleep(50);
  }
}

let csvCount = 0;
let numberOffset = 0;
async function csvOf(rows: number): Promise<string> {
  const file = path.join(tmp, `list-${csvCount++}.csv`);
  const lines = ["phone"];
  for (let i = 0; i < rows; i++) lines.push(`+65${81_000_000 + ((numberOffset + i) % 17_000_000)}`);
  numberOffset += rows;
  await writeFile(file, lines.join("\n") + "\n");
  return file;
}

async function launch(rows: number, fifo = false): Promise<{ id: string; launchedAt: number; enqueuedAt: number }> {
  const file = await csvOf(rows);
  const launchedAt = Date.now();
  let enqueuedAt = 0;
  const campaign = await launchCsvCampaign(
    {
      db,
      log: logger,
      enqueue: async (id, batchIds) => {
        await enqueueBatches(queue, id, batchIds, { fifo });
        enqueuedAt = Date.now();
      },
    },
    {
      file,
      name: `bench ${rows}`,
      templateId: "1",
      params: { order: "A-1" },
      phoneColumn: "phone",
      provider: "messages",
      onUnknown: "at_most_once",
      batchSize: 1000,
      allowRepeat: true,
    },
  );
  return { id: campaign.campaignId, launchedAt, enqueuedAt };
}

interface CampaignRow {
  status: string;
  finished_at: Date | null;
  started_at: Date | null;
}
async function campaignRow(id: string): Promise<CampaignRow> {
  const { rows } = await pool.query<CampaignRow>(
    `SELECT status, started_at, finished_at FROM campaigns WHERE id = $1`,
    [id],
  );
  return rows[0]!;
}
async function waitDone(id: string, timeoutMs = 30 * 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = await campaignRow(id);
    if (row.status === "completed" && row.finished_at) return row.finished_at.getTime();
    if (row.status !== "running") throw new Error(`campaign ${id} ended ${row.status}`);
    if (Date.now() > deadline) throw new Error(`campaign ${id} not done in ${timeoutMs / 1000} s`);
    for (const w of workers) if (!w.isRunning()) throw new Error(`${w.name} exited:\n${w.stderr().slice(-2000)}`);
    await sleep(20);
  }
}
async function acceptedOf(id: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM recipient_outcomes WHERE campaign_id = $1 AND state = 'accepted'`,
    [id],
  );
  return rows[0]!.n;
}
/** Waits until the campaign is really sending: `fraction` of it accepted. */
async function waitSending(id: string, total: number, fraction: number): Promise<void> {
  for (;;) {
    if ((await acceptedOf(id)) >= total * fraction) return;
    await sleep(50);
  }
}
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

const results: Record<string, unknown> = { options: OPTS, cpus: os.cpus().length, node: process.version };
try {
  await startWorkers();
  log(
    `${OPTS.workers} workers × SEND_CONCURRENCY ${OPTS.concurrency}, sandbox at ${OPTS.latencyMs} ms; load ${load()}`,
  );

  // 1. Fairness.
  if (run("fair")) {
    const alone: number[] = [];
    for (let i = 0; i < 3; i++) {
      const small = await launch(OPTS.small);
      alone.push((await waitDone(small.id)) - small.launchedAt);
    }
    alone.sort((a, b) => a - b);
    const aloneMs = alone[1]!;
    log(`small ${OPTS.small} alone: ${alone.map(secs).join(", ")} (median ${secs(aloneMs)}); load ${load()}`);

    const shared = async (fifo: boolean) => {
      const big = await launch(OPTS.big, fifo);
      await waitSending(big.id, OPTS.big, 0.1);
      const small = await launch(OPTS.small, fifo);
      const smallDone = await waitDone(small.id);
      const bigAcceptedThen = await acceptedOf(big.id);
      const bigDone = await waitDone(big.id);
      const figures = {
        smallMs: smallDone - small.launchedAt,
        bigSendMs: bigDone - big.enqueuedAt,
        bigAcceptedWhenSmallDone: bigAcceptedThen,
        smallBeforeBig: smallDone < bigDone,
        load: load(),
      };
      log(
        `${fifo ? "FIFO" : "fair"}: small ${OPTS.small} launched at 10 % of big ${OPTS.big}: ${secs(figures.smallMs)} ` +
          `(bound 2 × alone + 5 s = ${secs(2 * aloneMs + 5_000)}), big sent in ${secs(figures.bigSendMs)}, ` +
          `big ${Math.round((100 * bigAcceptedThen) / OPTS.big)} % accepted when small was done; load ${figures.load}`,
      );
      return figures;
    };
    results.fairness = {
      smallAloneMs: alone,
      boundMs: 2 * aloneMs + 5_000,
      fair: await shared(false),
      ...(OPTS.fifo ? { fifo: await shared(true) } : {}),
    };
  }

  // 2. One-off sends: idle, then while a blast sends.
  const gate = new RateGate(redis, PREFIX, { requestsPerSecond: 0, perPlatform: {} });
  let oneOffN = 0;
  const oneOff = async (g: RateGate): Promise<number> => {
    const started = performance.now();
    const to = `+65${90_000_000 + oneOffN++}`;
    const result = await sendOneMessage(
      { db, log: logger, providers: registry.providers, providerTimeoutMs: config.engagelab.timeoutMs, gate: g },
      { to, templateId: "notification-template", params: {} },
    );
    if (result.state !== "accepted") throw new Error(`one-off ${result.state}: ${result.failureMessage ?? ""}`);
    return performance.now() - started;
  };
  const summary = (label: string, latencies: number[]) => {
    const sorted = [...latencies].sort((a, b) => a - b);
    const figures = {
      count: sorted.length,
      p50Ms: Math.round(pct(sorted, 50)),
      p99Ms: Math.round(pct(sorted, 99)),
      maxMs: Math.round(sorted.at(-1)!),
      load: load(),
    };
    log(
      `${label}: ${figures.count} one-off sends, p50 ${figures.p50Ms} ms, p99 ${figures.p99Ms} ms, max ${figures.maxMs} ms; load ${figures.load}`,
    );
    return figures;
  };
  const duringBlast = async (size: number, g: RateGate) => {
    const blast = await launch(size);
    await waitSending(blast.id, size, 0.02);
    let running = true;
    const done = waitDone(blast.id).finally(() => (running = false));
    const latencies: number[] = [];
    await Promise.all(
      Array.from({ length: OPTS.oneOffLoops }, async () => {
        while (running) latencies.push(await oneOff(g));
      }),
    );
    const blastDone = await done;
    return { latencies, blastSendMs: blastDone - blast.enqueuedAt };
  };
  if (run("blast")) {
    const idle: number[] = [];
    for (let i = 0; i < 100; i++) idle.push(await oneOff(gate));
    results.oneOffIdle = summary("idle queue", idle);

    const blast = await duringBlast(OPTS.blast, gate);
    results.oneOffDuringBlast = {
      ...summary(`while ${OPTS.blast} send (${secs(blast.blastSendMs)})`, blast.latencies),
      blastSendMs: blast.blastSendMs,
    };
  }

  // 3. A saturated global limit shared by both lanes.
  if (run("limit")) {
    await startWorkers({ SEND_RATE_LIMIT: String(OPTS.limit) });
    const limitedGate = new RateGate(redis, PREFIX, { requestsPerSecond: OPTS.limit, perPlatform: {} });
    const limited = await duringBlast(OPTS.limitedSize, limitedGate);
    results.oneOffUnderLimit = {
      ...summary(
        `SEND_RATE_LIMIT ${OPTS.limit}, while ${OPTS.limitedSize} send (${secs(limited.blastSendMs)})`,
        limited.latencies,
      ),
      blastSendMs: limited.blastSendMs,
    };
  }

  // 4. What priorities cost BullMQ: 1000 jobs (a 1M campaign) added, and added beside 100,000 prioritized ones.
  if (run("enqueue")) {
    const scratch = createSendQueue(redis, { prefix: "{smsblast-bench-fairness-scratch}", attempts: 1, backoffMs: 1 });
    const timeEnqueue = async (fifo: boolean) => {
      const t0 = performance.now();
      await enqueueBatches(
        scratch,
        "c",
        Array.from({ length: 1000 }, () => randomUUID()),
        { fifo },
      );
      return Math.round(performance.now() - t0);
    };
    const median = async (times: number, fifo: boolean, fresh: boolean) => {
      const runs: number[] = [];
      for (let i = 0; i < times; i++) {
        if (fresh) await scratch.obliterate({ force: true });
        runs.push(await timeEnqueue(fifo));
      }
      return runs.sort((x, y) => x - y)[Math.floor(times / 2)]!;
    };
    const fifoMs = await median(5, true, true);
    const fairMs = await median(5, false, true);
    await scratch.obliterate({ force: true });
    for (let i = 0; i < 100; i++) await timeEnqueue(false);
    const fairBesideMs = await median(5, false, false);
    await scratch.obliterate({ force: true });
    await scratch.close();
    results.enqueue1000 = { fifoMs, fairMs, fairBeside100kMs: fairBesideMs };
    log(
      `enqueue 1000 jobs (median of 5): FIFO ${fifoMs} ms, fair-share priorities ${fairMs} ms, beside 100k prioritized ${fairBesideMs} ms; load ${load()}`,
    );
  }

  console.log(JSON.stringify(results));
} finally {
  await children.stopAll();
  await registry.close();
  await queue.obliterate({ force: true }).catch(() => {});
  await queue.close();
  redis.disconnect();
  await pool.end();
  await db.close();
  await rm(tmp, { recursive: true, force: true });
}
