/**
 * Fault-suite harness: a private world (database, Redis prefix, in-process sandbox) plus real worker
 * PROCESSES that a scenario can kill -9, SIGTERM and restart, a 24,000-recipient campaign, and a recipient
 * by recipient check of the sandbox ledger against PostgreSQL once the campaign has ended.
 *
 * Every wait is bounded (a count and a deadline); every child is killed in dispose(), and by an exit hook
 * if the test process itself goes away. The processes are a WorkerFleet (worker-fleet.ts); a FaultWorld is
 * one campaign run on it, and several runs may share one fleet (the scale suite sends a legacy and a
 * messages campaign through the same workers and faults).
 *
 * Every worker process talks to the sandbox through its own listener (`sandbox.listen(name)`), so the
 * sandbox's request log says which process sent what and when, by the sandbox's own clock: a fault's
 * victim is known by its open requests, not guessed from Postgres.
 *
 * Knobs (environment): FAULTS_SEED replays the random fault moments of a run; FAULTS_EXCLUSIVE=1 uses the
 * global faults (FLUSHALL, a real PostgreSQL restart, verified by the postmaster start time); without it
 * they are scoped to this run (its Redis keys, its database's backends), so a developer's run never breaks
 * anyone else's; FAULTS_ALLOW_CRASHES=1 reports worker crashes without failing; FAULTS_RECIPIENTS.
 */
import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { expect } from "vitest";
import { getCampaignStatus, type CampaignStatusReport } from "../../src/campaigns/campaign-status.ts";
import { isFinalStatus } from "../../src/model/states.ts";
import { createRedisConnection } from "../../src/queue/redis.ts";
import { SEND_QUEUE_NAME } from "../../src/queue/send-queue.ts";
import { SEND_APIS, type SandboxRequest, type SandboxStats, type SendApi } from "../../src/sandbox/ledger.ts";
import { launchCampaign } from "../helpers/campaign-runner.ts";
import { csvOf, singaporeNumbers, type TestEnv } from "../helpers/test-env.ts";
import { note, REPO_ROOT, sleep, WorkerFleet, type FleetSettings, type WorkerProcess } from "./worker-fleet.ts";

export { REPO_ROOT, sleep, WorkerFleet, WorkerProcess } from "./worker-fleet.ts";

const execFileP = promisify(execFile);

export const RESULTS_FILE = path.join(REPO_ROOT, "bench-results", "faults-latest.json");
const ADMIN_URL = process.env.TEST_ADMIN_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

export type Provider = SendApi;
/**
 * What a run sends through: the provider API, and for `messages-resend` the at-least-once choice
 * (`--on-unknown resend`). `custom` is one request per recipient, so it runs a smaller campaign.
 */
export type Flavour = "legacy" | "messages" | "custom" | "messages-resend";
export const PROVIDERS: Flavour[] = ["legacy", "messages"];
export const providerOf = (flavour: Flavour): Provider => (flavour === "messages-resend" ? "messages" : flavour);
export const resendsUnknown = (flavour: Flavour): boolean => flavour === "messages-resend";

/** The knobs of one campaign run and of the fleet it runs on. */
export interface WorldSettings extends FleetSettings {
  recipients: number;
  /** `custom` sends one request per recipient, so its runs are smaller. */
  custom: { recipients: number; batchSize: number; latencyMs: number };
  /** Quiet period before the ledger is read, so a late duplicate would still be seen. */
  quietMs: number;
  /** From launch to a final status. */
  campaignDeadlineMs: number;
}

/** One place for every knob: 48 batches of 500, ~400 ms per request, 2 workers × 2 batches in flight. */
export const SETTINGS: WorldSettings = {
  recipients: Number(process.env.FAULTS_RECIPIENTS ?? 24_000),
  batchSize: 500,
  latencyMs: 400,
  /** `custom` sends one request per recipient (10 in flight per batch): 30 batches of 100 at 50 ms. */
  custom: { recipients: 3_000, batchSize: 100, latencyMs: 50 },
  workers: 2,
  concurrency: 2,
  providerTimeoutMs: 2_000,
  reconcileIntervalMs: 2_000,
  backoffMs: 200,
  attempts: 8,
  /** AUTO_RESUME_BACKOFF_MS: an outage pause is probed 1 s after it (then 2, 4, … s), so it costs seconds. */
  autoResumeBackoffMs: 1_000,
  /** Quiet period before the ledger is read, so a late duplicate would still be seen. */
  quietMs: 1_000,
  /** From launch to a final status; a healthy run under faults takes 10-30 s. */
  campaignDeadlineMs: Number(process.env.FAULTS_DEADLINE_MS ?? 120_000),
};

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

// ---------------------------------------------------------------------------------------------------------
// Redis

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
// ---------------------------------------------------------------------------------------------------------
// Results

