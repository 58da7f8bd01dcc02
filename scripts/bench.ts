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
import { Queue } from "bullmq";
import pg from "pg";
import { failIfExited, runDeliveryPhase, type DeliveryPhaseResult } from "./bench/delivery-phase.ts";
import { createRedisConnection, type RedisConnection } from "../src/queue/redis.ts";
import { releaseQueuePrefix } from "../src/queue/deployment-claim.ts";
import { createSendQueue, SEND_QUEUE_NAME } from "../src/queue/send-queue.ts";
import { cycleFigures, type CycleFigures } from "./bench/job-events.ts";
import { PgActivitySampler, type ActivityReport } from "./bench/pg-activity.ts";
import { checkLedgerAgainstRecipients, type LedgerCheck } from "./bench/ledger-check.ts";
import {
  copyCeiling,
  formatSettings,
  postgresSettings,
  recreateDatabase,
  resetCampaignData,
  sendFigures,
  formatBytesPerTable,
  storageAfterReports,
  storageFigures,
  timeBuckets,
  waitForCampaignEnd,
  waitForFirstClaim,
  type SendFigures,
  type StorageFigures,
} from "./bench/db.ts";
import { generateBenchCsv } from "./bench/generate-csv.ts";
import { parseOptions, USAGE, type BenchOptions } from "./bench/options.ts";
import {
  createPeerRecipients,
  dropPeerRecipients,
  PEER_QUEUE_NAME,
  peerQueuePrefix,
  waitForPeerDone,
} from "./bench/peer.ts";
import { rateFromCumulative, rateSeries, renderSvgPlot, type PlotSeries } from "./bench/plot.ts";
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
  type RssSeries,
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

/** NODE_OPTIONS of a deployed send worker (deploy/kubernetes/worker.yaml, docker-compose.yml). */
const DEPLOYED_WORKER_NODE_OPTIONS = "--max-old-space-size=96";

const TARGETS = {
  ingest1MSeconds: 15,
  peakRssMb: 200,
  sendPerSecond: 50_000,
  endToEnd1MSeconds: 30,
  // Issue 18: producer start → campaign completed at 1M, which takes sending while reading (send --stream).
  endToEndStreamed1MSeconds: 5,
  vsNaive: 20,
  // Issue 18: storage after a campaign, and producer RSS flat across sizes.
  bytesPerRecipient: 150,
  producerRssSpreadMb: 25,
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
  /** `send --stream` only: ms from the launch call to the first step's batches committed. */
  firstStepMs?: number | null;
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
  accepted: { messages: number; custom: number };
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
  /** The same with `send --stream`: batches queued while the list is read. */
  endToEndStreamed?: SizeResult["endToEnd"] & { firstStepMs?: number | null };
  naive?: NaiveResult;
  /** Bytes per recipient the end-to-end campaign leaves, before its delivery reports. */
  storage: StorageFigures;
  /** The same after the delivery phase (when it runs): on disk, and the reusable space in it after VACUUM. */
  storageAfterReports?: StorageFigures;
}

/** The peer design at one size, beside our send at the same size. */
interface PeerResult {
  size: number;
  design: string;
  workers: number;
  concurrencyPerWorker: number;
  jobs: number;
  sent: number;
  failed: number;
  /** Attempts that threw (retried, or the last one). */
  failedAttempts: number;
  /** First enqueue → last job completed (BullMQ's completed event in the peer workers). */
  seconds: number;
  enqueueSeconds: number;
  recipientsPerSecond: number;
  /** workers × concurrency requests in flight at the sandbox latency. */
  latencyBoundPerSecond: number;
  workerPeakRssMb: Record<string, number>;
  sandboxAccepted: number;
  sandboxReceivedTwice: number;
  cpu: Bottleneck;
  /** Our send (first claim → last batch recorded) at the same size; `inSizes` false: measured for this. */
  ours: { size: number; recipientsPerSecond: number; seconds: number; inSizes: boolean };
}

/** What --plot draws for one size: throughput series (s since origin, per second) and RSS per process. */
interface Timeline {
  size: number;
  originMs: number;
  marks: Array<{ atMs: number; label: string }>;
  throughput: PlotSeries[];
  rss: RssSeries[];
}

