import { randomBytes } from "node:crypto";
// `npm run bench`: ingest, send and end-to-end figures of smsblast on this machine, each beside its ceiling
// (a bare COPY, the sandbox driven by a bare HTTP client) and the naive baseline, with the peak RSS of every
// process and a CPU-share reading of which one limited each phase. `npm run bench -- --help` for options.
//
// Every process doing measured work is a child (`node --import tsx …`): the sandbox provider, the
// producer (scripts/bench/ingest-child.ts), N send workers (workers/send-worker.ts), the bare sandbox
// client and the naive baseline; this process only orchestrates, polls Postgres and samples /proc.
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { runDeliveryPhase, type DeliveryPhaseResult } from "./bench/delivery-phase.ts";
import { createRedisConnection, type RedisConnection } from "../src/queue/redis.ts";
import { releaseQueuePrefix } from "../src/queue/deployment-claim.ts";
import { createSendQueue, SEND_QUEUE_NAME } from "../src/queue/send-queue.ts";
import { cycleFigures, type CycleFigures } from "./bench/job-events.ts";
import { PgActivitySampler, type ActivityReport } from "./bench/pg-activity.ts";
import {
  copyCeiling,
  recreateDatabase,
  resetCampaignData,
  sendFigures,
  waitForCampaignEnd,
  waitForFirstClaim,
  type SendFigures,
} from "./bench/db.ts";
import { generateBenchCsv } from "./bench/generate-csv.ts";
import { parseOptions, USAGE, type BenchOptions } from "./bench/options.ts";
import {
  ChildSet,
  lastJsonLine,
  PROJECT_ROOT,
  postgresOf,
  ProcessSampler,
  freePort,
  waitForExit,
  waitForHttp,
  waitForOutput,
  type ChildHandle,
  type WindowReport,
} from "./bench/processes.ts";
import {
  check,
  fmtInt,
  fmtMb,
  fmtRate,
  fmtRatio,
  fmtSec,
  fmtSize,
  formatCpuLine,
  formatTable,
  judgeBottleneck,
  type Bottleneck,
  type Row,
} from "./bench/report.ts";

const TARGETS = {
  ingest1MSeconds: 15,
  peakRssMb: 200,
  sendPerSecond: 50_000,
  endToEnd1MSeconds: 30,
  vsNaive: 20,
};

interface IngestResult {
  campaignId: string;
  rows: number;
  recipients: number;
  rejected: number;
  duplicates: number;
  batches: number;
  seconds: number;
  stageMs: number;
  planMs: number;
  enqueueMs: number;
  stageCpuCores: number;
  startedAtMs: number;
  startupMs: number;
  rowsPerSecond: number;
  peakRssMb: number;
  baselineRssMb: number;
  atPeakMb: Record<string, number>;
}