export interface RunResult {
  scenario: string;
  provider: Flavour;
  fault: string;
  recipients: number;
  accepted: number;
  failed: number;
  unknown: number;
  /**
   * The most recipients that may end `unknown`: the batches the fault's victim had claimed when it hit,
   * plus batches whose request hung or lost its answer, × batch size.
   */
  unknownBound: number;
  /** legacy request_id replays served by the sandbox (each is a re-sent request it de-duplicated). */
  replays: number;
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
    /** failed, never in the ledger, and never refused by the sandbox: a recipient dropped by the product. */
    failedNotRefused: number;
    /** Batches that may legitimately be ambiguous (victims' claims, hung or lost-response requests). */
    ambiguousBatches: number;
    unknownBatches: number;
    replayBatchesOutsideAmbiguous: number;
    /** Numbers received twice from batches that were never ambiguous (resend runs; 0 elsewhere by `duplicates`). */
    duplicatesOutsideAmbiguous: number;
    /** custom: unknown recipients outside victims' batches whose own request was answered. */
    unknownCustomOutsideRequests: number;
    /** Batches with a request its live client abandoned after the provider timeout (machine load). */
    timedOutBatches: number;
    faults: FaultRecord[];
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
  ["replays", (r) => r.replays],
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
  return [
    line(COLUMNS.map(([t]) => t)),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...cells.map(line),
  ].join("\n");
}

export interface ResultsFile {
  startedAt: string;
  seed?: number;
  settings: WorldSettings;
  rows: RunResult[];
}

export async function resetResultsFile(file = RESULTS_FILE, settings = SETTINGS): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const initial: ResultsFile = { startedAt: new Date().toISOString(), settings, rows: [] };
  await writeFile(file, JSON.stringify(initial, null, 2) + "\n");
}

export async function readResultsFile(file = RESULTS_FILE): Promise<ResultsFile | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as ResultsFile;
  } catch {
    return undefined;
  }
}

/** Files run one at a time in one fork, and runs sharing a fleet await each other's writes: read-modify-write is safe. */
let appending: Promise<void> = Promise.resolve();
function appendResult(row: RunResult, fileName: string, settings: WorldSettings): Promise<void> {
  const written = appending.then(async () => {
    const file = (await readResultsFile(fileName)) ?? { startedAt: new Date().toISOString(), settings, rows: [] };
    file.seed ??= SEED;
    file.rows.push(row);
    await mkdir(path.dirname(fileName), { recursive: true });
    await writeFile(fileName, JSON.stringify(file, null, 2) + "\n");
  });
  appending = written.catch(() => {});
  return written;
}

// ---------------------------------------------------------------------------------------------------------
// Shared services

/**
 * FLUSHALL and a PostgreSQL restart hit every user of the machine's Redis and PostgreSQL, so they are used
 * only when the run owns the machine (FAULTS_EXCLUSIVE=1, as .ci/run sets it). Otherwise the fault is
 * scoped to this run: delete this run's Redis keys (atomically, like FLUSHALL), terminate this database's
 * backends; the table says which one ran.
 */
export const EXCLUSIVE = process.env.FAULTS_EXCLUSIVE === "1";

export async function postgresIsReady(): Promise<boolean> {
  try {
    await execFileP("pg_isready", ["-h", "127.0.0.1", "-p", "5432", "-q"], { timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}

/** The cluster on port 5432, picked by the same script .ci/run uses to start it. */
export async function postgresCluster(): Promise<{ version: string; name: string }> {
  const { stdout } = await execFileP(path.join(REPO_ROOT, "scripts", "pg-cluster.sh"), [], { timeout: 10_000 });
  const [version, name] = stdout.trim().split(/\s+/);
  if (!version || !name) throw new Error(`scripts/pg-cluster.sh printed "${stdout.trim()}"`);
  return { version, name };
}

/** When the PostgreSQL server last started: a real restart moves it forward. */
export async function postmasterStartTime(): Promise<Date> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  try {
    await admin.connect();
    const { rows } = await admin.query<{ t: Date }>(`SELECT pg_postmaster_start_time() AS t`);
    return rows[0]!.t;
  } finally {
    await admin.end().catch(() => {});
  }
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
      const cluster = await postgresCluster();
      await execFileP("pg_ctlcluster", ["--skip-systemctl-redirect", cluster.version, cluster.name, "start"], {
        timeout: 60_000,
      }).catch((error: unknown) => note(`pg_ctlcluster start failed: ${String(error)}`));
    }
    if (Date.now() > deadline) break;
    await sleep(250);
  }
  throw new Error(`PostgreSQL did not answer pg_isready within ${deadlineMs} ms`);
}

// ---------------------------------------------------------------------------------------------------------
// One run: a world, its workers, its campaign.

export interface InFlight {
  /** Batches of the campaign in `sending` (any age, dead workers' ones included). */
  sending: string[];
  /** Send requests the sandbox had received and not answered at `atMs`, by listener (worker name). */
  open: SandboxRequest[];
  atMs: number;
  campaignStatus: string;
}

/** What one fault hit, by the sandbox's clock: who was hit and which batches it held. */
export interface FaultRecord {
  description: string;
  atSeconds: number;
  /** Workers the fault took down without a chance to finish (kill -9); empty for the graceful faults. */
  victims: string[];
  /** Batches with a request from a victim open in the sandbox at the fault: they were mid-request. */
  victimOpenBatches: string[];
  /** Batches the victims had claimed (in `sending`, not held by a live worker's open request): the bound. */
  victimClaimedBatches: string[];
  /** Requests of any worker open at the fault: the fault hit work in flight. */
  openRequests: number;
}

export interface ScenarioOptions {
  /**
   * A fault that lets every worker finish what it holds (SIGTERM, FLUSHALL, a PostgreSQL restart): no
   * recipient may end `unknown` and no request may be re-sent (0 request_id replays).
   */
  graceful?: boolean;
}