const children = new ChildSet();
/** Filled by benchSize for the plotted size when --plot is given. */
let timeline: Timeline | undefined;
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
    postgresSettings: {} as Record<string, string>,
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
    machine.postgresSettings = await postgresSettings(pool);
    await queue.obliterate({ force: true });
    // The bench database was just re-created: a new deployment takes the bench's prefix.
    await releaseQueuePrefix(redis, opts.queuePrefix);
    log(
      `database ${new URL(opts.databaseUrl).pathname.slice(1)} re-created and migrated (postgres ${machine.postgres}, redis ${machine.redis})`,
    );
    log(`postgres settings: ${formatSettings(machine.postgresSettings)}`);

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

    const shared: Shared = { pool, redis, queue, env, sandbox, sandboxUrl, tmp, cpus: machine.cpus };
    const results: SizeResult[] = [];
    for (const size of opts.sizes) results.push(await benchSize(size, opts, shared));
    const peer = opts.peerSize === undefined ? undefined : await runPeer(opts.peerSize, results, opts, shared);

    const { rows, notes } = buildTable(results, sandboxCeiling, latencyBound, opts, peer);
    const bottlenecks = [
      ceilingCpu,
      ...results.flatMap((r) => [
        r.ingest.cpu,
        r.send.cpu,
        r.endToEnd.cpu,
        ...(r.endToEndStreamed ? [r.endToEndStreamed.cpu] : []),
        ...(r.delivery?.drainCpu ? [r.delivery.drainCpu] : []),
      ]),
      ...(peer ? [peer.cpu] : []),
    ];
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
          peer,
          table: rows,
          notes,
        },
        null,
        2,
      ),
    );
    console.log(`\nresults written to ${path.relative(process.cwd(), file)}`);
    if (timeline) {
      const svg = file.replace(/\.json$/, ".svg");
      await writeFile(svg, plotTimeline(timeline, opts));
      console.log(`plot of the ${fmtSize(timeline.size)} run written to ${path.relative(process.cwd(), svg)}`);
    }
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

  // --plot: RSS of every process and throughput of every phase over time, for the 1M run (else the largest).
  const plotSize = opts.sizes.includes(1_000_000) ? 1_000_000 : Math.max(...opts.sizes);
  const rec: Timeline | undefined =
    opts.plot && size === plotSize ? { size, originMs: 0, marks: [], throughput: [], rss: [] } : undefined;
  const mark = (phase: string) => rec?.marks.push({ atMs: Date.now(), label: phase });

  // 1. Ingest alone: no worker running, the jobs wait in Redis.
  await resetCampaignData(s.pool);
  await s.queue.obliterate({ force: true });
  sampler.beginWindow();
  if (rec) {
    rec.originMs = Date.now();
    sampler.startSeries();
  }
  mark("ingest");
  const producer = children.spawnTs(`producer ${label}`, "scripts/bench/ingest-child.ts", [csv], s.env);
  sampler.watch("producer", producer.pid);
  await waitForOutput(producer, "launching", 60_000);
  sampler.beginWindow({ resetPeaks: false }); // CPU from the launch call on; RSS peaks since spawn
  await waitForExit(producer, ingestTimeoutMs);
  const ingestWindow = sampler.endWindow();
  const ingestCpu = judgeBottleneck(`ingest ${label}`, ingestWindow, s.cpus);
  const ingest = lastJsonLine<IngestResult>(producer);
  rec?.throughput.push({ name: "ingest: rows staged/s", points: stagedSeries(producer, ingest, rec.originMs) });
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
  mark("send");
  const spawnedAt = Date.now();
  const workers: ChildHandle[] = [];
  for (let i = 1; i <= opts.workers; i++) {
    // The send workers run as deployed (deploy/kubernetes/worker.yaml, docker-compose.yml): old generation
    // capped at 96 MB. BENCH_WORKER_NODE_OPTIONS replaces that NODE_OPTIONS ("" for V8's own limit).
    const workerOptions = process.env.BENCH_WORKER_NODE_OPTIONS ?? DEPLOYED_WORKER_NODE_OPTIONS;
    const workerEnv = workerOptions ? { ...s.env, NODE_OPTIONS: workerOptions } : s.env;
    const w = children.spawnTs(`worker#${i}`, "workers/send-worker.ts", [], workerEnv);
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
    const ledgerCheck = await checkLedgerAgainstRecipients(s.pool, s.sandboxUrl, ingest.campaignId);
    logLedgerCheck(label, "send", ledgerCheck);
    if (rec)
      rec.throughput.push({ name: "send: recipients/s", points: await sentSeries(s.pool, ingest.campaignId, rec) });
    const send = {
      ...figures,
      cycle,
      pgActivity,
      workerStartupSeconds: (figures.firstClaimAt.getTime() - spawnedAt) / 1000,
      workerPeakRssMb: workerPeaks(sendWindow, opts.workers),
      sandboxPeakRssMb: sendWindow.peakRssMb.sandbox ?? 0,
      sandboxAccepted: ledger.accepted.messages,
      sandboxReceivedTwice: ledger.duplicates,
      ledgerCheck,
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

    // 3. End to end: the workers are already running; producer start → campaign completed. Then the same
    // with `send --stream` (BENCH_STREAM=1): batches queued while the list is read.
    const runEndToEnd = async (stream: boolean) => {
      const phase = stream ? "end to end, --stream" : "end to end";
      await resetCampaignData(s.pool);
      await resetSandbox(s.sandboxUrl);
      sampler.beginWindow();
      mark(phase);
      const e2eStart = Date.now();
      const producer2 = children.spawnTs(`producer ${label} (${phase})`, "scripts/bench/ingest-child.ts", [csv], {
        ...s.env,
        ...(stream ? { BENCH_STREAM: "1" } : {}),
      });
      sampler.watch("producer", producer2.pid);
      await waitForExit(producer2, ingestTimeoutMs);
      const ingest2 = lastJsonLine<IngestResult>(producer2);
      const end = await waitForCampaignEnd(s.pool, ingest2.campaignId, sendTimeoutMs, alive);
      const e2eWindow = sampler.endWindow();
      const finishedMs = end.finishedAt!.getTime();
      const ledger2 = await sandboxStats(s.sandboxUrl);
      const ledgerCheck2 = await checkLedgerAgainstRecipients(s.pool, s.sandboxUrl, ingest2.campaignId);
      logLedgerCheck(label, phase, ledgerCheck2);
      if (rec) {
        rec.throughput.push(
          { name: `${phase}: rows staged/s`, points: stagedSeries(producer2, ingest2, rec.originMs) },
          { name: `${phase}: recipients sent/s`, points: await sentSeries(s.pool, ingest2.campaignId, rec) },
        );
      }
      const endToEnd = {
        seconds: (finishedMs - e2eStart) / 1000,
        fromLaunchSeconds: (finishedMs - ingest2.startedAtMs) / 1000,
        producerPeakRssMb: ingest2.peakRssMb,
        producerSeconds: ingest2.seconds,
        stageMs: ingest2.stageMs,
        planMs: ingest2.planMs,
        firstStepMs: ingest2.firstStepMs,
        sendAfterIngestSeconds: (finishedMs - (ingest2.startedAtMs + ingest2.seconds * 1000)) / 1000,
        workerPeakRssMb: workerPeaks(e2eWindow, opts.workers),
        sandboxReceivedTwice: ledger2.duplicates,
        ledgerCheck: ledgerCheck2,
        cpu: judgeBottleneck(`${phase} ${label}`, e2eWindow, s.cpus),
      };
      log(
        `[${label}] ${phase}: ${fmtSec(endToEnd.seconds)} from producer spawn (${fmtSec(endToEnd.fromLaunchSeconds)} from the launch call; ` +
          `ingest ${fmtSec(endToEnd.producerSeconds)} (stage ${endToEnd.stageMs} ms, plan ${endToEnd.planMs} ms` +
          (stream ? `, first batches queued after ${endToEnd.firstStepMs ?? "?"} ms` : "") +
          `), then ${fmtSec(endToEnd.sendAfterIngestSeconds)} until completed)`,
      );
      return { endToEnd, ingest2 };
    };
    // The streamed run first: the planned run's campaign is the one the storage and delivery figures read.
    const { endToEnd: endToEndStreamed } = await runEndToEnd(true);
    const { endToEnd, ingest2 } = await runEndToEnd(false);

    for (const w of workers) await children.stop(w);
    // What the campaign leaves in PostgreSQL: its tables hold this one campaign only.
    const storage = await storageFigures(s.pool, ingest2.recipients);
    if (opts.delivery) mark("delivery");
    const delivery = opts.delivery ? await runDelivery(label, ingest2.campaignId, s) : undefined;
    const storageAfter = delivery ? await storageAfterReports(s.pool, ingest2.recipients) : undefined;
    if (rec && delivery) {
      const { bucketMs, buckets } = await timeBuckets(
        s.pool,
        `SELECT applied_at AS at, row_count AS n FROM delivery_events WHERE outcome = 'applied'`,
        [],
      );
      rec.throughput.push({
        name: "delivery: reports applied/s",
        points: rateSeries(buckets, bucketMs, rec.originMs),
      });
    }
    if (storageAfter)
      log(
        `[${label}] storage after the delivery reports: ${storageAfter.totalBytesPerRecipient} bytes per recipient on disk (` +
          formatBytesPerTable(storageAfter) +
          `)` +
          (storageAfter.recipientsFreeBytesPerRecipient === undefined
            ? ""
            : `; after VACUUM ${storageAfter.recipientsFreeBytesPerRecipient} of recipients' are free space for the next campaign`),
      );
    log(
      `[${label}] storage after the campaign: ${storage.totalBytesPerRecipient} bytes per recipient (tables + indexes: ` +
        formatBytesPerTable(storage) +
        `); peak RSS: producer ${fmtMb(ingest.peakRssMb)} / ${fmtMb(ingest2.peakRssMb)} (ingest / end to end), ` +
        Object.keys(send.workerPeakRssMb)
          .map((k) => `${k} ${fmtMb(Math.max(send.workerPeakRssMb[k] ?? 0, endToEnd.workerPeakRssMb[k] ?? 0))}`)
          .join(", "),
    );
    if (rec) {
      rec.rss = sampler.stopSeries().filter((r) => r.label !== "bench");
      timeline = rec;
    }
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
      endToEndStreamed,
      delivery,
      naive,
      storage,
      storageAfterReports: storageAfter,
    };
  } finally {
    for (const w of workers) await children.stop(w);
  }
}