interface SandboxCeiling {
  concurrency: number;
  seconds: number;
  numbersPerRequest: number;
  requests: number;
  errors: number;
  numbersPerSecond: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

interface NaiveResult {
  rowsDone: number;
  recipients: number;
  seconds: number;
  rowsPerSecond: number;
  extrapolated: boolean;
  stoppedBy: string;
  projectedSecondsForAll: number;
}

interface SandboxStats {
  accepted: { messages: number };
  duplicates: number;
  uniqueNumbers: number;
  errors: number;
}

interface SizeResult {
  delivery?: DeliveryPhaseResult;
  size: number;
  csvBytes: number;
  generateSeconds: number;
  copy: { rows: number; seconds: number; rowsPerSecond: number };
  ingest: IngestResult & { cpu: Bottleneck };
  queuedJobs: number;
  send: SendFigures & {
    cycle: CycleFigures | undefined;
    pgActivity: ActivityReport;
    workerStartupSeconds: number;
    workerPeakRssMb: Record<string, number>;
    sandboxPeakRssMb: number;
    sandboxAccepted: number;
    sandboxReceivedTwice: number;
    cpu: Bottleneck;
  };
  endToEnd: {
    seconds: number;
    fromLaunchSeconds: number;
    producerPeakRssMb: number;
    producerSeconds: number;
    sendAfterIngestSeconds: number;
    workerPeakRssMb: Record<string, number>;
    sandboxReceivedTwice: number;
    cpu: Bottleneck;
  };
  naive?: NaiveResult;
}

const children = new ChildSet();
/** Removed on every way out, also Ctrl-C (where `finally` blocks do not run). */
let tmpToRemove: string | undefined;
const sampler = new ProcessSampler(100);

async function main(): Promise<void> {
  const parsed = parseOptions(process.argv.slice(2));
  // Children run the compiled build when present: build it now so it matches the source.
  execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: PROJECT_ROOT, stdio: "inherit" });
  if (parsed === "help") {
    console.log(USAGE);
    return;
  }
  const opts = parsed;
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    totalMemoryMb: Math.round(os.totalmem() / 1048576),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    postgres: "",
    redis: "",
  };
  const started = new Date();
  log(
    `smsblast bench: sizes ${opts.sizes.map(fmtSize).join(", ")}; ${opts.workers} workers × SEND_CONCURRENCY ${opts.concurrency}; sandbox latency ${opts.latencyMs} ms`,
  );
  log(`machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.totalMemoryMb} MB, node ${machine.node}`);

  sampler.watch("bench", process.pid);
  sampler.watchGroup("postgres", /^postgres$/, postgresOf(new URL(opts.databaseUrl).pathname.slice(1)));
  sampler.watchGroup("redis", /^redis-server$/);
  sampler.start();

  await recreateDatabase(opts.databaseUrl);
  const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: 3, application_name: "smsblast-bench" });
  pool.on("error", () => {});
  const redis = createRedisConnection(opts.redisUrl, "producer");
  const queue = createSendQueue(redis, { prefix: opts.queuePrefix, attempts: 6, backoffMs: 1000 });
  const tmp = await mkdtemp(path.join(os.tmpdir(), "smsblast-bench-"));
  if (!opts.keepCsv) tmpToRemove = tmp;
  try {
    machine.postgres =
      ((await pool.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]?.v ?? "").split(
        " ",
      )[0] ?? "";
    machine.redis = /redis_version:(\S+)/.exec(await redis.info("server"))?.[1] ?? "";
    await queue.obliterate({ force: true });
    // The bench database was just re-created: a new deployment takes the bench's prefix.
    await releaseQueuePrefix(redis, opts.queuePrefix);
    log(`database smsblast_bench re-created and migrated (postgres ${machine.postgres}, redis ${machine.redis})`);

    // The sandbox, in its own process, shared by the ceiling run and every send.
    const port = await freePort();
    const sandboxUrl = `http://127.0.0.1:${port}`;
    const env = childEnv(opts, sandboxUrl);
    const sandbox = children.spawnTs(
      "sandbox",
      "src/cli/main.ts",
      ["sandbox", "--port", String(port), "--latency-ms", String(opts.latencyMs)],
      env,
    );
    sampler.watch("sandbox", sandbox.pid);
    await waitForHttp(`${sandboxUrl}/_sandbox/health`, sandbox, 30_000);

    // Ceiling: the sandbox alone, driven by a bare undici client at the workers' total concurrency.
    sampler.beginWindow();
    const ceilingChild = children.spawnTs(
      "sandbox-ceiling",
      "scripts/bench/sandbox-ceiling-child.ts",
      [sandboxUrl, String(opts.ceilingConcurrency), String(opts.ceilingSeconds), "1000"],
      env,
    );
    sampler.watch("ceiling-client", ceilingChild.pid);
    await waitForExit(ceilingChild, (opts.ceilingSeconds + 60) * 1000);
    const ceilingCpu = judgeBottleneck("sandbox ceiling", sampler.endWindow(), machine.cpus);
    const sandboxCeiling = lastJsonLine<SandboxCeiling>(ceilingChild);
    const latencyBound =
      opts.latencyMs > 0 ? Math.round((opts.ceilingConcurrency * 1000 * 1000) / opts.latencyMs) : Infinity;
    log(
      `sandbox ceiling: ${fmtRate(sandboxCeiling.numbersPerSecond)} numbers (${fmtRate(sandboxCeiling.requestsPerSecond)} requests, p50 ${sandboxCeiling.p50Ms} ms, p99 ${sandboxCeiling.p99Ms} ms; latency bound ${fmtRate(latencyBound)})`,
    );
    await resetSandbox(sandboxUrl);

    const results: SizeResult[] = [];
    for (const size of opts.sizes) {
      results.push(
        await benchSize(size, opts, { pool, redis, queue, env, sandbox, sandboxUrl, tmp, cpus: machine.cpus }),
      );
    }

    const { rows, notes } = buildTable(results, sandboxCeiling, latencyBound, opts);
    const bottlenecks = [ceilingCpu, ...results.flatMap((r) => [r.ingest.cpu, r.send.cpu, r.endToEnd.cpu])];
    console.log("");
    console.log(formatTable(rows));
    for (const note of notes) console.log(`  ${note}`);
    console.log("\nCPU during each phase (cores; 1.0 = one core busy):");
    for (const b of bottlenecks) console.log(formatCpuLine(b));

    const outDir = path.join(PROJECT_ROOT, "bench-results");
    await mkdir(outDir, { recursive: true });
    const file = path.join(outDir, `bench-${started.toISOString().replace(/[:.]/g, "-")}.json`);
    await writeFile(
      file,
      JSON.stringify(
        {
          startedAt: started.toISOString(),
          finishedAt: new Date().toISOString(),
          machine,
          options: { ...opts, databaseUrl: redactUrl(opts.databaseUrl), redisUrl: redactUrl(opts.redisUrl) },
          targets: TARGETS,
          ceilings: { sandbox: { ...sandboxCeiling, latencyBoundNumbersPerSecond: latencyBound, cpu: ceilingCpu } },
          results,
          table: rows,
          notes,
        },
        null,
        2,
      ),
    );
    console.log(`\nresults written to ${path.relative(process.cwd(), file)}`);
  } finally {
    sampler.stop();
    await children.stopAll(5_000);
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close().catch(() => {});
    redis.disconnect();
    await pool.end().catch(() => {});
    if (!opts.keepCsv) await rm(tmp, { recursive: true, force: true });
    else log(`CSV files kept in ${tmp}`);
  }
}

