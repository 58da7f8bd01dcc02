/**
 * Fault-suite harness: a private world (database, Redis prefix, in-process sandbox) plus real worker
 * PROCESSES that a scenario can kill -9, SIGTERM and restart, a 24,000-recipient campaign, and a recipient
 * by recipient check of the sandbox ledger against PostgreSQL once the campaign has ended.
 *
 * Every wait is bounded (a count and a deadline); every child is killed in dispose(), and by an exit hook
 * if the test process itself goes away.
 *
 * Knobs (environment): FAULTS_SEED replays the random fault moments of a run; FAULTS_EXCLUSIVE=1 forces
 * FLUSHALL and a real PostgreSQL restart even when other users are seen on the services (=0 always scopes
 * them to this run); FAULTS_ALLOW_CRASHES=1 reports worker crashes without failing; FAULTS_RECIPIENTS.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Queue } from "bullmq";
import pg from "pg";
import { expect } from "vitest";
import { getCampaignStatus, type CampaignStatusReport } from "../../src/campaigns/campaign-status.ts";
import { isFinalStatus } from "../../src/model/states.ts";
import { createRedisConnection } from "../../src/queue/redis.ts";
import { SEND_QUEUE_NAME } from "../../src/queue/send-queue.ts";
import type { SandboxStats } from "../../src/sandbox/server.ts";
import { launchCampaign } from "../helpers/campaign-runner.ts";
import { createTestEnv, csvOf, singaporeNumbers, type TestEnv } from "../helpers/test-env.ts";

const execFileP = promisify(execFile);

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const RESULTS_FILE = path.join(REPO_ROOT, "bench-results", "faults-latest.json");
const ADMIN_URL = process.env.TEST_ADMIN_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

export type Provider = "legacy" | "messages";
export const PROVIDERS: Provider[] = ["legacy", "messages"];

/** One place for every knob: 48 batches of 500, ~400 ms per request, 2 workers × 2 batches in flight. */
export const SETTINGS = {
  recipients: Number(process.env.FAULTS_RECIPIENTS ?? 24_000),
  batchSize: 500,
  latencyMs: 400,
  workers: 2,
  concurrency: 2,
  providerTimeoutMs: 2_000,
  reconcileIntervalMs: 2_000,
  backoffMs: 200,
  attempts: 8,
  /** From launch to a final status; a healthy run under faults takes 10-30 s. */
  campaignDeadlineMs: Number(process.env.FAULTS_DEADLINE_MS ?? 120_000),
} as const;

// ---------------------------------------------------------------------------------------------------------
// Randomness: "random moments" are drawn from a seeded PRNG so a failing run can be replayed (FAULTS_SEED).

const SEED = Number(process.env.FAULTS_SEED ?? Math.floor(Math.random() * 2 ** 31));
let prngState = SEED >>> 0;
export function random(): number {
  prngState = (prngState + 0x6d2b79f5) >>> 0;
  let t = prngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
export const randomBetween = (min: number, max: number): number => Math.round(min + random() * (max - min));
export const faultSeed = (): number => SEED;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function note(message: string): void {
  console.log(`[faults ${new Date().toISOString().slice(11, 23)}] ${message}`);
}

// ---------------------------------------------------------------------------------------------------------
// Worker processes

const liveChildren = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of liveChildren) child.kill("SIGKILL");
});

const OUTPUT_LIMIT = 200_000;

/** Deletes every key matching ARGV[1] inside one script: atomic, as FLUSHALL is. */
const DELETE_PREFIX_SCRIPT = `
local cursor = "0"
local deleted = 0
repeat
  local reply = redis.call("SCAN", cursor, "MATCH", ARGV[1], "COUNT", 1000)
  cursor = reply[1]
  for _, key in ipairs(reply[2]) do deleted = deleted + redis.call("DEL", key) end
until cursor == "0"
return deleted`;
const MAX_CRASH_RESTARTS = 6;