/** Rows staged over time, from the producer's "progress <rows> <epoch ms>" lines; 0 while it plans. */
function stagedSeries(producer: ChildHandle, ingest: IngestResult, originMs: number): Array<[number, number]> {
  const readings: Array<[number, number]> = [[ingest.startedAtMs, 0]];
  for (const m of producer.stdout().matchAll(/^progress (\d+) (\d+)$/gm)) readings.push([Number(m[2]), Number(m[1])]);
  return rateFromCumulative(readings, originMs, ingest.startedAtMs + ingest.seconds * 1000);
}

/** Recipients sent per bucket, from each batch's sent_at. */
async function sentSeries(pool: pg.Pool, campaignId: string, rec: Timeline): Promise<Array<[number, number]>> {
  const { bucketMs, buckets } = await timeBuckets(
    pool,
    `SELECT sent_at AS at, size AS n FROM batches WHERE campaign_id = $1 AND state = 'sent'`,
    [campaignId],
  );
  return rateSeries(buckets, bucketMs, rec.originMs);
}

function plotTimeline(t: Timeline, opts: BenchOptions): string {
  // A label watched twice (the producer of the ingest and of the end-to-end run) gets one line per process.
  const seen = new Map<string, number>();
  const rss = t.rss.map((r) => {
    const n = (seen.get(r.label) ?? 0) + 1;
    seen.set(r.label, n);
    return {
      name: n === 1 ? r.label : `${r.label} (${n})`,
      points: r.points.map(([ms, mb]): [number, number] => [(ms - t.originMs) / 1000, mb]),
    };
  });
  return renderSvgPlot({
    title: `smsblast bench, ${fmtSize(t.size)} recipients: ${opts.workers} workers × ${opts.concurrency}, sandbox ${opts.latencyMs} ms`,
    xLabel: "seconds since the producer started (ingest)",
    marks: t.marks.map((m) => ({ x: (m.atMs - t.originMs) / 1000, label: m.label })),
    panels: [
      { title: "Throughput per phase", yLabel: "per second", series: t.throughput },
      { title: "RSS per process", yLabel: "MB", series: rss, formatY: (mb) => `${Math.round(mb)}` },
    ],
  });
}