interface Shared {
  pool: pg.Pool;
  redis: RedisConnection;
  queue: ReturnType<typeof createSendQueue>;
  env: NodeJS.ProcessEnv;
  sandbox: ChildHandle;
  sandboxUrl: string;
  tmp: string;
  cpus: number;
}

async function benchSize(size: number, opts: BenchOptions, s: Shared): Promise<SizeResult> {
  const label = fmtSize(size);
  const csv = path.join(s.tmp, `bench-${label}.csv`);
  const generateStarted = performance.now();
  await generateBenchCsv(csv, size);
  const generateSeconds = (performance.now() - generateStarted) / 1000;
  const csvBytes = (await stat(csv)).size;
  log(
    `\n[${label}] CSV generated: ${fmtInt(size)} rows, ${(csvBytes / 1048576).toFixed(1)} MB in ${fmtSec(generateSeconds)}`,
  );

  // Ceiling: the same rows COPYed straight into a temp table.
  const copy = await copyCeiling(opts.databaseUrl, csv);
  log(`[${label}] COPY ceiling: ${fmtRate(copy.rowsPerSecond)} (${fmtSec(copy.seconds)})`);

  // Budgets: generous, but every wait ends.
  const ingestTimeoutMs = 60_000 + size * 0.5;
  const sendTimeoutMs = 60_000 + size * 0.5;

  // 1. Ingest alone: no worker running, the jobs wait in Redis.
  await resetCampaignData(s.pool);
  await s.queue.obliterate({ force: true });
  sampler.beginWindow();
  const producer = children.spawnTs(`producer ${label}`, "scripts/bench/ingest-child.ts", [csv], s.env);
  sampler.watch("producer", producer.pid);
  await waitForOutput(producer, "launching", 60_000);
  sampler.beginWindow({ resetPeaks: false }); // CPU from the launch call on; RSS peaks since spawn
  await waitForExit(producer, ingestTimeoutMs);
  const ingestWindow = sampler.endWindow();
  const ingestCpu = judgeBottleneck(`ingest ${label}`, ingestWindow, s.cpus);
  const ingest = lastJsonLine<IngestResult>(producer);
  // Ingest is two steps in sequence, so a window average hides which one is limited: say it per step.
  const backendCoreSeconds = (ingestWindow.busiestProcess.postgres ?? 0) * ingestWindow.seconds;
  ingestCpu.verdict =
    `stage ${fmtSec(ingest.stageMs / 1000)}: producer at ${ingest.stageCpuCores} cores` +
    (ingest.stageCpuCores >= 0.85 ? " (its main thread is the limit: CSV parsing + normalisation)" : "") +
    `; plan ${fmtSec(ingest.planMs / 1000)}: one Postgres backend (${backendCoreSeconds.toFixed(1)} core·s in the window) runs the de-dup/plan SQL` +
    `; window: ${ingestCpu.verdict}`;
  const counts = await s.queue.getJobCounts("wait", "prioritized", "delayed", "active");
  const queuedJobs = Object.values(counts).reduce((a, b) => a + b, 0);
  log(
    `[${label}] ingest: ${fmtRate(ingest.rowsPerSecond)} (${fmtSec(ingest.seconds)}: stage ${ingest.stageMs} ms with the producer at ${ingest.stageCpuCores} cores, plan ${ingest.planMs} ms, enqueue ${ingest.enqueueMs} ms), ` +
      `${fmtInt(ingest.recipients)} recipients, ${fmtInt(ingest.batches)} batches (${fmtInt(queuedJobs)} jobs waiting), producer peak RSS ${fmtMb(ingest.peakRssMb)}`,
  );
  if (queuedJobs !== ingest.batches)
    throw new Error(`expected ${ingest.batches} jobs waiting in Redis, found ${queuedJobs}`);

  // 2. Send: start N workers on the waiting jobs; first claim → last batch recorded, from Postgres.
  await resetSandbox(s.sandboxUrl);
  sampler.beginWindow();
  const spawnedAt = Date.now();
  const workers: ChildHandle[] = [];
  for (let i = 1; i <= opts.workers; i++) {
    const w = children.spawnTs(`worker#${i}`, "workers/send-worker.ts", [], s.env);
    sampler.watch(`worker#${i}`, w.pid);
    workers.push(w);
  }
  const alive = () => {
    for (const c of [...workers, s.sandbox]) {
      if (!c.isRunning()) throw new Error(`${c.name} exited during the run:\n${c.stderr().slice(-3000)}`);
    }
  };
  try {
    // CPU shares of the send are taken from the first claim on, so module loading is not counted.
    await waitForFirstClaim(s.pool, ingest.campaignId, 60_000, alive);
    sampler.beginWindow({ resetPeaks: false });
    const activity = new PgActivitySampler(s.pool, new URL(opts.databaseUrl).pathname.slice(1), "smsblast-worker");
    activity.start();
    await waitForCampaignEnd(s.pool, ingest.campaignId, sendTimeoutMs, alive).finally(() => activity.stop());
    const pgActivity = activity.stop();
    const sendWindow = sampler.endWindow();
    const sendCpu = judgeBottleneck(`send ${label}`, sendWindow, s.cpus);
    const lockVerdict = lockContention(pgActivity);
    if (lockVerdict) sendCpu.verdict = `${lockVerdict}; ${sendCpu.verdict}`;
    const figures = await sendFigures(s.pool, ingest.campaignId);
    const cycle = await cycleFigures(
      s.redis,
      s.pool,
      opts.queuePrefix,
      SEND_QUEUE_NAME,
      ingest.campaignId,
      figures.seconds,
    );
    const ledger = await sandboxStats(s.sandboxUrl);
    const send = {
      ...figures,
      cycle,
      pgActivity,
      workerStartupSeconds: (figures.firstClaimAt.getTime() - spawnedAt) / 1000,
      workerPeakRssMb: workerPeaks(sendWindow, opts.workers),
      sandboxPeakRssMb: sendWindow.peakRssMb.sandbox ?? 0,
      sandboxAccepted: ledger.accepted.messages,
      sandboxReceivedTwice: ledger.duplicates,
      cpu: sendCpu,
    };
    log(
      `[${label}] send: ${fmtRate(send.recipientsPerSecond)} (${fmtInt(send.recipientsSent)} in ${fmtSec(send.seconds)}, ${send.batches} batches, ` +
        `p50 ${send.latencyP50Ms} ms, p99 ${send.latencyP99Ms} ms, retries ${send.retries}; claim → job completed p50 ${cycle?.p50Ms ?? "?"} ms, ` +
        `p99 ${cycle?.p99Ms ?? "?"} ms, ${cycle?.meanInFlight ?? "?"} batches in flight on average), workers up after ${fmtSec(send.workerStartupSeconds)}, ` +
        `worker peak RSS ${Object.values(send.workerPeakRssMb).map(fmtMb).join(" / ")}; sandbox accepted ${fmtInt(send.sandboxAccepted)}, twice ${send.sandboxReceivedTwice}`,
    );
    log(
      `[${label}] worker Postgres connections during the send (average of ${pgActivity.samples} samples): ` +
        Object.entries(pgActivity.average)
          .slice(0, 6)
          .map(([k, v]) => `${v} ${k}`)
          .join("; "),
    );
    if (send.sandboxAccepted !== ingest.recipients)
      log(`[${label}] WARNING: sandbox accepted ${send.sandboxAccepted} numbers for ${ingest.recipients} recipients`);

    // 3. End to end: the workers are already running; producer start → campaign completed.
    await resetCampaignData(s.pool);
    await resetSandbox(s.sandboxUrl);
    sampler.beginWindow();
    const e2eStart = Date.now();
    const producer2 = children.spawnTs(`producer ${label} (e2e)`, "scripts/bench/ingest-child.ts", [csv], s.env);
    sampler.watch("producer", producer2.pid);
    await waitForExit(producer2, ingestTimeoutMs);
    const ingest2 = lastJsonLine<IngestResult>(producer2);
    const end = await waitForCampaignEnd(s.pool, ingest2.campaignId, sendTimeoutMs, alive);
    const e2eWindow = sampler.endWindow();
    const finishedMs = end.finishedAt!.getTime();
    const ledger2 = await sandboxStats(s.sandboxUrl);
    const endToEnd = {
      seconds: (finishedMs - e2eStart) / 1000,
      fromLaunchSeconds: (finishedMs - ingest2.startedAtMs) / 1000,
      producerPeakRssMb: ingest2.peakRssMb,
      producerSeconds: ingest2.seconds,
      sendAfterIngestSeconds: (finishedMs - (ingest2.startedAtMs + ingest2.seconds * 1000)) / 1000,
      workerPeakRssMb: workerPeaks(e2eWindow, opts.workers),
      sandboxReceivedTwice: ledger2.duplicates,
      cpu: judgeBottleneck(`end-to-end ${label}`, e2eWindow, s.cpus),
    };
    log(
      `[${label}] end to end: ${fmtSec(endToEnd.seconds)} from producer spawn (${fmtSec(endToEnd.fromLaunchSeconds)} from the launch call; ` +
        `ingest ${fmtSec(endToEnd.producerSeconds)}, then ${fmtSec(endToEnd.sendAfterIngestSeconds)} until completed)`,
    );

    for (const w of workers) await children.stop(w);
    const delivery = opts.delivery ? await runDelivery(label, ingest2.campaignId, s) : undefined;
    let naive: NaiveResult | undefined;
    if (opts.naiveSize === size) naive = await runNaive(size, csv, opts, s);
    if (!opts.keepCsv) await rm(csv, { force: true });
    return {
      size,
      csvBytes,
      generateSeconds,
      copy,
      ingest: { ...ingest, cpu: ingestCpu },
      queuedJobs,
      send,
      endToEnd,
      delivery,
      naive,
    };
  } finally {
    for (const w of workers) await children.stop(w);
  }
}