export interface WorldOptions {
  /** Overrides of SETTINGS for this run (and for its fleet, when it makes its own). */
  settings?: Partial<WorldSettings>;
  /** Run on these workers (another run's fleet) instead of a fleet of its own; the fleet's owner disposes it. */
  fleet?: WorkerFleet;
  /** Where the run's row goes (default bench-results/faults-latest.json). */
  resultsFile?: string;
  /** The first recipient number's offset, so runs sharing one sandbox send to different numbers. */
  numbersStart?: number;
  /** The prefix of the database's name (default `faults`). */
  suite?: string;
}

export class FaultWorld {
  campaignId: string | undefined;
  readonly faults: FaultRecord[] = [];
  private launchedAt = 0;
  private faultNotes: string[] = [];
  /** phone → batch id, to attribute `custom` requests (one recipient each, no batch id in the body). */
  private batchOfPhone = new Map<string, string>();
  /** Every run on the same fleet, this one included: they share the sandbox's ledger. */
  private readonly siblings: FaultWorld[];

  private constructor(
    readonly scenario: string,
    readonly flavour: Flavour,
    readonly fleet: WorkerFleet,
    readonly settings: WorldSettings,
    private readonly ownsFleet: boolean,
    private readonly resultsFile: string,
    private readonly numbersStart: number,
    siblings: FaultWorld[],
  ) {
    this.siblings = siblings;
    siblings.push(this);
  }

  /** The runs on each fleet, so a run knows which other numbers and APIs share its sandbox. */
  private static readonly runsOfFleet = new WeakMap<WorkerFleet, FaultWorld[]>();

  get provider(): Provider {
    return providerOf(this.flavour);
  }
  get recipients(): number {
    return this.provider === "custom" ? this.settings.custom.recipients : this.settings.recipients;
  }
  get batchSize(): number {
    return this.provider === "custom" ? this.settings.custom.batchSize : this.settings.batchSize;
  }
  get env(): TestEnv {
    return this.fleet.env;
  }
  get databaseName(): string {
    return this.fleet.databaseName;
  }
  /** The fleet's workers: the live one in each slot, and every one ever started. */
  get workers(): WorkerProcess[] {
    return this.fleet.workers;
  }
  get allWorkers(): WorkerProcess[] {
    return this.fleet.allWorkers;
  }
  get crashes(): WorkerFleet["crashes"] {
    return this.fleet.crashes;
  }

  static async create(scenario: string, flavour: Flavour, options: WorldOptions = {}): Promise<FaultWorld> {
    await ensurePostgresUp();
    const settings = { ...SETTINGS, ...options.settings };
    let fleet = options.fleet;
    if (!fleet) {
      const custom = providerOf(flavour) === "custom";
      const fleetSettings = custom
        ? { ...settings, batchSize: settings.custom.batchSize, latencyMs: settings.custom.latencyMs }
        : settings;
      fleet = await WorkerFleet.create(`${options.suite ?? "faults"}_${scenario}_${flavour}`, fleetSettings, {
        suite: options.suite,
      });
    }
    let siblings = FaultWorld.runsOfFleet.get(fleet);
    if (!siblings) FaultWorld.runsOfFleet.set(fleet, (siblings = []));
    return new FaultWorld(
      scenario,
      flavour,
      fleet,
      settings,
      options.fleet === undefined,
      options.resultsFile ?? RESULTS_FILE,
      options.numbersStart ?? 0,
      siblings,
    );
  }

  /** Spawns a worker process in slot `slot` (replacing a stopped one), on its own sandbox listener. */
  startWorker(slot = this.workers.length): Promise<WorkerProcess> {
    return this.fleet.startWorker(slot);
  }

  /** Starts `count` workers and waits (bounded) until BullMQ sees them connected. */
  startWorkers(count = this.settings.workers): Promise<void> {
    return this.fleet.startWorkers(count);
  }

  /** BullMQ names each worker's Redis connection after the queue; count them (bounded). */
  waitForWorkersConnected(count: number, timeoutMs?: number): Promise<void> {
    return this.fleet.waitForWorkersConnected(count, timeoutMs);
  }