export class WorkerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Set before the harness stops it on purpose; an exit without it is a crash. */
  expectedExit = false;
  readonly startedAt = Date.now();
  private output = "";

  constructor(
    readonly name: string,
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawn(process.execPath, ["--import", "tsx", "workers/send-worker.ts"], {
      cwd: REPO_ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    liveChildren.add(this.child);
    const collect = (chunk: Buffer) => {
      this.output += chunk.toString("utf8");
      if (this.output.length > OUTPUT_LIMIT) this.output = this.output.slice(-OUTPUT_LIMIT / 2);
    };
    this.child.stdout?.on("data", collect);
    this.child.stderr?.on("data", collect);
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        liveChildren.delete(this.child);
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
      this.child.once("error", (error) => {
        this.output += `\nspawn error: ${error.message}\n`;
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }
  get alive(): boolean {
    return this.exitInfo === undefined;
  }
  get crashed(): boolean {
    return !this.alive && !this.expectedExit;
  }
  /** stdout + stderr (pino writes JSON lines to stderr). */
  get logs(): string {
    return this.output;
  }

  /** Sends `signal` to this process (by pid) and waits for it to exit; SIGKILL after `timeoutMs`. */
  async stop(signal: NodeJS.Signals, timeoutMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; forced: boolean }> {
    this.expectedExit = true;
    if (!this.alive) return { ...this.exitInfo!, forced: false };
    this.child.kill(signal);
    const result = await Promise.race([this.exited, sleep(timeoutMs).then(() => undefined)]);
    if (result) return { ...result, forced: false };
    this.child.kill("SIGKILL");
    const killed = await Promise.race([this.exited, sleep(10_000).then(() => undefined)]);
    if (!killed) throw new Error(`worker ${this.name} (pid ${this.pid}) did not exit even after SIGKILL`);
    return { ...killed, forced: true };
  }
}

// ---------------------------------------------------------------------------------------------------------
// Results

export interface RunResult {
  scenario: string;
  provider: Provider;
  fault: string;
  recipients: number;
  accepted: number;
  failed: number;
  unknown: number;
  /** The most recipients that may end `unknown`: batches in `sending` when the fault hit × batch size. */
  unknownBound: number;
  duplicates: number;
  lost: number;
  wallSeconds: number;
  status: string;
  /** Details behind the headline numbers, for the JSON file and for failure messages. */
  detail: {
    pending: number;
    cancelled: number;
    acceptedNotInLedger: number;
    ledgerButFailed: number;
    ledgerNotARecipient: number;
    failedWithoutReason: number;
    statusReport: CampaignStatusReport["recipients"];
    counters: { accepted: number; failed: number; unknown: number };
    batches: Record<string, number>;
    unknownBatchesOutsideInFlight: number;
    sandbox: Pick<SandboxStats, "errors" | "throttled" | "hung" | "dedupHits" | "lostResponses"> & { requests: number };
    workerCrashes: number;
    workersStarted: number;
    seed: number;
  };
}

const COLUMNS: Array<[string, (r: RunResult) => string | number]> = [
  ["scenario", (r) => r.scenario],
  ["provider", (r) => r.provider],
  ["recipients", (r) => r.recipients],
  ["accepted", (r) => r.accepted],
  ["failed", (r) => r.failed],
  ["unknown", (r) => r.unknown],
  ["≤ bound", (r) => r.unknownBound],
  ["duplicates", (r) => r.duplicates],
  ["lost", (r) => r.lost],
  ["crashes", (r) => r.detail.workerCrashes],
  ["wall s", (r) => r.wallSeconds.toFixed(1)],
  ["fault", (r) => r.fault],
];

export function formatTable(rows: readonly RunResult[]): string {
  const cells = rows.map((r) => COLUMNS.map(([, get]) => String(get(r))));
  const widths = COLUMNS.map(([title], i) => Math.max(title.length, ...cells.map((c) => c[i]!.length)));
  const line = (values: string[]) => `| ${values.map((v, i) => v.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(COLUMNS.map(([t]) => t)), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...cells.map(line)].join("\n");
}

export interface ResultsFile {
  startedAt: string;
  seed?: number;
  settings: typeof SETTINGS;
  rows: RunResult[];
}

export async function resetResultsFile(): Promise<void> {
  await mkdir(path.dirname(RESULTS_FILE), { recursive: true });
  const initial: ResultsFile = { startedAt: new Date().toISOString(), settings: SETTINGS, rows: [] };
  await writeFile(RESULTS_FILE, JSON.stringify(initial, null, 2) + "\n");
}

export async function readResultsFile(): Promise<ResultsFile | undefined> {
  try {
    return JSON.parse(await readFile(RESULTS_FILE, "utf8")) as ResultsFile;
  } catch {
    return undefined;
  }
}

/** Files run one at a time in one fork, so read-modify-write is safe. */
async function appendResult(row: RunResult): Promise<void> {
  const file = (await readResultsFile()) ?? { startedAt: new Date().toISOString(), settings: SETTINGS, rows: [] };
  file.seed ??= SEED;
  file.rows.push(row);
  await mkdir(path.dirname(RESULTS_FILE), { recursive: true });
  await writeFile(RESULTS_FILE, JSON.stringify(file, null, 2) + "\n");
}

// ---------------------------------------------------------------------------------------------------------
// Shared services: is anybody else using them right now?

/**
 * FLUSHALL and a PostgreSQL restart hit every user of the machine's Redis and PostgreSQL. The suite is
 * meant to run alone (CI); when other databases have live connections (someone's `npm test`, a bench), the
 * harness scopes the fault to this run instead (delete this run's Redis keys; terminate this database's
 * backends), and says so in the table. FAULTS_EXCLUSIVE=1 forces the global faults, =0 forces scoped.
 */
async function othersUsingServices(ownDatabase: string, ownPrefix: string, redisUrl: string): Promise<string[]> {
  if (process.env.FAULTS_EXCLUSIVE === "1") return [];
  if (process.env.FAULTS_EXCLUSIVE === "0") return ["FAULTS_EXCLUSIVE=0"];
  const others: string[] = [];
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  try {
    await admin.connect();
    const { rows } = await admin.query<{ datname: string; n: number }>(
      `SELECT datname, count(*)::int AS n FROM pg_stat_activity
       WHERE backend_type = 'client backend' AND datname IS NOT NULL
         AND datname NOT IN ($1, 'postgres', 'template0', 'template1') AND pid <> pg_backend_pid()
       GROUP BY datname`,
      [ownDatabase],
    );
    others.push(...rows.map((r) => `postgres db ${r.datname} (${r.n})`));
  } finally {
    await admin.end().catch(() => {});
  }
  const redis = createRedisConnection(redisUrl, "producer");
  try {
    // Another BullMQ user names its connections after its own prefix; any key outside ours is someone's data.
    const clients = String(await redis.client("LIST"))
      .split("\n")
      .map((line) => /(?:^| )name=(\S*)/.exec(line)?.[1] ?? "")
      .filter((name) => name !== "" && !name.startsWith(`${ownPrefix}:`));
    if (clients.length) others.push(`redis clients ${[...new Set(clients)].slice(0, 3).join(", ")}`);
    let cursor = "0";
    for (let i = 0; i < 1_000; i++) {
      const [next, keys] = await redis.scan(cursor, "COUNT", 1000);
      const foreign = keys.find((key) => !key.startsWith(`${ownPrefix}:`));
      if (foreign) {
        others.push(`redis key ${foreign}`);
        break;
      }
      cursor = next;
      if (cursor === "0") break;
    }
  } finally {
    redis.disconnect();
  }
  return others;
}

export async function postgresIsReady(): Promise<boolean> {
  try {
    await execFileP("pg_isready", ["-h", "127.0.0.1", "-p", "5432", "-q"], { timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}

async function postgresVersion(): Promise<string> {
  const versions = (await readdir("/etc/postgresql")).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(a) - Number(b));
  const version = versions.at(-1);
  if (!version) throw new Error("no cluster under /etc/postgresql");
  return version;
}

/** PostgreSQL answers again, or throws after `deadlineMs` (starting the cluster once if it stays down). */
export async function ensurePostgresUp(deadlineMs = 60_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  let startTried = false;
  for (let i = 0; i < 600; i++) {
    if (await postgresIsReady()) return;
    if (!startTried && Date.now() > deadline - deadlineMs / 2) {
      startTried = true;
      note("PostgreSQL still down: pg_ctlcluster start");
      await execFileP("pg_ctlcluster", ["--skip-systemctl-redirect", await postgresVersion(), "main", "start"], { timeout: 60_000 }).catch(
        (error: unknown) => note(`pg_ctlcluster start failed: ${String(error)}`),
      );
    }
    if (Date.now() > deadline) break;
    await sleep(250);
  }
  throw new Error(`PostgreSQL did not answer pg_isready within ${deadlineMs} ms`);
}

// ---------------------------------------------------------------------------------------------------------
// One run: a world, its workers, its campaign.

export interface InFlight {
  /** Batches of the campaign in `sending` (any age). */
  sending: string[];
  /** Of those, claimed within the last 1.5 s: a request is (very likely) in flight right now. */
  fresh: number;
  campaignStatus: string;
}

export class FaultWorld {
  readonly workers: WorkerProcess[] = [];
  readonly allWorkers: WorkerProcess[] = [];
  campaignId: string | undefined;
  private launchedAt = 0;
  private readonly inFlightAtFault = new Set<string>();
  private faultNotes: string[] = [];
  readonly crashes: Array<{ worker: string; exit: { code: number | null; signal: NodeJS.Signals | null }; output: string }> = [];

  private constructor(
    readonly scenario: string,
    readonly provider: Provider,
    readonly env: TestEnv,
    readonly databaseName: string,
  ) {}

  static async create(scenario: string, provider: Provider): Promise<FaultWorld> {
    await ensurePostgresUp();
    const env = await createTestEnv(`faults_${scenario}_${provider}`, {
      env: {
        BATCH_SIZE: String(SETTINGS.batchSize),
        SEND_ATTEMPTS: String(SETTINGS.attempts),
        SEND_BACKOFF_MS: String(SETTINGS.backoffMs),
        SEND_CONCURRENCY: String(SETTINGS.concurrency),
        PROVIDER_TIMEOUT_MS: String(SETTINGS.providerTimeoutMs),
        RECONCILE_INTERVAL_MS: String(SETTINGS.reconcileIntervalMs),
        LOG_LEVEL: "warn",
      },
      sandbox: { latencyMs: SETTINGS.latencyMs },
    });
    const databaseName = new URL(env.config.databaseUrl).pathname.slice(1);
    return new FaultWorld(scenario, provider, env, databaseName);
  }

  private workerEnv(): NodeJS.ProcessEnv {
    const c = this.env.config;
    return {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TMPDIR: process.env.TMPDIR,
      DATABASE_URL: c.databaseUrl,
      REDIS_URL: c.redisUrl,
      QUEUE_PREFIX: c.queuePrefix,
      ENGAGELAB_MESSAGES_URL: this.env.sandbox.url,
      ENGAGELAB_SMS_URL: this.env.sandbox.url,
      ENGAGELAB_OTP_URL: this.env.sandbox.url,
      PROVIDER_TIMEOUT_MS: String(SETTINGS.providerTimeoutMs),
      SEND_CONCURRENCY: String(SETTINGS.concurrency),
      SEND_BACKOFF_MS: String(SETTINGS.backoffMs),
      SEND_ATTEMPTS: String(SETTINGS.attempts),
      RECONCILE_INTERVAL_MS: String(SETTINGS.reconcileIntervalMs),
      BATCH_SIZE: String(SETTINGS.batchSize),
      LOG_LEVEL: "warn",
    };
  }

  /** Spawns a worker process in slot `slot` (replacing a stopped one). */
  startWorker(slot = this.workers.length): WorkerProcess {
    const worker = new WorkerProcess(`w${slot}.${this.allWorkers.length}`, this.workerEnv());
    this.workers[slot] = worker;
    this.allWorkers.push(worker);
    return worker;
  }

  /** Starts `count` workers and waits (bounded) until BullMQ sees them connected. */
  async startWorkers(count = SETTINGS.workers): Promise<void> {
    for (let i = 0; i < count; i++) this.startWorker(i);
    await this.waitForWorkersConnected(count);
  }

  /** BullMQ names each worker's Redis connection after the queue; count them (best effort, bounded). */
  async waitForWorkersConnected(count: number, timeoutMs = 30_000): Promise<void> {
    const connection = createRedisConnection(this.env.config.redisUrl, "producer");
    const queue = new Queue(SEND_QUEUE_NAME, { connection, prefix: this.env.config.queuePrefix });
    try {
      const deadline = Date.now() + timeoutMs;
      for (let i = 0; i < 600 && Date.now() < deadline; i++) {
        this.superviseWorkers();
        if ((await queue.getWorkersCount().catch(() => 0)) >= count) return;
        await sleep(100);
      }
      throw new Error(`only ${await queue.getWorkersCount().catch(() => 0)} of ${count} workers connected within ${timeoutMs} ms\n${this.workerLogs()}`);
    } finally {
      await queue.close();
      connection.disconnect();
    }
  }

  async launch(): Promise<string> {
    const numbers = singaporeNumbers(SETTINGS.recipients);
    const file = await this.env.writeCsv("recipients.csv", csvOf(["phone"], numbers.map((n) => [n])));
    this.launchedAt = performance.now();
    const launched = await launchCampaign(this.env, {
      file,
      name: `faults ${this.scenario} ${this.provider}`,
      provider: this.provider,
      templateId: "1",
      params: { order: "F-1" },
    });
    expect(launched.recipientCount).toBe(SETTINGS.recipients);
    expect(launched.enqueued).toBe(true);
    this.campaignId = launched.campaignId;
    note(`${this.scenario}/${this.provider}: campaign ${launched.campaignId} launched (${SETTINGS.recipients} recipients, seed ${SEED})`);
    return launched.campaignId;
  }

  async inFlight(): Promise<InFlight> {
    const { rows } = await this.env.db.pool.query<{ id: string; fresh: boolean; status: string }>(
      `SELECT b.id, b.claimed_at > now() - interval '1500 milliseconds' AS fresh, c.status
       FROM campaigns c LEFT JOIN batches b ON b.campaign_id = c.id AND b.state = 'sending'
       WHERE c.id = $1`,
      [this.campaignId],
    );
    const sending = rows.filter((r) => r.id !== null);
    return { sending: sending.map((r) => r.id), fresh: sending.filter((r) => r.fresh).length, campaignStatus: rows[0]?.status ?? "missing" };
  }

  /**
   * Waits until requests are in flight: `preferFresh` batches freshly claimed (with 2 workers × 2 slots,
   * 3 means every worker is mid-batch), falling back to 1 after `preferMs`. Bounded; throws if the
   * campaign ended or nothing is in flight by `timeoutMs`.
   */
  async waitForInFlight(preferFresh: number, preferMs = 6_000, timeoutMs = 30_000): Promise<InFlight> {
    const start = Date.now();
    for (let i = 0; i < 3_000; i++) {
      this.superviseWorkers();
      const now = await this.inFlight().catch(() => undefined);
      if (now) {
        if (now.campaignStatus !== "running") throw new Error(`campaign is ${now.campaignStatus} before the fault could be injected`);
        const wanted = Date.now() - start < preferMs ? preferFresh : 1;
        if (now.fresh >= wanted) return now;
      }
      if (Date.now() - start > timeoutMs) break;
      await sleep(25);
    }
    throw new Error(`no batch in flight within ${timeoutMs} ms`);
  }

  /** Remembers what was in flight when a fault hit: the bound on `unknown` outcomes. */
  recordFault(description: string, inFlight: InFlight): void {
    for (const id of inFlight.sending) this.inFlightAtFault.add(id);
    this.faultNotes.push(`${description} @${((performance.now() - this.launchedAt) / 1000).toFixed(1)}s`);
    note(`${this.scenario}/${this.provider}: ${description} with ${inFlight.sending.length} batch(es) sending (${inFlight.fresh} fresh)`);
  }

  /** Adds to the run's fault description without touching the bound. */
  describeFault(description: string): void {
    this.faultNotes.push(description);
  }

  get unknownBound(): number {
    return this.inFlightAtFault.size * SETTINGS.batchSize;
  }

  /** Bounded wait for a final campaign status; tolerates PostgreSQL being away for a while. */
  async waitForFinal(timeoutMs = SETTINGS.campaignDeadlineMs): Promise<CampaignStatusReport> {
    const deadline = Date.now() + timeoutMs;
    let last: CampaignStatusReport | undefined;
    let lastError: unknown;
    for (let i = 0; i < 2_000; i++) {
      this.superviseWorkers();
      try {
        last = await getCampaignStatus(this.env.db, this.campaignId!);
        if (isFinalStatus(last.status)) return last;
      } catch (error) {
        lastError = error;
      }
      if (Date.now() > deadline) break;
      await sleep(250);
    }
    const batches = await this.env.db.pool
      .query(`SELECT state, count(*)::int AS n, max(attempts) AS max_attempts FROM batches WHERE campaign_id = $1 GROUP BY state`, [this.campaignId])
      .then((r) => JSON.stringify(r.rows))
      .catch((error: unknown) => `unavailable: ${String(error)}`);
    const queue = await this.queueDiagnostics().catch((error: unknown) => `unavailable: ${String(error)}`);
    throw new Error(
      `campaign ${this.campaignId} not finished within ${timeoutMs} ms: ${JSON.stringify(last)} batches ${batches} ` +
        `last error ${String(lastError)}\nRedis side of the open batches: ${queue}\n${this.workerLogs()}`,
    );
  }

  /** For a stuck campaign: what Redis holds for each open batch (job hash, which BullMQ list has it). */
  async queueDiagnostics(): Promise<string> {
    const { rows } = await this.env.db.pool.query<{ id: string; state: string }>(
      `SELECT id, state FROM batches WHERE campaign_id = $1 AND state IN ('queued', 'retrying', 'sending', 'pending') ORDER BY sequence LIMIT 10`,
      [this.campaignId],
    );
    const redis = createRedisConnection(this.env.config.redisUrl, "producer");
    const base = `${this.env.config.queuePrefix}:${SEND_QUEUE_NAME}`;
    try {
      const out: unknown[] = [];
      for (const b of rows) {
        const hash = await redis.hgetall(`${base}:${b.id}`);
        const where: string[] = [];
        for (const list of ["wait", "active", "paused"]) if ((await redis.lpos(`${base}:${list}`, b.id)) !== null) where.push(list);
        for (const set of ["delayed", "prioritized", "completed", "failed"]) if ((await redis.zscore(`${base}:${set}`, b.id)) !== null) where.push(set);
        const lock = await redis.get(`${base}:${b.id}:lock`);
        const { data: _data, opts: _opts, ...job } = hash;
        out.push({ batch: b.id, state: b.state, job: Object.keys(hash).length ? job : null, in: where, lock: lock !== null });
      }
      const keys = (await redis.keys(`${base}:*`)).filter((key) => !/:[0-9a-f-]{36}(:lock)?$/.test(key));
      const meta = await redis.hgetall(`${base}:meta`);
      return JSON.stringify({ batches: out, queueKeys: keys, meta });
    } finally {
      redis.disconnect();
    }
  }

  /**
   * A worker that exits without being asked to is a bug (expectHealthy fails the run for it). Like a
   * process manager would, restart it in its slot, so the run still ends and the ledger check still says
   * whether anything was lost; give up after MAX_CRASH_RESTARTS (a crash loop).
   */
  superviseWorkers(): void {
    for (const [slot, worker] of this.workers.entries()) {
      if (!worker?.crashed) continue;
      this.crashes.push({ worker: worker.name, exit: worker.exitInfo!, output: worker.logs.slice(-3_000) });
      note(`${this.scenario}/${this.provider}: worker ${worker.name} CRASHED ${JSON.stringify(worker.exitInfo)}; restarting it`);
      if (this.crashes.length > MAX_CRASH_RESTARTS) {
        throw new Error(`worker processes keep crashing (${this.crashes.length} crashes)\n${this.workerLogs()}`);
      }
      this.startWorker(slot);
    }
  }

  workerLogs(maxPerWorker = 4_000): string {
    return this.allWorkers
      .map((w) => `--- worker ${w.name} pid ${w.pid} ${w.alive ? "alive" : JSON.stringify(w.exitInfo)} ---\n${w.logs.slice(-maxPerWorker)}`)
      .join("\n");
  }

  /** Ledger against Postgres, recipient by recipient. */
  async verify(report: CampaignStatusReport, options: ScenarioOptions = {}): Promise<RunResult> {
    const wallSeconds = (performance.now() - this.launchedAt) / 1000;
    const campaignId = this.campaignId!;
    const { rows } = await this.env.db.pool.query<{ phone: string; state: string; failure_code: number | null; failure_message: string | null }>(
      `SELECT phone, state, failure_code, failure_message FROM recipients WHERE campaign_id = $1`,
      [campaignId],
    );
    const ledger = new Map(Object.entries(this.env.sandbox.ledger.sent(this.provider)));
    const otherApis = Object.keys(this.env.sandbox.ledger.sent()).length - ledger.size;
    expect(otherApis, "numbers sent through the other API").toBe(0);

    const counts = { accepted: 0, failed: 0, unknown: 0, pending: 0, cancelled: 0 };
    let acceptedNotInLedger = 0;
    let ledgerButFailed = 0;
    let failedWithoutReason = 0;
    const recipientPhones = new Set<string>();
    for (const r of rows) {
      recipientPhones.add(r.phone);
      counts[r.state as keyof typeof counts] += 1;
      const times = ledger.get(r.phone) ?? 0;
      if (r.state === "accepted" && times === 0) acceptedNotInLedger += 1;
      if (r.state === "failed") {
        if (times > 0) ledgerButFailed += 1;
        if (r.failure_code === null && !r.failure_message) failedWithoutReason += 1;
      }
    }
    let duplicates = 0;
    let ledgerNotARecipient = 0;
    for (const [phone, times] of ledger) {
      if (times > 1) duplicates += 1;
      if (!recipientPhones.has(phone)) ledgerNotARecipient += 1;
    }
    const { rows: batchRows } = await this.env.db.pool.query<{ id: string; state: string }>(`SELECT id, state FROM batches WHERE campaign_id = $1`, [campaignId]);
    const batches: Record<string, number> = {};
    for (const b of batchRows) batches[b.state] = (batches[b.state] ?? 0) + 1;
    const unknownBatchesOutsideInFlight = batchRows.filter((b) => b.state === "unknown" && !this.inFlightAtFault.has(b.id)).length;
    const { rows: counterRows } = await this.env.db.pool.query<{ accepted_count: number; failed_count: number; unknown_count: number }>(
      `SELECT accepted_count, failed_count, unknown_count FROM campaigns WHERE id = $1`,
      [campaignId],
    );
    const stats = this.env.sandbox.ledger.stats();

    const result: RunResult = {
      scenario: this.scenario,
      provider: this.provider,
      fault: this.faultNotes.join("; "),
      recipients: rows.length,
      accepted: counts.accepted,
      failed: counts.failed,
      unknown: counts.unknown,
      unknownBound: options.unknownBound ? options.unknownBound() : this.unknownBound,
      duplicates,
      lost: counts.pending + counts.cancelled + acceptedNotInLedger + ledgerButFailed,
      wallSeconds: Math.round(wallSeconds * 10) / 10,
      status: report.status,
      detail: {
        pending: counts.pending,
        cancelled: counts.cancelled,
        acceptedNotInLedger,
        ledgerButFailed,
        ledgerNotARecipient,
        failedWithoutReason,
        statusReport: report.recipients,
        counters: {
          accepted: counterRows[0]!.accepted_count,
          failed: counterRows[0]!.failed_count,
          unknown: counterRows[0]!.unknown_count,
        },
        batches,
        unknownBatchesOutsideInFlight,
        sandbox: {
          requests: stats.requests[this.provider],
          errors: stats.errors,
          throttled: stats.throttled,
          hung: stats.hung,
          dedupHits: stats.dedupHits,
          lostResponses: stats.lostResponses,
        },
        workerCrashes: this.crashes.length,
        workersStarted: this.allWorkers.length,
        seed: SEED,
      },
    };
    await appendResult(result);
    console.log(`\n${formatTable([result])}\n${JSON.stringify(result.detail)}\n`);
    return result;
  }

  /** The assertions every run must pass; the in-flight bound is `result.unknownBound` (set by `verify`). */
  expectHealthy(result: RunResult): void {
    const context = `${this.scenario}/${this.provider} ${JSON.stringify(result)}`;
    expect(result.status, context).toBe("completed");
    expect(result.recipients, context).toBe(SETTINGS.recipients);
    expect(result.lost, `lost recipients: ${context}`).toBe(0);
    expect(result.duplicates, `numbers received twice: ${context}`).toBe(0);
    expect(result.detail.ledgerNotARecipient, context).toBe(0);
    expect(result.detail.failedWithoutReason, `failed recipients without a code or message: ${context}`).toBe(0);
    expect(result.accepted + result.failed + result.unknown, context).toBe(result.recipients);
    // `status` counts straight from the rows: every unknown recipient is reported as such.
    expect(result.detail.statusReport, context).toMatchObject({
      total: result.recipients,
      accepted: result.accepted,
      failed: result.failed,
      unknown: result.unknown,
      pending: 0,
    });
    // The campaign's running counters agree with the rows (nothing counted twice by a retried record).
    expect(result.detail.counters, `campaign counters: ${context}`).toEqual({ accepted: result.accepted, failed: result.failed, unknown: result.unknown });
    if (this.provider === "legacy") {
      // Re-sent under the same request_id inside the provider's window: never unknown.
      expect(result.unknown, `legacy unknowns: ${context}`).toBe(0);
    } else {
      expect(result.unknown, `unknowns above the in-flight bound: ${context}`).toBeLessThanOrEqual(result.unknownBound);
    }
    // Last, so that the data checks above are reported first: a worker process must survive every fault.
    const crashLogs = this.crashes.map((c) => `--- ${c.worker} exited ${JSON.stringify(c.exit)} ---\n${c.output}`).join("\n");
    if (result.detail.workerCrashes > 0 && process.env.FAULTS_ALLOW_CRASHES === "1") {
      note(`FAULTS_ALLOW_CRASHES=1: not failing on ${result.detail.workerCrashes} worker crash(es)\n${crashLogs}`);
      return;
    }
    expect(result.detail.workerCrashes, `worker processes crashed during ${this.scenario}/${this.provider}:\n${crashLogs}`).toBe(0);
  }

  // ------------------------------------------------------------------------------------------ faults

  /** kill -9 one worker (by pid) and start a fresh one in its slot. */
  async killAndRestart(slot: number): Promise<void> {
    const victim = this.workers[slot]!;
    await victim.stop("SIGKILL");
    this.startWorker(slot);
  }

  /** FLUSHALL, or (others on this Redis) deletion of every key of this run's prefix. */
  async flushRedis(): Promise<string> {
    const others = await othersUsingServices(this.databaseName, this.env.config.queuePrefix, this.env.config.redisUrl);
    const redis = createRedisConnection(this.env.config.redisUrl, "producer");
    try {
      if (others.length === 0) {
        await redis.flushall();
        return "FLUSHALL";
      }
      // One Lua script, so the deletion is atomic like FLUSHALL: no worker command runs half-way through it.
      const deleted = Number(await redis.eval(DELETE_PREFIX_SCRIPT, 0, `${this.env.config.queuePrefix}:*`));
      note(`Redis shared (${others.join(", ")}): deleted this run's ${deleted} keys instead of FLUSHALL`);
      return "prefix flush (shared)";
    } finally {
      redis.disconnect();
    }
  }

  /** Restarts the PostgreSQL cluster, or terminates this database's backends a few times if it cannot. */
  async restartPostgres(): Promise<string> {
    try {
      const others = await othersUsingServices(this.databaseName, this.env.config.queuePrefix, this.env.config.redisUrl);
      if (others.length === 0) {
        const version = await postgresVersion();
        try {
          await execFileP("pg_ctlcluster", ["--skip-systemctl-redirect", version, "main", "restart"], { timeout: 90_000 });
          return `pg_ctlcluster ${version} restart`;
        } catch (error) {
          note(`pg_ctlcluster restart failed (${String(error).slice(0, 300)}); falling back to pg_terminate_backend`);
        }
      } else {
        note(`PostgreSQL shared (${others.join(", ")}): terminating this database's backends instead of a restart`);
      }
      return await this.terminateBackends();
    } finally {
      await ensurePostgresUp();
    }
  }

  private async terminateBackends(rounds = 4): Promise<string> {
    let terminated = 0;
    for (let round = 0; round < rounds; round++) {
      const admin = new pg.Client({ connectionString: ADMIN_URL });
      try {
        await admin.connect();
        const { rows } = await admin.query<{ ok: boolean }>(
          `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
          [this.databaseName],
        );
        terminated += rows.filter((r) => r.ok).length;
      } finally {
        await admin.end().catch(() => {});
      }
      if (round < rounds - 1) await sleep(700);
    }
    return `pg_terminate_backend ×${rounds} (${terminated} backends)`;
  }

  /** Kills every child still running, makes sure PostgreSQL is up, drops the database and Redis keys. */
  async dispose(): Promise<void> {
    const errors: unknown[] = [];
    await Promise.all(this.allWorkers.filter((w) => w.alive).map((w) => w.stop("SIGKILL", 10_000).catch((e: unknown) => errors.push(e))));
    await ensurePostgresUp().catch((e: unknown) => errors.push(e));
    await this.env.cleanup().catch((e: unknown) => errors.push(e));
    if (errors.length) note(`dispose: ${errors.map(String).join("; ")}`);
  }
}

/**
 * The shape of every scenario file: for each provider, a world with its workers, the campaign, the
 * fault (`inject`), the bounded wait, the check, and the teardown whatever happened.
 */
export interface ScenarioOptions {
  /** Replaces the in-flight bound on unknowns, evaluated once the campaign has ended (scenario 4: hangs). */
  unknownBound?: () => number;
}

export async function runScenario(
  scenario: string,
  provider: Provider,
  body: (world: FaultWorld) => Promise<ScenarioOptions | void>,
  register: (world: FaultWorld) => void,
): Promise<RunResult> {
  const world = await FaultWorld.create(scenario, provider);
  register(world);
  const options = (await body(world)) ?? {};
  const report = await world.waitForFinal();
  const result = await world.verify(report, options);
  world.expectHealthy(result);
  return result;
}