/** The delivery phase against real `serve` and `delivery-worker` processes (scripts/bench/delivery-phase.ts). */
async function runDelivery(label: string, campaignId: string, s: Shared): Promise<DeliveryPhaseResult> {
  const port = await freePort();
  const username = "bench";
  const secret = randomBytes(16).toString("hex");
  const env = { ...s.env, CALLBACK_USERNAME: username, CALLBACK_SECRET: secret, API_HOST: "127.0.0.1" };
  const api = children.spawnTs("api", "src/cli/main.ts", ["serve", "--port", String(port)], env);
  const applier = children.spawnTs("delivery-worker", "src/cli/main.ts", ["delivery-worker"], env);
  sampler.watch("api", api.pid);
  sampler.watch("delivery-worker", applier.pid);
  try {
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, api, 60_000);
    sampler.beginWindow();
    const result = await runDeliveryPhase({
      pool: s.pool,
      campaignId,
      apiUrl: `http://127.0.0.1:${port}`,
      username,
      secret,
      alive: () => {
        for (const c of [api, applier])
          if (!c.isRunning())
            throw new Error(`${c.name} exited during the delivery phase:\n${c.stderr().slice(-3000)}`);
      },
      log,
      warmupCallbacks: 200,
    });
    const window = sampler.endWindow();
    result.serverPeakRssMb = window.peakRssMb.api;
    log(
      `[${label}] delivery: ${fmtInt(result.reports)} reports in ${fmtInt(result.callbacks)} callbacks, ` +
        `${fmtRate(result.callbacksPerSecond)} callbacks (p50 ${result.callbackP50Ms.toFixed(1)} ms, p99 ${result.callbackP99Ms.toFixed(1)} ms); ` +
        `applied ${fmtRate(result.reportsPerSecond)} reports (${fmtSec(result.applySeconds)}; the applier finished ${fmtSec(result.drainAfterLastCallbackSeconds)} after the last callback)`,
    );
    return result;
  } finally {
    await children.stop(applier);
    await children.stop(api);
  }
}