  async launch(): Promise<string> {
    const numbers = singaporeNumbers(this.recipients, this.numbersStart);
    const file = await this.env.writeCsv(
      `recipients-${this.flavour}.csv`,
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    this.launchedAt = performance.now();
    const launched = await launchCampaign(this.env, {
      file,
      name: `faults ${this.scenario} ${this.flavour}`,
      provider: this.provider,
      onUnknown: resendsUnknown(this.flavour) ? "resend" : "at_most_once",
      templateId: "1",
      batchSize: this.batchSize,
      params: { order: "F-1" },
    });
    expect(launched.recipientCount).toBe(this.recipients);
    expect(launched.enqueued).toBe(true);
    this.campaignId = launched.campaignId;
    const { rows } = await this.env.db.pool.query<{ phone: string; id: string }>(
      `SELECT r.phone, b.id FROM recipients r JOIN batches b ON b.campaign_id = r.campaign_id AND b.sequence = r.batch_sequence WHERE r.campaign_id = $1`,
      [launched.campaignId],
    );
    this.batchOfPhone = new Map(rows.map((r) => [r.phone, r.id]));
    this.fleet.note(
      `${this.scenario}/${this.flavour}: campaign ${launched.campaignId} launched (${this.recipients} recipients, seed ${SEED})`,
    );
    return launched.campaignId;
  }

  /** The batch a logged request carried: its custom_args.batch_id, else (custom) its recipient's batch. */
  batchOf(request: SandboxRequest): string | undefined {
    return (
      request.batchId ?? (request.targets[0] === undefined ? undefined : this.batchOfPhone.get(request.targets[0]))
    );
  }

  /** Postgres's `sending` batches and the sandbox's open requests, now. */
  async inFlight(atMs = Date.now()): Promise<InFlight> {
    const { rows } = await this.env.db.pool.query<{ id: string | null; status: string }>(
      `SELECT b.id, c.status FROM campaigns c LEFT JOIN batches b ON b.campaign_id = c.id AND b.state = 'sending' WHERE c.id = $1`,
      [this.campaignId],
    );
    const open = this.env.sandbox.ledger.openAt(atMs, { api: this.provider }).filter((r) => r.via !== undefined);
    return {
      sending: rows.flatMap((r) => (r.id ? [r.id] : [])),
      open,
      atMs,
      campaignStatus: rows[0]?.status ?? "missing",
    };
  }

  /**
   * Waits (bounded) until the sandbox holds open requests: at least `minOpen` in all, and at least one
   * from each worker in `from` (the fault's victims). Throws when the campaign ended first: a fault that
   * hits nothing in flight proves nothing.
   */
  /** Requests of this run's API the sandbox holds open right now. */
  openRequestCount(): number {
    return this.env.sandbox.ledger.openAt(Date.now(), { api: this.provider }).length;
  }

  async waitForOpenRequests(minOpen: number, from: WorkerProcess[] = [], timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 6_000; i++) {
      await this.superviseWorkers();
      const open = this.env.sandbox.ledger.openAt(Date.now(), { api: this.provider });
      const victimsBusy = from.every((w) => open.some((r) => r.via === w.name));
      if (open.length >= minOpen && victimsBusy) return;
      const status = await this.env.db.pool
        .query<{ status: string }>(`SELECT status FROM campaigns WHERE id = $1`, [this.campaignId])
        .then((r) => r.rows[0]?.status)
        .catch(() => "running");
      if (status !== "running") throw new Error(`campaign is ${status} before the fault could hit work in flight`);
      if (Date.now() > deadline) break;
      await sleep(10);
    }
    throw new Error(
      `fewer than ${minOpen} requests in flight (victims ${from.map((w) => w.name).join(", ")}) within ${timeoutMs} ms`,
    );
  }

  /**
   * Records what a fault hit. For victims (kill -9): the batches they had open requests for (mid-request)
   * and the batches they had claimed — `sending` in Postgres after the kill, not held by a live worker's
   * open request, and not already a previous victim's. Those are the only batches allowed to end unknown.
   */
  async recordFault(
    description: string,
    atMs: number,
    victims: WorkerProcess[] = [],
    options: { heldBatches?: string[]; untilMs?: number } = {},
  ): Promise<FaultRecord> {
    const now = await this.inFlight(atMs);
    const victimNames = new Set(victims.map((w) => w.name));
    const openBatches = (names: (via: string) => boolean) =>
      new Set(now.open.filter((r) => names(r.via!)).flatMap((r) => this.batchOf(r) ?? []));
    const victimOpen = openBatches((via) => victimNames.has(via));
    const liveOpen = openBatches((via) => !victimNames.has(via));
    const earlier = new Set(this.faults.flatMap((f) => f.victimClaimedBatches));
    // `heldBatches`: a fault that hits every worker's in-flight batches at once (PostgreSQL going away),
    // for as long as it lasts (`untilMs`): those and every batch with a request open during the fault.
    const duringFault = options.untilMs
      ? this.env.sandbox.ledger
          .requestLog({ api: this.provider })
          .filter((r) => r.receivedAt <= options.untilMs! && (r.answeredAt === undefined || r.answeredAt >= atMs))
          .flatMap((r) => this.batchOf(r) ?? [])
      : [];
    const claimed = options.heldBatches
      ? [...new Set([...options.heldBatches, ...duringFault])]
      : victims.length === 0
        ? []
        : [...new Set([...victimOpen, ...now.sending.filter((b) => !liveOpen.has(b) && !earlier.has(b))])];
    const record: FaultRecord = {
      description,
      atSeconds: Math.round((performance.now() - this.launchedAt) / 100) / 10,
      victims: [...victimNames],
      victimOpenBatches: [...victimOpen],
      victimClaimedBatches: claimed,
      openRequests: now.open.length,
    };
    this.faults.push(record);
    this.faultNotes.push(`${description} @${record.atSeconds.toFixed(1)}s`);
    this.fleet.note(
      `${this.scenario}/${this.flavour}: ${description}: ${now.open.length} request(s) open, ${now.sending.length} batch(es) sending` +
        (victims.length ? `, victim mid-request on ${victimOpen.size}, claimed ${claimed.length}` : ""),
    );
    return record;
  }

  /** Adds to the run's fault description without touching the bound. */
  describeFault(description: string): void {
    this.faultNotes.push(description);
  }