/**
 * The peer design (issue 18): one BullMQ job per recipient, each one POST /v1/custom-messages and one UPDATE
 * (scripts/bench/peer-child.ts), on its own queue and table, with the same worker processes × concurrency as
 * ours and the same sandbox. Our send at the same size comes from the sizes run, or is measured here.
 */
async function runPeer(size: number, results: SizeResult[], opts: BenchOptions, s: Shared): Promise<PeerResult> {
  const label = fmtSize(size);
  let oursAtSize = results.find((r) => r.size === size);
  const inSizes = oursAtSize !== undefined;
  if (!oursAtSize) {
    log(`\n[peer ${label}] our send at ${label} first (not among --sizes), for the comparison`);
    oursAtSize = await benchSize(size, { ...opts, delivery: false, naiveSize: undefined, plot: false }, s);
  }
  await resetCampaignData(s.pool);
  const prefix = peerQueuePrefix(opts.queuePrefix);
  const queue = new Queue(PEER_QUEUE_NAME, { connection: s.redis, prefix });
  await queue.obliterate({ force: true });
  await createPeerRecipients(s.pool, size);
  await resetSandbox(s.sandboxUrl);
  const env = { ...s.env, PEER_QUEUE_PREFIX: prefix };
  const latencyBound =
    opts.latencyMs > 0 ? Math.round((opts.workers * opts.concurrency * 1000) / opts.latencyMs) : Infinity;
  const timeoutMs = 120_000 + size * 10;
  log(
    `\n[peer ${label}] one BullMQ job per recipient through v1/custom-messages: ${opts.workers} worker processes × concurrency ${opts.concurrency}…`,
  );
  const workers: ChildHandle[] = [];
  try {
    sampler.beginWindow();
    for (let i = 1; i <= opts.workers; i++) {
      const w = children.spawnTs(
        `peer-worker#${i}`,
        "scripts/bench/peer-child.ts",
        ["worker", String(opts.concurrency)],
        env,
      );
      sampler.watch(`peer-worker#${i}`, w.pid);
      workers.push(w);
    }
    for (const w of workers) await waitForOutput(w, "ready", 60_000);
    sampler.beginWindow({ resetPeaks: false }); // CPU from the first enqueue on; RSS peaks since spawn
    const alive = () => {
      for (const c of [...workers, s.sandbox])
        if (!c.isRunning()) throw new Error(`${c.name} exited during the peer run:\n${c.stderr().slice(-3000)}`);
    };
    const producer = children.spawnTs("peer-producer", "scripts/bench/peer-child.ts", ["producer"], env);
    sampler.watch("peer-producer", producer.pid);
    await waitForExit(producer, timeoutMs);
    const enqueued = lastJsonLine<{ jobs: number; firstEnqueueAtMs: number; enqueuedAtMs: number }>(producer);
    const counts = await waitForPeerDone(s.pool, timeoutMs, alive);
    const window = sampler.endWindow();
    const ledger = await sandboxStats(s.sandboxUrl);
    const reports: Array<{ completed: number; failedAttempts: number; lastCompletedAtMs: number }> = [];
    for (const w of workers) {
      await children.stop(w);
      reports.push(lastJsonLine(w));
    }
    const seconds = (Math.max(...reports.map((r) => r.lastCompletedAtMs)) - enqueued.firstEnqueueAtMs) / 1000;
    const workerPeakRssMb = Object.fromEntries(
      workers.map((w) => [w.name, window.peakRssMb[w.name] ?? 0] as [string, number]),
    );
    const result: PeerResult = {
      size,
      design: "one BullMQ job per recipient (addBulk of 1000), POST /v1/custom-messages + one UPDATE per job",
      workers: opts.workers,
      concurrencyPerWorker: opts.concurrency,
      jobs: enqueued.jobs,
      sent: counts.sent,
      failed: counts.failed,
      failedAttempts: reports.reduce((n, r) => n + r.failedAttempts, 0),
      seconds,
      enqueueSeconds: (enqueued.enqueuedAtMs - enqueued.firstEnqueueAtMs) / 1000,
      recipientsPerSecond: Math.round(counts.sent / seconds),
      latencyBoundPerSecond: latencyBound,
      workerPeakRssMb,
      sandboxAccepted: ledger.accepted.custom,
      sandboxReceivedTwice: ledger.duplicates,
      cpu: judgeBottleneck(`peer ${label}`, window, s.cpus),
      ours: {
        size,
        recipientsPerSecond: oursAtSize.send.recipientsPerSecond,
        seconds: oursAtSize.send.seconds,
        inSizes,
      },
    };
    log(
      `[peer ${label}] ${fmtRate(result.recipientsPerSecond)} (${fmtInt(result.sent)} sent, ${result.failed} failed, in ${fmtSec(seconds)} ` +
        `from first enqueue to last job completed; enqueue ${fmtSec(result.enqueueSeconds)}; latency bound ${fmtRate(latencyBound)}); ` +
        `ours at ${label}: ${fmtRate(result.ours.recipientsPerSecond)}, ${fmtRatio(result.ours.recipientsPerSecond / result.recipientsPerSecond)} the peer; ` +
        `peer worker peak RSS ${Object.values(workerPeakRssMb).map(fmtMb).join(" / ")}; sandbox accepted ${fmtInt(result.sandboxAccepted)}, twice ${result.sandboxReceivedTwice}`,
    );
    if (result.sandboxAccepted !== result.sent || result.sandboxReceivedTwice > 0)
      log(`[peer ${label}] WARNING: sandbox accepted ${result.sandboxAccepted} for ${result.sent} rows sent`);
    return result;
  } finally {
    for (const w of workers) await children.stop(w);
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close().catch(() => {});
    await dropPeerRecipients(s.pool).catch(() => {});
  }
}