async function runNaive(size: number, csv: string, opts: BenchOptions, s: Shared): Promise<NaiveResult> {
  await resetCampaignData(s.pool);
  log(
    `[${fmtSize(size)}] naive baseline: one Prisma create + one queue.add per recipient (up to ${opts.naiveMaxSeconds} s)…`,
  );
  const child = children.spawnTs(
    "naive",
    "scripts/bench/naive-child.ts",
    [csv, String(size), String(opts.naiveMaxSeconds), "10000"],
    s.env,
  );
  await waitForExit(child, opts.naiveMaxSeconds * 1.5 * 1000 + 60_000);
  const naive = lastJsonLine<NaiveResult>(child);
  log(
    `[${fmtSize(size)}] naive: ${fmtRate(naive.rowsPerSecond)} over ${fmtInt(naive.rowsDone)} rows in ${fmtSec(naive.seconds)}` +
      (naive.extrapolated
        ? ` (stopped; all ${fmtInt(size)} rows would take ~${fmtSec(naive.projectedSecondsForAll)}, extrapolated)`
        : ""),
  );
  return naive;
}

function buildTable(
  results: SizeResult[],
  sandbox: SandboxCeiling,
  latencyBound: number,
  opts: BenchOptions,
): { rows: Row[]; notes: string[] } {
  const rows: Row[] = [];
  const notes: string[] = [];
  const row = (figure: string, value: string, ceiling = "", ratio = "", target = "", status = "") =>
    rows.push({ figure, value, ceiling, ratio, target, status });
  const largest = Math.max(...results.map((r) => r.size));
  for (const r of results) {
    const L = fmtSize(r.size);
    const is1M = r.size === 1_000_000;
    row(
      `ingest ${L}: rows/s`,
      fmtRate(r.ingest.rowsPerSecond),
      `COPY ${fmtRate(r.copy.rowsPerSecond)}`,
      fmtRatio(r.ingest.rowsPerSecond / r.copy.rowsPerSecond),
    );
    row(
      `ingest ${L}: time (stage/plan/enqueue)`,
      fmtSec(r.ingest.seconds),
      `${fmtSec(r.ingest.stageMs / 1000)} / ${fmtSec(r.ingest.planMs / 1000)} / ${fmtSec(r.ingest.enqueueMs / 1000)}`,
      "",
      is1M ? `≤ ${TARGETS.ingest1MSeconds} s` : "",
      is1M ? check(r.ingest.seconds <= TARGETS.ingest1MSeconds) : "",
    );
    row(
      `ingest ${L}: producer peak RSS`,
      fmtMb(r.ingest.peakRssMb),
      "",
      "",
      `≤ ${TARGETS.peakRssMb} MB`,
      check(r.ingest.peakRssMb <= TARGETS.peakRssMb),
    );
    row(
      `send ${L}: recipients/s`,
      fmtRate(r.send.recipientsPerSecond),
      `sandbox ${fmtRate(sandbox.numbersPerSecond)}`,
      fmtRatio(r.send.recipientsPerSecond / sandbox.numbersPerSecond),
      `≥ ${fmtInt(TARGETS.sendPerSecond)}/s`,
      check(r.send.recipientsPerSecond >= TARGETS.sendPerSecond),
    );
    row(
      `send ${L}: batch latency p50 / p99`,
      `${r.send.latencyP50Ms} / ${r.send.latencyP99Ms} ms`,
      `sandbox ${sandbox.p50Ms} / ${sandbox.p99Ms} ms`,
      fmtRatio(r.send.latencyP50Ms / Math.max(1, sandbox.p50Ms)),
    );
    if (r.send.cycle) {
      row(
        `send ${L}: claim → job completed p50 / p99`,
        `${r.send.cycle.p50Ms} / ${r.send.cycle.p99Ms} ms`,
        `in flight ${r.send.cycle.meanInFlight} of ${opts.workers * opts.concurrency}`,
        fmtRatio(r.send.cycle.meanInFlight / (opts.workers * opts.concurrency)),
      );
    }
    const peak = Math.max(...Object.values(r.send.workerPeakRssMb), ...Object.values(r.endToEnd.workerPeakRssMb));
    row(
      `send ${L}: worker peak RSS (each)`,
      `${Object.keys(r.send.workerPeakRssMb)
        .map((k) => Math.max(r.send.workerPeakRssMb[k] ?? 0, r.endToEnd.workerPeakRssMb[k] ?? 0))
        .join(" / ")} MB`,
      "",
      "",
      `≤ ${TARGETS.peakRssMb} MB`,
      check(peak <= TARGETS.peakRssMb),
    );
    if (r.delivery) {
      row(
        `delivery ${L}: reports applied/s`,
        fmtRate(r.delivery.reportsPerSecond),
        `${fmtInt(r.delivery.reports)} reports, applier done ${fmtSec(r.delivery.drainAfterLastCallbackSeconds)} after the last callback`,
        "",
        "≥ 100,000/s",
        check(r.delivery.reportsPerSecond >= 100_000),
      );
      row(
        `delivery ${L}: callback p50 / p99 (${r.delivery.rowsPerCallback} rows each)`,
        `${r.delivery.callbackP50Ms.toFixed(1)} / ${r.delivery.callbackP99Ms.toFixed(1)} ms`,
        `${fmtRate(r.delivery.callbacksPerSecond)} callbacks at ${r.delivery.concurrency} in flight`,
        "",
        "p99 ≤ 50 ms",
        check(r.delivery.callbackP99Ms <= 50),
      );
    }
    const serial = r.ingest.seconds + r.send.seconds;
    row(
      `end to end ${L}: wall`,
      fmtSec(r.endToEnd.seconds),
      `ingest+send ${fmtSec(serial)}`,
      fmtRatio(r.endToEnd.seconds / serial),
      is1M ? `≤ ${TARGETS.endToEnd1MSeconds} s` : "",
      is1M ? check(r.endToEnd.seconds <= TARGETS.endToEnd1MSeconds) : "",
    );
    if (r.naive) {
      const ratio = r.ingest.rowsPerSecond / r.naive.rowsPerSecond;
      row(
        `ingest ${L} vs naive baseline`,
        fmtRate(r.ingest.rowsPerSecond),
        `naive ${fmtRate(r.naive.rowsPerSecond)}${r.naive.extrapolated ? "*" : ""}`,
        fmtRatio(ratio),
        `≥ ${TARGETS.vsNaive}×`,
        check(ratio >= TARGETS.vsNaive),
      );
      if (r.naive.extrapolated) {
        notes.push(
          `* naive baseline timed on the first ${fmtInt(r.naive.rowsDone)} rows (${fmtSec(r.naive.seconds)}); the whole ${L} list would take ~${fmtSec(r.naive.projectedSecondsForAll)} (extrapolated)`,
        );
      }
    }
    if (r.send.sandboxReceivedTwice > 0 || r.endToEnd.sandboxReceivedTwice > 0 || r.send.notSentBatches > 0) {
      notes.push(
        `! ${L}: ${r.send.notSentBatches} batches not sent, numbers received twice: ${r.send.sandboxReceivedTwice} / ${r.endToEnd.sandboxReceivedTwice}`,
      );
    }
  }
  notes.push(
    `sandbox ceiling: bare undici client, ${sandbox.concurrency} × POST /v1/messages of ${sandbox.numbersPerRequest} numbers for ${sandbox.seconds} s at ${opts.latencyMs} ms latency; ` +
      `latency alone would allow ${fmtRate(latencyBound)} (${opts.workers} workers × ${opts.concurrency} in flight)`,
  );
  notes.push(
    `send = first batch claimed → last batch recorded (Postgres); end to end = producer process spawned → campaign completed, workers already running`,
  );
  notes.push(
    `batch latency = sent_at − claimed_at (sent_at is stamped when the recording transaction starts); claim → job completed adds recording and BullMQ (Redis event time)`,
  );
  if (!results.some((r) => r.size === 1_000_000))
    notes.push(
      `targets for 1M rows (ingest ≤ 15 s, end to end ≤ 30 s) not checked: no 1M run (largest ${fmtSize(largest)})`,
    );
  return { rows, notes };
}

