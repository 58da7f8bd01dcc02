// `npm run bench:delivery`: the delivery phase of `npm run bench` alone, on a campaign seeded straight in
// SQL (no ingest, no send), against real `smsblast serve` and `smsblast delivery-worker` processes.
//
//   --sizes 100k,1M      recipients (one `delivered` report each)                         default 100k
//   --rate N             callbacks/s, open loop (0: closed loop at --concurrency)          default 200
//   --concurrency N      posters in the closed loop / cap in flight in the open loop       default 16 / 256
//   --rows N             rows per callback                                                 default 100
//   --apply-batch N      DELIVERY_APPLY_BATCH of the delivery worker                       default: the config's
//   --sequential         receiver alone first (no applier running), then the applier alone on what was stored
//   --warmup N           callbacks re-sent before the measured ones (server warm-up)      default 2 s' worth
//
// Uses the database smsblast_bench_delivery (dropped and re-created; env BENCH_DELIVERY_DATABASE_URL) and the
// Redis prefix {smsblast-bench-delivery}. Prints one JSON line per size with every figure and the load average.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import os from "node:os";
import pg from "pg";
import { createRedisConnection } from "../src/queue/redis.ts";
import { releaseQueuePrefix } from "../src/queue/deployment-claim.ts";
import { formatSettings, postgresSettings, recreateDatabase } from "./bench/db.ts";
import { formatCpuLine, judgeBottleneck } from "./bench/report.ts";
import {
  countRecipients,
  failIfExited,
  percentile,
  postDeliveryCallbacks,
  waitForAllDelivered,
  type DeliveryPhaseDeps,
} from "./bench/delivery-phase.ts";
import {
  ChildSet,
  freePort,
  postgresOf,
  PROJECT_ROOT,
  ProcessSampler,
  waitForHttp,
  type ChildHandle,
} from "./bench/processes.ts";

interface Options {
  sizes: number[];
  rate: number;
  concurrency?: number;
  rows: number;
  applyBatch?: number;
  sequential: boolean;
  warmup?: number;
}