/** The delivery phase against real `serve` and `delivery-worker` processes (scripts/bench/delivery-phase.ts). */
async function runDelivery(label: string, campaignId: string, s: Shared): Promise<DeliveryPhaseResult> {
  const port = await freePort();
  const username = "bench";
  const secret = randomBytes(16).toString("hex");
  const env = { ...s.env, CALLBACK_USERNAME: username, CALLBACK_SECRET: secret, API_HOST: "127.0.0.1" };
  const api = children.spawnTs("api", "src/cli/main.ts", ["serve", "--port", String(port)], env);
  sampler.watch("api", api.pid);
  let applier: ChildHandle | undefined;
  const startApplier = () => {
    applier = children.spawnTs("delivery-worker", "src/cli/main.ts", ["delivery-worker"], env);
    sampler.watch("delivery-worker", applier.pid);
  };
  const stopApplier = async () => {
    if (applier) await children.stop(applier);
    applier = undefined;
  };
  startApplier();
  let drainCpu: Bottleneck | undefined;
  try {
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, api, 60_000);
    // The applier is up (its process has loaded and connected) before the first callback.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    sampler.beginWindow();
    let serverPeakRssMb = 0;
    const result = await runDeliveryPhase(
      {
        pool: s.pool,
        campaignId,
        apiUrl: `http://127.0.0.1:${port}`,
        username,
        secret,
        alive: failIfExited(() => [api, applier], "during the delivery phase"),
        log,
      },
      {
        startApplier,
        stopApplier,
        // The receiver's peak is the live part's and the backlog's; the drain's CPU is the applier alone.
        onDrainStart: () => {
          serverPeakRssMb = sampler.endWindow().peakRssMb.api ?? 0;
          sampler.beginWindow();
        },
        onDrainEnd: () => {
          drainCpu = judgeBottleneck(`delivery drain ${label}`, sampler.endWindow(), s.cpus);
        },
      },
    );
    result.serverPeakRssMb = serverPeakRssMb;
    result.drainCpu = drainCpu;
    const { live, backlog } = result;
    log(
      `[${label}] delivery, live (applier running): ${fmtInt(live.reports)} \`sent\` reports in ${fmtInt(live.callbacks)} callbacks at ` +
        `${fmtRate(live.callbacksPerSecond)} (asked ${live.targetCallbacksPerSecond}/s): callback p50 ${live.callbackP50Ms.toFixed(1)} ms, ` +
        `p99 ${live.callbackP99Ms.toFixed(1)} ms, max ${live.callbackMaxMs.toFixed(0)} ms; callback → recipient state p50 ` +
        `${live.reportDelayP50Ms.toFixed(0)} ms, p99 ${live.reportDelayP99Ms.toFixed(0)} ms; applied ${fmtSec(live.drainAfterLastCallbackSeconds)} after the last callback`,
    );
    log(
      `[${label}] delivery, backlog (applier alone): ${fmtInt(backlog.reports)} \`delivered\` reports stored at ${fmtRate(backlog.callbacksPerSecond)} callbacks, ` +
        `then applied at ${fmtRate(backlog.reportsPerSecond)} reports (${fmtSec(backlog.applierSeconds)} from its first statement; ` +
        `${fmtSec(backlog.spawnToDoneSeconds)} from the process spawn)`,
    );
    return result;
  } finally {
    await stopApplier();
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
  peer?: PeerResult,
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
      `end to end ${fmtMb(r.endToEnd.producerPeakRssMb)}`,
      "",
      `≤ ${TARGETS.peakRssMb} MB`,
      check(producerPeak(r) <= TARGETS.peakRssMb),
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
      const { live, backlog } = r.delivery;
      row(
        `delivery ${L}: reports applied/s (applier alone)`,
        fmtRate(backlog.reportsPerSecond),
        `${fmtInt(backlog.reports)} stored reports from the first statement; ${fmtSec(backlog.spawnToDoneSeconds)} from the process spawn`,
        "",
        "≥ 100,000/s",
        check(backlog.reportsPerSecond >= 100_000),
      );
      row(
        `delivery ${L}: callback p50 / p99 (${live.rowsPerCallback} rows, applier running)`,
        `${live.callbackP50Ms.toFixed(1)} / ${live.callbackP99Ms.toFixed(1)} ms`,
        `${fmtRate(live.callbacksPerSecond)} callbacks (asked ${live.targetCallbacksPerSecond}/s, open loop)`,
        "",
        "p99 ≤ 50 ms",
        check(live.callbackP99Ms <= 50),
      );
      row(
        `delivery ${L}: callback → recipient state p50 / p99`,
        `${fmtInt(live.reportDelayP50Ms)} / ${fmtInt(live.reportDelayP99Ms)} ms`,
        `applied ${fmtSec(live.drainAfterLastCallbackSeconds)} after the last callback`,
        "",
        "",
        "",
      );
    }
    row(
      `storage ${L}: bytes/recipient after the campaign (tables + indexes)`,
      `${fmtInt(r.storage.totalBytesPerRecipient)} B`,
      formatBytesPerTable(r.storage, " + "),
      "",
      `≤ ${TARGETS.bytesPerRecipient} B`,
      check(r.storage.totalBytesPerRecipient <= TARGETS.bytesPerRecipient),
    );
    if (r.storageAfterReports) {
      const after = r.storageAfterReports;
      row(
        `storage ${L}: bytes/recipient after the delivery reports`,
        `${fmtInt(after.totalBytesPerRecipient)} B`,
        `recipients ${after.bytesPerRecipient.recipients ?? 0}` +
          (after.recipientsFreeBytesPerRecipient === undefined
            ? ""
            : `, of which ${after.recipientsFreeBytesPerRecipient} free after VACUUM`),
        "",
        "",
        "",
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
    if (r.endToEndStreamed) {
      row(
        `end to end ${L}, send --stream: wall`,
        fmtSec(r.endToEndStreamed.seconds),
        `first batches queued after ${fmtSec((r.endToEndStreamed.firstStepMs ?? 0) / 1000)}`,
        fmtRatio(r.endToEndStreamed.seconds / serial),
        is1M ? `≤ ${TARGETS.endToEndStreamed1MSeconds} s` : "",
        is1M ? check(r.endToEndStreamed.seconds <= TARGETS.endToEndStreamed1MSeconds) : "",
      );
    }
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
  if (results.length > 1) {
    // Flatness: one row per process across sizes.
    const across = `by size (${results.map((r) => fmtSize(r.size)).join(" / ")})`;
    const spread = (values: number[]) => Math.max(...values) - Math.min(...values);
    const producer = results.map(producerPeak);
    row(
      `producer peak RSS ${across}`,
      `${producer.join(" / ")} MB`,
      "",
      `spread ${spread(producer)} MB`,
      `within ${TARGETS.producerRssSpreadMb} MB`,
      check(spread(producer) <= TARGETS.producerRssSpreadMb),
    );
    for (const w of Object.keys(results[0]!.send.workerPeakRssMb)) {
      const peaks = results.map((r) => Math.max(r.send.workerPeakRssMb[w] ?? 0, r.endToEnd.workerPeakRssMb[w] ?? 0));
      row(`${w} peak RSS ${across}`, `${peaks.join(" / ")} MB`, "", `spread ${spread(peaks)} MB`);
    }
    const bytes = results.map((r) => Math.round(r.storage.totalBytesPerRecipient));
    row(`bytes/recipient ${across}`, `${bytes.join(" / ")} B`, "", fmtRatio(bytes.at(-1)! / bytes[0]!));
  }
  if (peer) {
    const P = fmtSize(peer.size);
    row(
      `send ${P}: ours vs peer (BullMQ job per recipient, v1/custom-messages)`,
      fmtRate(peer.ours.recipientsPerSecond),
      `peer ${fmtRate(peer.recipientsPerSecond)}`,
      fmtRatio(peer.ours.recipientsPerSecond / peer.recipientsPerSecond),
    );
    row(
      `peer ${P}: first enqueue → last job completed`,
      fmtSec(peer.seconds),
      `latency bound ${fmtRate(peer.latencyBoundPerSecond)}`,
      fmtRatio(peer.recipientsPerSecond / peer.latencyBoundPerSecond),
    );
    row(`peer ${P}: worker peak RSS (each)`, `${Object.values(peer.workerPeakRssMb).join(" / ")} MB`);
    notes.push(
      `peer: ${opts.workers} processes × BullMQ concurrency ${opts.concurrency} (as ours), one request and one UPDATE per recipient; ` +
        `its rate is first enqueue → last job completed, ours first claim → last batch recorded` +
        (peer.ours.inSizes ? "" : ` (our ${P} run measured for this comparison)`) +
        `; latency bound = ${opts.workers * opts.concurrency} requests in flight / ${opts.latencyMs} ms`,
    );
    if (peer.failed > 0 || peer.sandboxReceivedTwice > 0)
      notes.push(`! peer: ${peer.failed} recipients failed, ${peer.sandboxReceivedTwice} numbers received twice`);
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

/** The producer's peak over both of its runs at a size (ingest alone, end to end). */
function producerPeak(r: SizeResult): number {
  return Math.max(r.ingest.peakRssMb, r.endToEnd.producerPeakRssMb);
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

function logLedgerCheck(label: string, phase: string, check: LedgerCheck): void {
  log(
    check.matches
      ? `[${label}] ${phase}: the sandbox's ledger matches PostgreSQL recipient by recipient (${fmtInt(check.accepted)} accepted, each received once)`
      : `[${label}] ${phase}: WARNING: the sandbox's ledger does NOT match PostgreSQL: ${fmtInt(check.accepted)} accepted, ` +
          `${fmtInt(check.received)} numbers received, ${fmtInt(check.receivedTwice)} of them more than once`,
  );
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