/** A verdict when a good share of the workers' connections sit waiting on row locks (one hot row). */
function lockContention(activity: ActivityReport): string | undefined {
  const entries = Object.entries(activity.average);
  const total = entries.reduce((sum, [, v]) => sum + v, 0);
  const locked = entries.filter(([k]) => k.startsWith("waiting Lock/"));
  const lockedTotal = locked.reduce((sum, [, v]) => sum + v, 0);
  if (total === 0 || lockedTotal < 0.25 * total) return undefined;
  const [topKey, topValue] = locked.sort((a, b) => b[1] - a[1])[0]!;
  return (
    `Postgres row-lock queue: ${lockedTotal.toFixed(1)} of ${total.toFixed(1)} worker connections wait on locks on average ` +
    `(${topValue.toFixed(1)} in "${topKey.replace(/^waiting /, "")}"), so recording is serialised`
  );
}

function workerPeaks(window: WindowReport, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 1; i <= n; i++) out[`worker#${i}`] = window.peakRssMb[`worker#${i}`] ?? 0;
  return out;
}

function childEnv(opts: BenchOptions, sandboxUrl: string): NodeJS.ProcessEnv {
  const owned =
    /^(DATABASE_URL|REDIS_URL|QUEUE_PREFIX|ENGAGELAB_.*|SEND_.*|BATCH_SIZE|PROVIDER_TIMEOUT_MS|CUSTOM_PARALLELISM|DEFAULT_REGION|LOG_LEVEL|SANDBOX_.*|CSV_MAX_BYTES)$/;
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !owned.test(k)));
  return {
    ...env,
    DATABASE_URL: opts.databaseUrl,
    REDIS_URL: opts.redisUrl,
    QUEUE_PREFIX: opts.queuePrefix,
    ENGAGELAB_MESSAGES_URL: sandboxUrl,
    ENGAGELAB_SMS_URL: sandboxUrl,
    ENGAGELAB_OTP_URL: sandboxUrl,
    SEND_CONCURRENCY: String(opts.concurrency),
    LOG_LEVEL: "warn",
  };
}

async function resetSandbox(url: string): Promise<void> {
  const res = await fetch(`${url}/_sandbox/reset`, { method: "POST", signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`sandbox reset: HTTP ${res.status}`);
}

async function sandboxStats(url: string): Promise<SandboxStats> {
  const res = await fetch(`${url}/_sandbox/stats`, { signal: AbortSignal.timeout(10_000) });
  return (await res.json()) as SandboxStats;
}

function redactUrl(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = "***";
  return u.href;
}

function log(message: string): void {
  console.log(message);
}

// Children are killed on every way out: normal end (finally), an error, Ctrl-C, or process exit.
process.once("SIGINT", () => {
  children.killAllNow();
  process.exit(130);
});
process.once("SIGTERM", () => {
  children.killAllNow();
  process.exit(143);
});
process.on("exit", () => {
  children.killAllNow();
  if (tmpToRemove) rmSync(tmpToRemove, { recursive: true, force: true });
});

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    children.killAllNow();
    process.exit(1);
  },
);