function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(text.trim());
  if (!m) throw new Error(`bad size "${text}" (e.g. 100000, 100k, 1M)`);
  const f = m[2]?.toLowerCase() === "k" ? 1_000 : m[2]?.toLowerCase() === "m" ? 1_000_000 : 1;
  return Math.round(Number(m[1]) * f);
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { sizes: [100_000], rate: 200, rows: 100, sequential: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    const int = (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${arg} must be a non-negative integer, got "${v}"`);
      return n;
    };
    if (arg === "--sizes") opts.sizes = value().split(",").map(parseSize);
    else if (arg === "--rate") opts.rate = int(value());
    else if (arg === "--concurrency") opts.concurrency = int(value());
    else if (arg === "--rows") opts.rows = int(value());
    else if (arg === "--apply-batch") opts.applyBatch = int(value());
    else if (arg === "--sequential") opts.sequential = true;
    else if (arg === "--warmup") opts.warmup = int(value());
    else throw new Error(`unknown option ${arg} (see the comment at the top of scripts/bench-delivery.ts)`);
  }
  return opts;
}

const children = new ChildSet();
const sampler = new ProcessSampler(100);
const log = (message: string) => console.log(message);
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");

/** p50 and p99 of smsblast_delivery_callback_duration_seconds, as the upper bound of their bucket (ms). */
function serverQuantiles(metrics: string): { p50Ms: number; p99Ms: number; count: number } {
  const buckets = [
    ...metrics.matchAll(/smsblast_delivery_callback_duration_seconds_bucket\{le="([^"]+)"\} (\d+)/g),
  ].map((m) => ({ le: m[1] === "+Inf" ? Infinity : Number(m[1]) * 1000, n: Number(m[2]) }));
  const count = buckets[buckets.length - 1]?.n ?? 0;
  const at = (p: number) => buckets.find((b) => b.n >= p * count)?.le ?? Infinity;
  return { p50Ms: at(0.5), p99Ms: at(0.99), count };
}

/** A completed campaign whose recipients are all `accepted`, in batches of 1000, as a real send leaves them. */
async function seedCampaign(pool: pg.Pool, size: number): Promise<string> {
  await pool.query(
    `TRUNCATE campaigns, batches, recipients, delivery_events, callback_nonces RESTART IDENTITY CASCADE`,
  );
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO campaigns (name, template_id, status, recipient_count, batch_count, accepted_count)
     VALUES ('bench delivery', 'tpl', 'completed', $1::int, ceil($1::int / 1000.0), $1::int) RETURNING id`,
    [size],
  );
  const id = rows[0]!.id;
  await pool.query(
    `INSERT INTO batches (campaign_id, sequence, size, idempotency_key, state)
     SELECT $1::uuid, s, least(1000, $2::int - (s - 1) * 1000), $1::text || ':' || s, 'sent' FROM generate_series(1, ceil($2::int / 1000.0)::int) s`,
    [id, size],
  );
  // As a send leaves them: rows as planned (pending), accepted through their sent batch (recipient-state.ts).
  await pool.query(
    `INSERT INTO recipients (campaign_id, batch_sequence, phone, row_number, state)
     SELECT $1, (i - 1) / 1000 + 1, '+659' || lpad(i::text, 7, '0'), i, 'pending' FROM generate_series(1, $2::int) i`,
    [id, size],
  );
  await pool.query(`VACUUM ANALYZE recipients`);
  await pool.query(`CHECKPOINT`).catch(() => {});
  return id;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: PROJECT_ROOT, stdio: "inherit" });
  const databaseUrl =
    process.env.BENCH_DELIVERY_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/smsblast_bench_delivery";
  const redisUrl = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
  const prefix = "{smsblast-bench-delivery}";
  await recreateDatabase(databaseUrl);
  const redis = createRedisConnection(redisUrl, "producer");
  await releaseQueuePrefix(redis, prefix);
  redis.disconnect();
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 3, application_name: "smsblast-bench" });
  pool.on("error", () => {});
  sampler.watch("bench", process.pid);
  sampler.watchGroup("postgres", /^postgres$/, postgresOf("smsblast_bench_delivery"));
  sampler.start();
  const settings = await postgresSettings(pool);
  log(`postgres settings: ${formatSettings(settings)}`);
  const username = "bench";
  const secret = randomBytes(16).toString("hex");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: prefix,
    CALLBACK_USERNAME: username,
    CALLBACK_SECRET: secret,
    API_HOST: "127.0.0.1",
    LOG_LEVEL: "warn",
    ...(opts.applyBatch === undefined ? {} : { DELIVERY_APPLY_BATCH: String(opts.applyBatch) }),
  };
  try {
    for (const size of opts.sizes) {
      const campaignId = await seedCampaign(pool, size);
      log(`[${size}] seeded ${size} accepted recipients; load ${load()}`);
      const port = await freePort();
      // The API's own /metrics (METRICS_PORT, API only): the server-side callback duration histogram.
      const metricsPort = await freePort();
      const api = children.spawnTs("api", "src/cli/main.ts", ["serve", "--port", String(port)], {
        ...env,
        METRICS_PORT: String(metricsPort),
      });
      sampler.watch("api", api.pid);
      let applier: ChildHandle | undefined;
      const startApplier = () => {
        applier = children.spawnTs("delivery-worker", "src/cli/main.ts", ["delivery-worker"], env);
        sampler.watch("delivery-worker", applier.pid);
      };
      if (!opts.sequential) startApplier();
      const deps: DeliveryPhaseDeps = {
        pool,
        campaignId,
        apiUrl: `http://127.0.0.1:${port}`,
        username,
        secret,
        alive: failIfExited(() => [api, applier], "during the benchmark"),
        log,
        rowsPerCallback: opts.rows,
        concurrency: opts.concurrency,
        callbacksPerSecond: opts.rate === 0 ? undefined : opts.rate,
        timeoutMs: 30 * 60_000,
        warmupCallbacks: opts.warmup ?? (opts.rate === 0 ? 200 : 2 * opts.rate),
      };
      try {
        await waitForHttp(`${deps.apiUrl}/healthz`, api, 60_000);
        // The applier is up (its process has loaded and connected) before the first callback.
        if (applier) await new Promise((resolve) => setTimeout(resolve, 3_000));
        const loadBefore = load();
        sampler.beginWindow();
        const posted = await postDeliveryCallbacks(deps);
        const postWindow = sampler.endWindow();
        // From here on the applier's share is its own: in --sequential mode it is the applier alone.
        sampler.beginWindow({ resetPeaks: false });
        const loadAfterPost = load();
        const server = serverQuantiles(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text());
        const latencies = posted.latencies.sort((a, b) => a - b);
        const receive = {
          callbacks: posted.callbacks,
          reports: posted.reports,
          warmupCallbacks: posted.warmupCallbacks,
          postSeconds: (posted.postedAt - posted.startedAt) / 1000,
          callbacksPerSecond: posted.callbacks / ((posted.postedAt - posted.startedAt) / 1000),
          p50Ms: percentile(latencies, 0.5),
          p90Ms: percentile(latencies, 0.9),
          p99Ms: percentile(latencies, 0.99),
          maxMs: latencies[latencies.length - 1] ?? 0,
          server,
          cores: postWindow.cores,
          machineBusyCores: postWindow.machineBusyCores,
          machineStealCores: postWindow.machineStealCores,
        };
        log(
          `[${size}] callbacks ${receive.callbacks} at ${receive.callbacksPerSecond.toFixed(0)}/s: p50 ${receive.p50Ms.toFixed(1)} ms, p90 ${receive.p90Ms.toFixed(1)}, p99 ${receive.p99Ms.toFixed(1)} ms, max ${receive.maxMs.toFixed(0)} ms (applier ${opts.sequential ? "not running" : "running"}); ` +
            `server side (receipt → answer) p50 ≤ ${server.p50Ms} ms, p99 ≤ ${server.p99Ms} ms; load ${loadAfterPost}`,
        );
        let applyStartedAt = posted.startedAt;
        if (opts.sequential) {
          applyStartedAt = performance.now();
          startApplier();
        }
        const doneAt = await waitForAllDelivered(deps, size);
        const window = sampler.endWindow();
        // The applier's own span, from the database: first statement's start → last statement's start
        // (applied_at is the statement's now()), without process start-up or this script's polling.
        const { rows: span } = await pool.query<{ s: number | null }>(
          `SELECT extract(epoch FROM max(applied_at) - min(applied_at))::float8 AS s FROM delivery_events WHERE campaign_id = $1`,
          [campaignId],
        );
        const applierSpanSeconds = span[0]?.s ?? null;
        const applySeconds = (doneAt - applyStartedAt) / 1000;
        const result = {
          size,
          mode: opts.sequential ? "sequential" : "concurrent",
          rate: opts.rate,
          rows: opts.rows,
          applyBatch: opts.applyBatch ?? "default",
          receive,
          applySeconds,
          reportsPerSecond: size / applySeconds,
          applierSpanSeconds,
          applierReportsPerSecond: applierSpanSeconds ? size / applierSpanSeconds : null,
          drainAfterLastCallbackSeconds: (doneAt - posted.postedAt) / 1000,
          delivered: await countRecipients(pool, campaignId, "delivered"),
          // after the last callback was answered: the drain (the applier alone with --sequential)
          cores: window.cores,
          machineBusyCores: window.machineBusyCores,
          machineStealCores: window.machineStealCores,
          postgresSettings: settings,
          load: { before: loadBefore, afterPost: loadAfterPost, end: load() },
        };
        log(
          `[${size}] applied ${size} in ${applySeconds.toFixed(1)} s${opts.sequential ? " (applier process spawned → all delivered)" : " (first callback → all delivered)"}: ${result.reportsPerSecond.toFixed(0)} reports/s; ` +
            `${result.drainAfterLastCallbackSeconds.toFixed(1)} s after the last callback; applier statements spanned ${applierSpanSeconds?.toFixed(1) ?? "?"} s ` +
            `(${result.applierReportsPerSecond?.toFixed(0) ?? "?"} reports/s); load ${result.load.end}`,
        );
        log(formatCpuLine(judgeBottleneck(`[${size}] drain`, window, os.cpus().length)));
        console.log(JSON.stringify(result));
      } finally {
        if (applier) await children.stop(applier);
        await children.stop(api);
      }
    }
  } finally {
    sampler.stop();
    await children.stopAll(5_000);
    await pool.end().catch(() => {});
  }
}

process.once("SIGINT", () => {
  children.killAllNow();
  process.exit(130);
});
process.on("exit", () => children.killAllNow());

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`bench:delivery failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    children.killAllNow();
    process.exit(1);
  },
);