  async waitForFinal(timeoutMs = this.settings.campaignDeadlineMs): Promise<CampaignStatusReport> {
    const deadline = Date.now() + timeoutMs;
    let last: CampaignStatusReport | undefined;
    let lastError: unknown;
    for (let i = 0; i < 2_000; i++) {
      await this.superviseWorkers();
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
      .query(
        `SELECT state, count(*)::int AS n, max(attempts) AS max_attempts FROM batches WHERE campaign_id = $1 GROUP BY state`,
        [this.campaignId],
      )
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
        for (const list of ["wait", "active", "paused"])
          if ((await redis.lpos(`${base}:${list}`, b.id)) !== null) where.push(list);
        for (const set of ["delayed", "prioritized", "completed", "failed"])
          if ((await redis.zscore(`${base}:${set}`, b.id)) !== null) where.push(set);
        const lock = await redis.get(`${base}:${b.id}:lock`);
        const { data: _data, opts: _opts, ...job } = hash;
        out.push({
          batch: b.id,
          state: b.state,
          job: Object.keys(hash).length ? job : null,
          in: where,
          lock: lock !== null,
        });
      }
      const keys = (await redis.keys(`${base}:*`)).filter((key) => !/:[0-9a-f-]{36}(:lock)?$/.test(key));
      const meta = await redis.hgetall(`${base}:meta`);
      return JSON.stringify({ batches: out, queueKeys: keys, meta });
    } finally {
      redis.disconnect();
    }
  }

  /** A crashed worker is restarted in its slot and counted (WorkerFleet.superviseWorkers). */
  superviseWorkers(): Promise<void> {
    return this.fleet.superviseWorkers();
  }

  workerLogs(maxPerWorker = 4_000): string {
    return this.fleet.workerLogs(maxPerWorker);
  }

  /**
   * Ledger against Postgres, recipient by recipient, after a quiet period (so a late duplicate is seen):
   * what the sandbox accepted, refused (with its code) and replayed, against every recipient's state.
   */
  async verify(report: CampaignStatusReport): Promise<RunResult> {
    const wallSeconds = (performance.now() - this.launchedAt) / 1000;
    const campaignId = this.campaignId!;
    const ledgerApi = this.env.sandbox.ledger;
    // Quiet period: the campaign is final, so nothing may reach the sandbox any more; wait and check. A
    // sibling run on the same fleet may still be sending through its own API: only its requests are allowed.
    const othersApis = new Set(this.siblings.filter((r) => r !== this).map((r) => r.provider));
    othersApis.delete(this.provider);
    const ownRequests = () => ledgerApi.requestLog().filter((r) => !othersApis.has(r.api)).length;
    const requestsAtEnd = ownRequests();
    await sleep(this.settings.quietMs);
    const lateRequests = ownRequests() - requestsAtEnd;

    const { rows } = await this.env.db.pool.query<{
      phone: string;
      state: string;
      batch_id: string;
      failure_code: number | null;
      failure_message: string | null;
    }>(
      `SELECT r.phone, CASE WHEN r.state = 'pending' AND b.state = 'sent' THEN 'accepted' ELSE r.state::text END AS state,
              b.id AS batch_id, r.failure_code, r.failure_message
       FROM recipients r JOIN batches b ON b.campaign_id = r.campaign_id AND b.sequence = r.batch_sequence WHERE r.campaign_id = $1`,
      [campaignId],
    );
    const ledger = new Map(Object.entries(ledgerApi.sent(this.provider)));
    const refused = ledgerApi.refused(this.provider);
    // Every number another API received belongs to a sibling run on that API (none when the run is alone).
    let otherApis = 0;
    for (const api of SEND_APIS) {
      if (api === this.provider) continue;
      for (const phone of Object.keys(ledgerApi.sent(api)))
        if (!this.siblings.some((r) => r !== this && r.provider === api && r.batchOfPhone.has(phone))) otherApis += 1;
    }
    expect(otherApis, "numbers sent through the other API").toBe(0);

    const requests = ledgerApi.requestLog({ api: this.provider });
    const ambiguousTargetsExtra = new Set<string>();
    const ambiguous = new Set(this.faults.flatMap((f) => f.victimClaimedBatches));
    for (const r of requests)
      if (r.outcome === "hang" || r.outcome === "lose-response") ambiguous.add(this.batchOf(r) ?? "?");
    const replayRequests = requests.filter((r) => r.outcome === "replay");
    // A request its client gave up on and lived on is ambiguous too: on a loaded machine a 400 ms answer
    // can take longer than PROVIDER_TIMEOUT_MS (the in-process sandbox even stamps arrival late, so the gap
    // it sees says little). A client that died with the request open (kill -9, a worker exiting at once
    // on SIGTERM) is not excused: its process exited within 1 s of dropping the connection.
    const exitOf = new Map(this.allWorkers.map((w) => [w.name, w.exitedAt]));
    const timedOut = requests.filter((r) => {
      if (r.outcome === "hang" || r.outcome === "lose-response" || r.via === undefined) return false;
      // Answered later than the client's deadline: the client had already given up (machine load).
      if (r.answeredAt !== undefined && r.answeredAt - r.receivedAt >= this.settings.providerTimeoutMs) return true;
      if (r.abandonedAt === undefined) return false;
      const exitedAt = exitOf.get(r.via);
      return exitedAt === undefined || exitedAt - r.abandonedAt > 1_000;
    });
    const timedOutBatches = new Set(timedOut.map((r) => this.batchOf(r) ?? "?"));
    for (const b of timedOutBatches) ambiguous.add(b);
    for (const r of timedOut) if (this.provider === "custom") r.targets.forEach((t) => ambiguousTargetsExtra.add(t));
    // custom is one request per recipient: an unanswered request may leave only its own recipient unknown.
    const ambiguousTargets = new Set(
      requests.filter((r) => r.outcome === "hang" || r.outcome === "lose-response").flatMap((r) => r.targets),
    );
    const victimBatches = new Set(this.faults.flatMap((f) => f.victimClaimedBatches));
    const replayBatchesOutsideAmbiguous = new Set(
      replayRequests.map((r) => this.batchOf(r) ?? "?").filter((b) => !ambiguous.has(b)),
    ).size;

    const counts = { accepted: 0, failed: 0, unknown: 0, pending: 0, cancelled: 0 };
    let acceptedNotInLedger = 0;
    let ledgerButFailed = 0;
    let failedWithoutReason = 0;
    let failedNotRefused = 0;
    let unknownCustomOutsideRequests = 0;
    const recipientPhones = new Set<string>();
    const unknownBatches = new Set<string>();
    for (const r of rows) {
      recipientPhones.add(r.phone);
      counts[r.state as keyof typeof counts] += 1;
      const times = ledger.get(r.phone) ?? 0;
      if (r.state === "accepted" && times === 0) acceptedNotInLedger += 1;
      if (r.state === "unknown") {
        unknownBatches.add(r.batch_id);
        if (
          this.provider === "custom" &&
          !victimBatches.has(r.batch_id) &&
          !ambiguousTargets.has(r.phone) &&
          !ambiguousTargetsExtra.has(r.phone)
        ) {
          unknownCustomOutsideRequests += 1;
        }
      }
      if (r.state === "failed") {
        if (times > 0) ledgerButFailed += 1;
        else if (!refused.has(r.phone)) failedNotRefused += 1;
        if (r.failure_code === null && !r.failure_message) failedWithoutReason += 1;
      }
    }
    let duplicates = 0;
    let duplicatesOutsideAmbiguous = 0;
    let ledgerNotARecipient = 0;
    for (const [phone, times] of ledger) {
      if (times > 1) {
        duplicates += 1;
        if (!ambiguous.has(this.batchOfPhone.get(phone) ?? "?")) duplicatesOutsideAmbiguous += 1;
      }
      if (!recipientPhones.has(phone)) ledgerNotARecipient += 1;
    }
    const { rows: batchRows } = await this.env.db.pool.query<{ id: string; state: string }>(
      `SELECT id, state FROM batches WHERE campaign_id = $1`,
      [campaignId],
    );
    const batches: Record<string, number> = {};
    for (const b of batchRows) batches[b.state] = (batches[b.state] ?? 0) + 1;
    const unknownBatchesOutsideInFlight = [...unknownBatches].filter((b) => !ambiguous.has(b)).length;
    const { rows: counterRows } = await this.env.db.pool.query<{
      accepted_count: number;
      failed_count: number;
      unknown_count: number;
    }>(`SELECT accepted_count, failed_count, unknown_count FROM campaigns WHERE id = $1`, [campaignId]);
    const stats = ledgerApi.stats();
    this.batchStates = new Map(batchRows.map((b) => [b.id, b.state]));
    this.unknownBatchIds = unknownBatches;
    this.ledgerTimes = ledger;
    this.replayBatchIds = new Set(replayRequests.map((r) => this.batchOf(r) ?? "?"));
    this.timedOutBatches = timedOutBatches;

    const result: RunResult = {
      scenario: this.scenario,
      provider: this.flavour,
      fault: this.faultNotes.join("; "),
      recipients: rows.length,
      accepted: counts.accepted,
      failed: counts.failed,
      unknown: counts.unknown,
      unknownBound: ambiguous.size * this.batchSize,
      replays: replayRequests.length,
      duplicates,
      lost: counts.pending + counts.cancelled + acceptedNotInLedger + ledgerButFailed + failedNotRefused,
      wallSeconds: Math.round(wallSeconds * 10) / 10,
      status: report.status,
      detail: {
        pending: counts.pending,
        cancelled: counts.cancelled,
        acceptedNotInLedger,
        ledgerButFailed,
        ledgerNotARecipient,
        failedWithoutReason,
        failedNotRefused,
        ambiguousBatches: ambiguous.size,
        unknownBatches: unknownBatches.size,
        replayBatchesOutsideAmbiguous,
        duplicatesOutsideAmbiguous,
        unknownCustomOutsideRequests,
        timedOutBatches: timedOutBatches.size,
        faults: this.faults,
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
    this.lateRequests = lateRequests;
    await appendResult(result, this.resultsFile, this.settings);
    console.log(`\n${formatTable([result])}\n${JSON.stringify({ ...result.detail, faults: undefined })}\n`);
    return result;
  }

  private batchStates = new Map<string, string>();
  private unknownBatchIds = new Set<string>();
  private replayBatchIds = new Set<string>();
  private ledgerTimes = new Map<string, number>();
  private lateRequests = 0;
  private timedOutBatches = new Set<string>();
  private faultsStartMs(): number {
    return this.env.sandbox.ledger.requestLog()[0]?.receivedAt ?? 0;
  }

  /** The assertions every run must pass, plus the scenario's own (`graceful`). */
  expectHealthy(result: RunResult, options: ScenarioOptions = {}): void {
    const replayDetail = [...this.replayBatchIds].slice(0, 4).map((b) =>
      this.env.sandbox.ledger
        .requestLog({ api: this.provider })
        .filter((r) => this.batchOf(r) === b)
        .map(
          (r) =>
            `${r.via}:${r.outcome}@+${r.receivedAt - this.faultsStartMs()}${r.abandonedAt ? `/abandoned+${r.abandonedAt - r.receivedAt}` : ""}/answered+${(r.answeredAt ?? NaN) - r.receivedAt}`,
        )
        .join(" "),
    );
    const crashes = this.crashes
      .map((c) => `--- ${c.worker} exited ${JSON.stringify(c.exit)} ---\n${c.output.slice(-1_500)}`)
      .join("\n");
    const context = `${this.scenario}/${this.flavour} ${JSON.stringify({ ...result, detail: { ...result.detail, faults: undefined } })}${replayDetail.length ? `\nreplayed batches' requests: ${replayDetail.join(" | ")}` : ""}${crashes ? `\nworker crashes:\n${crashes}` : ""}`;
    expect(result.status, context).toBe("completed");
    expect(result.recipients, context).toBe(this.recipients);
    expect(this.lateRequests, `requests reaching the sandbox after the campaign ended: ${context}`).toBe(0);
    // The sandbox refuses nothing in these scenarios: every failure is the product's, and counts as lost.
    expect(result.failed, `failed recipients where the provider refused nothing: ${context}`).toBe(0);
    expect(result.lost, `lost recipients: ${context}`).toBe(0);
    expect(result.detail.ledgerNotARecipient, context).toBe(0);
    expect(result.detail.failedWithoutReason, `failed recipients without a code or message: ${context}`).toBe(0);
    expect(result.accepted + result.failed + result.unknown, context).toBe(result.recipients);
    expect(result.detail.statusReport, context).toMatchObject({
      total: result.recipients,
      accepted: result.accepted,
      failed: result.failed,
      unknown: result.unknown,
      pending: 0,
    });
    expect(result.detail.counters, `campaign counters: ${context}`).toEqual({
      accepted: result.accepted,
      failed: result.failed,
      unknown: result.unknown,
    });

    // Unknowns and replays only where the fault left an outcome open: the victims' claimed batches, hung or
    // lost-response requests. Never elsewhere, never more.
    expect(result.detail.unknownBatchesOutsideInFlight, `unknown batches no fault touched: ${context}`).toBe(0);
    expect(result.unknown, `unknowns above the bound: ${context}`).toBeLessThanOrEqual(result.unknownBound);
    expect(
      result.detail.unknownCustomOutsideRequests,
      `custom recipients unknown although their request was answered: ${context}`,
    ).toBe(0);
    expect(
      result.detail.replayBatchesOutsideAmbiguous,
      `request_id replays of batches no fault touched: ${context}`,
    ).toBe(0);
    expect(result.replays, `request_id replays above the ambiguous batches: ${context}`).toBeLessThanOrEqual(
      result.detail.ambiguousBatches,
    );
    if (resendsUnknown(this.flavour)) {
      // At least once: an ambiguous batch may reach a number twice, nothing else may.
      expect(result.unknown, `unknowns with --on-unknown resend: ${context}`).toBe(0);
      expect(
        result.detail.duplicatesOutsideAmbiguous,
        `numbers received twice outside ambiguous batches: ${context}`,
      ).toBe(0);
    } else {
      expect(result.duplicates, `numbers received twice: ${context}`).toBe(0);
    }
    if (this.provider === "legacy")
      expect(result.unknown, `legacy unknowns (same request_id re-send): ${context}`).toBe(0);
    if (options.graceful) {
      // Graceful: nothing unknown and nothing re-sent, except batches whose live client timed out.
      const excused = (b: string) => this.timedOutBatches.has(b);
      expect(
        [...this.unknownBatchIds].filter((b) => !excused(b)),
        `unknown batches after a graceful fault: ${context}`,
      ).toEqual([]);
      expect(
        [...this.replayBatchIds].filter((b) => !excused(b)),
        `request_id replays after a graceful fault (a request was re-sent): ${context}`,
      ).toEqual([]);
      expect(result.duplicates, `duplicates after a graceful fault: ${context}`).toBe(0);
    }
    for (const fault of this.faults) {
      // Every fault hit work in flight.
      expect(fault.openRequests, `no request in flight at "${fault.description}": ${context}`).toBeGreaterThan(0);
      if (fault.victims.length === 0) continue;
      expect(
        fault.victimOpenBatches.length,
        `victim of "${fault.description}" had nothing in flight: ${context}`,
      ).toBeGreaterThan(0);
      // A batch whose request was open when its worker died: the provider got it, the worker never heard.
      for (const batch of fault.victimOpenBatches) {
        const where = `batch ${batch} was mid-request at "${fault.description}" (${this.batchStates.get(batch)}): ${context}`;
        if (this.provider === "legacy")
          expect(this.replayBatchIds.has(batch), `no request_id replay for ${where}`).toBe(true);
        else if (resendsUnknown(this.flavour)) {
          const phones = [...this.batchOfPhone].filter(([, b]) => b === batch).map(([p]) => p);
          expect(
            phones.some((p) => (this.ledgerTimes.get(p) ?? 0) >= 2),
            `not re-sent (--on-unknown resend): ${where}`,
          ).toBe(true);
        } else expect(this.unknownBatchIds.has(batch), `not unknown: ${where}`).toBe(true);
      }
    }
    const crashLogs = this.crashes
      .map((c) => `--- ${c.worker} exited ${JSON.stringify(c.exit)} ---\n${c.output}`)
      .join("\n");
    if (result.detail.workerCrashes > 0 && process.env.FAULTS_ALLOW_CRASHES === "1") {
      this.fleet.note(
        `FAULTS_ALLOW_CRASHES=1: not failing on ${result.detail.workerCrashes} worker crash(es)\n${crashLogs}`,
      );
      return;
    }
    expect(
      result.detail.workerCrashes,
      `worker processes crashed during ${this.scenario}/${this.flavour}:\n${crashLogs}`,
    ).toBe(0);
  }

  // ------------------------------------------------------------------------------------------ faults

  /**
   * kill -9 the worker in `slot` once it is mid-request (an open request in the sandbox), record what it
   * held by the sandbox's clock at the kill, and start a fresh one in its slot.
   */
  async killAndRestart(slot: number): Promise<FaultRecord> {
    const victim = this.workers[slot]!;
    await this.waitForOpenRequests(1, [victim]);
    victim.expectedExit = true;
    victim.child.kill("SIGKILL");
    // Same thread as the sandbox: no request can be answered between the signal and this timestamp.
    const atMs = Date.now();
    await victim.stop("SIGKILL");
    const record = await this.recordFault(`kill -9 ${victim.name}`, atMs, [victim]);
    await this.startWorker(slot);
    return record;
  }

  /** FLUSHALL (FAULTS_EXCLUSIVE=1), or an atomic deletion of every key of this run's prefix. */
  async flushRedis(): Promise<string> {
    const redis = createRedisConnection(this.env.config.redisUrl, "producer");
    try {
      if (EXCLUSIVE) {
        await redis.flushall();
        return "FLUSHALL";
      }
      // One Lua script, so the deletion is atomic like FLUSHALL: no worker command runs half-way through it.
      const deleted = Number(await redis.eval(DELETE_PREFIX_SCRIPT, 0, `${this.env.config.queuePrefix}:*`));
      this.fleet.note(`not exclusive: deleted this run's ${deleted} Redis keys instead of FLUSHALL`);
      return "prefix flush (scoped)";
    } finally {
      redis.disconnect();
    }
  }

  /**
   * FAULTS_EXCLUSIVE=1: restarts the cluster on port 5432 and proves it (the postmaster start time moved
   * forward); any failure fails the run, never a silent downgrade. Otherwise terminates this database's
   * backends a few times. Either way the workers must log that they lost PostgreSQL.
   */
  async restartPostgres(): Promise<string> {
    try {
      if (EXCLUSIVE) {
        const cluster = await postgresCluster();
        const before = await postmasterStartTime();
        await execFileP("pg_ctlcluster", ["--skip-systemctl-redirect", cluster.version, cluster.name, "restart"], {
          timeout: 90_000,
        });
        await ensurePostgresUp();
        const after = await postmasterStartTime();
        expect(
          after.getTime(),
          `postmaster start time did not move forward (${before.toISOString()} → ${after.toISOString()})`,
        ).toBeGreaterThan(before.getTime());
        return `pg_ctlcluster ${cluster.version} ${cluster.name} restart (postmaster ${before.toISOString().slice(11, 23)} → ${after.toISOString().slice(11, 23)})`;
      }
      this.fleet.note("not exclusive: terminating this database's backends instead of a restart");
      return await this.terminateBackends();
    } finally {
      await ensurePostgresUp();
    }
  }

  /** Workers that logged losing PostgreSQL (the processor's "PostgreSQL is unreachable"). */
  workersThatLoggedDisconnect(): string[] {
    return this.allWorkers
      .filter((w) => /PostgreSQL is unreachable|PostgreSQL still unreachable/.test(w.logs))
      .map((w) => w.name);
  }

  /**
   * Waits (bounded) until each of `workers` has logged "PostgreSQL closed a connection" (send-worker-runtime.ts:
   * once per pooled connection whose socket PostgreSQL closed) and asserts it. Every worker must: a restart or
   * pg_terminate_backend ends every backend, and every live worker holds at least one open connection, since
   * its reconciler queries every RECONCILE_INTERVAL_MS (2 s here), well inside the pool's 10 s idle timeout.
   * Unlike "PostgreSQL is unreachable", it does not depend on a job touching PostgreSQL during the outage.
   */
  async expectConnectionLossLogged(workers: WorkerProcess[], timeoutMs = 5_000): Promise<void> {
    const logged = (w: WorkerProcess) => w.logs.includes('"msg":"PostgreSQL closed a connection"');
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 500 && Date.now() < deadline && !workers.every(logged); i++) await sleep(10);
    expect(
      workers.filter((w) => !logged(w)).map((w) => w.name),
      `workers that did not log losing their PostgreSQL connections\n${this.workerLogs()}`,
    ).toEqual([]);
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

  /**
   * Kills every child still running, makes sure PostgreSQL is up, drops the database and Redis keys: the
   * fleet's owner does; a run on another run's fleet leaves it to that one.
   */
  async dispose(): Promise<void> {
    if (this.ownsFleet) await this.fleet.dispose(() => ensurePostgresUp());
  }
}

/**
 * The shape of every scenario file: for each flavour, a world with its workers, the campaign, the fault
 * (`inject`), the bounded wait, the check, and the teardown whatever happened.
 */
export async function runScenario(
  scenario: string,
  flavour: Flavour,
  body: (world: FaultWorld) => Promise<ScenarioOptions | void>,
  register: (world: FaultWorld) => void,
): Promise<RunResult> {
  const world = await FaultWorld.create(scenario, flavour);
  register(world);
  const options = (await body(world)) ?? {};
  const report = await world.waitForFinal();
  const result = await world.verify(report);
  world.expectHealthy(result, options);
  return result;
}
