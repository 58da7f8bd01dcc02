/**
 * Real send-worker PROCESSES for the fault and scale suites: a private world (database, Redis prefix,
 * in-process sandbox) and the workers serving it, each on its own sandbox listener (`sandbox.listen(name)`),
 * so the sandbox's request log says which process sent what and when. A fleet can carry several campaign
 * runs at once (harness.ts FaultWorld); a crashed worker is restarted in its slot, as a process manager
 * would, and counted. Where a worker runs is a placement: here, or elsewhere through a launcher (the scale
 * suite's `ip netns exec`) with its URLs routed through a relay.
 *
 * Every child is killed in dispose(), and by an exit hook if the test process itself goes away.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Queue } from "bullmq";
import { createRedisConnection } from "../../src/queue/redis.ts";
import { SEND_QUEUE_NAME } from "../../src/queue/send-queue.ts";
import type { SandboxOptions } from "../../src/sandbox/server.ts";
import { createTestEnv, type TestEnv } from "../helpers/test-env.ts";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function note(message: string, suite = "faults"): void {
  console.log(`[${suite} ${new Date().toISOString().slice(11, 23)}] ${message}`);
}

const liveChildren = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of liveChildren) child.kill("SIGKILL");
});

const OUTPUT_LIMIT = 200_000;
const MAX_CRASH_RESTARTS = 6;

export class WorkerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Date.now() when the process exited (the sandbox's clock: same process). */
  exitedAt: number | undefined;
  /** Set before the harness stops it on purpose; an exit without it is a crash. */
  expectedExit = false;
  readonly startedAt = Date.now();
  private output = "";

  /** `launcher`: a command that runs `node …` elsewhere and execs it (`ip netns exec <ns>`), so the pid is node's. */
  constructor(
    readonly name: string,
    env: NodeJS.ProcessEnv,
    launcher: readonly string[] = [],
  ) {
    const node = [process.execPath, "--import", "tsx", "workers/send-worker.ts"];
    const [command, ...args] = [...launcher, ...node];
    this.child = spawn(command!, args, { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
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
        this.exitedAt = Date.now();
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
  async stop(
    signal: NodeJS.Signals,
    timeoutMs = 20_000,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null; forced: boolean }> {
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

/** What every worker of a fleet is configured with (its environment), and how many run. */
export interface FleetSettings {
  workers: number;
  concurrency: number;
  batchSize: number;
  /** The sandbox's answer delay for every send request. */
  latencyMs: number;
  providerTimeoutMs: number;
  reconcileIntervalMs: number;
  backoffMs: number;
  attempts: number;
  autoResumeBackoffMs: number;
  /** SEND_RATE_LIMIT: requests per second across every worker (0: none). */
  rateLimit?: number;
  /** How long started workers may take to connect (default 30 s). */
  startTimeoutMs?: number;
}

/** The URLs a worker reaches PostgreSQL, Redis and its sandbox listener by. */
export interface WorkerUrls {
  databaseUrl: string;
  redisUrl: string;
  sandboxUrl: string;
}

/** Where a worker runs: here (the default), or through a launcher with its URLs routed (a host's relay). */
export interface WorkerPlacement {
  /** Put before the worker's name, e.g. the host: `h2/`. */
  namePrefix?: string;
  launcher?: readonly string[];
  route?(urls: WorkerUrls): Promise<WorkerUrls>;
  env?: Record<string, string>;
}

export class WorkerFleet {
  /** The live worker in each slot (a stopped one stays until its slot is refilled). */
  readonly workers: WorkerProcess[] = [];
  /** Every worker ever started, in order. */
  readonly allWorkers: WorkerProcess[] = [];
  readonly crashes: Array<{
    worker: string;
    exit: { code: number | null; signal: NodeJS.Signals | null };
    output: string;
  }> = [];
  /** Where the worker of a slot runs; the default runs it here with the world's URLs. */
  placement: (slot: number) => WorkerPlacement = () => ({});

  private constructor(
    readonly label: string,
    readonly env: TestEnv,
    readonly databaseName: string,
    readonly settings: FleetSettings,
    private readonly suite: string,
  ) {}

  /** A fresh world (database, Redis prefix, sandbox at `settings.latencyMs`) for workers with these settings. */
  static async create(
    label: string,
    settings: FleetSettings,
    options: { suite?: string; sandbox?: SandboxOptions } = {},
  ): Promise<WorkerFleet> {
    const env = await createTestEnv(label, {
      env: {
        BATCH_SIZE: String(settings.batchSize),
        SEND_ATTEMPTS: String(settings.attempts),
        SEND_BACKOFF_MS: String(settings.backoffMs),
        SEND_CONCURRENCY: String(settings.concurrency),
        PROVIDER_TIMEOUT_MS: String(settings.providerTimeoutMs),
        RECONCILE_INTERVAL_MS: String(settings.reconcileIntervalMs),
        LOG_LEVEL: "warn",
      },
      sandbox: { latencyMs: settings.latencyMs, ...options.sandbox },
    });
    const databaseName = new URL(env.config.databaseUrl).pathname.slice(1);
    return new WorkerFleet(label, env, databaseName, settings, options.suite ?? "faults");
  }

  note(message: string): void {
    note(message, this.suite);
  }

  private workerEnv(urls: WorkerUrls, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const c = this.env.config;
    const s = this.settings;
    return {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TMPDIR: process.env.TMPDIR,
      DATABASE_URL: urls.databaseUrl,
      REDIS_URL: urls.redisUrl,
      QUEUE_PREFIX: c.queuePrefix,
      ENGAGELAB_MESSAGES_URL: urls.sandboxUrl,
      ENGAGELAB_SMS_URL: urls.sandboxUrl,
      ENGAGELAB_OTP_URL: urls.sandboxUrl,
      PROVIDER_TIMEOUT_MS: String(s.providerTimeoutMs),
      SEND_CONCURRENCY: String(s.concurrency),
      SEND_BACKOFF_MS: String(s.backoffMs),
      SEND_ATTEMPTS: String(s.attempts),
      RECONCILE_INTERVAL_MS: String(s.reconcileIntervalMs),
      BATCH_SIZE: String(s.batchSize),
      AUTO_RESUME_BACKOFF_MS: String(s.autoResumeBackoffMs),
      ...(s.rateLimit ? { SEND_RATE_LIMIT: String(s.rateLimit) } : {}),
      LOG_LEVEL: "warn",
      ...extra,
    };
  }

  /** Spawns a worker process in slot `slot` (replacing a stopped one), on its own sandbox listener. */
  async startWorker(slot = this.workers.length): Promise<WorkerProcess> {
    const placement = this.placement(slot);
    const name = `${placement.namePrefix ?? ""}w${slot}.${this.allWorkers.length}`;
    const local: WorkerUrls = {
      databaseUrl: this.env.config.databaseUrl,
      redisUrl: this.env.config.redisUrl,
      sandboxUrl: await this.env.sandbox.listen(name),
    };
    const urls = placement.route ? await placement.route(local) : local;
    const worker = new WorkerProcess(name, this.workerEnv(urls, placement.env), placement.launcher);
    this.workers[slot] = worker;
    this.allWorkers.push(worker);
    return worker;
  }

  /** Starts `count` workers (slots 0…count-1, all at once) and waits (bounded) until BullMQ sees them connected. */
  async startWorkers(count = this.settings.workers): Promise<void> {
    for (let i = 0; i < count; i++) await this.startWorker(i);
    await this.waitForWorkersConnected(count);
  }

  /** BullMQ names each worker's Redis connection after the queue; count them (bounded). */
  async waitForWorkersConnected(count: number, timeoutMs = this.settings.startTimeoutMs ?? 30_000): Promise<void> {
    const connection = createRedisConnection(this.env.config.redisUrl, "producer");
    const queue = new Queue(SEND_QUEUE_NAME, { connection, prefix: this.env.config.queuePrefix });
    try {
      const deadline = Date.now() + timeoutMs;
      for (let i = 0; i < 2_000 && Date.now() < deadline; i++) {
        await this.superviseWorkers();
        if ((await queue.getWorkersCount().catch(() => 0)) >= count) return;
        await sleep(100);
      }
      throw new Error(
        `only ${await queue.getWorkersCount().catch(() => 0)} of ${count} workers connected within ${timeoutMs} ms\n${this.workerLogs()}`,
      );
    } finally {
      await queue.close();
      connection.disconnect();
    }
  }

  /**
   * A worker that exits without being asked to is a bug (expectHealthy fails the run for it). Like a
   * process manager would, restart it in its slot, so the run still ends and the ledger check still says
   * whether anything was lost; give up after MAX_CRASH_RESTARTS (a crash loop).
   */
  async superviseWorkers(): Promise<void> {
    for (const [slot, worker] of this.workers.entries()) {
      if (!worker?.crashed || this.crashes.some((c) => c.worker === worker.name)) continue;
      this.crashes.push({ worker: worker.name, exit: worker.exitInfo!, output: worker.logs.slice(-3_000) });
      this.note(`${this.label}: worker ${worker.name} CRASHED ${JSON.stringify(worker.exitInfo)}; restarting it`);
      if (this.crashes.length > MAX_CRASH_RESTARTS) {
        throw new Error(`worker processes keep crashing (${this.crashes.length} crashes)\n${this.workerLogs()}`);
      }
      await this.startWorker(slot);
    }
  }

  workerLogs(maxPerWorker = 4_000): string {
    return this.allWorkers
      .map(
        (w) =>
          `--- worker ${w.name} pid ${w.pid} ${w.alive ? "alive" : JSON.stringify(w.exitInfo)} ---\n${w.logs.slice(-maxPerWorker)}`,
      )
      .join("\n");
  }

  /** Kills every child still running, then drops the database and Redis keys (after `beforeCleanup`). */
  async dispose(beforeCleanup?: () => Promise<void>): Promise<void> {
    const errors: unknown[] = [];
    await Promise.all(
      this.allWorkers
        .filter((w) => w.alive)
        .map((w) => w.stop("SIGKILL", 10_000).catch((e: unknown) => errors.push(e))),
    );
    await beforeCleanup?.().catch((e: unknown) => errors.push(e));
    await this.env.cleanup().catch((e: unknown) => errors.push(e));
    if (errors.length) this.note(`dispose: ${errors.map(String).join("; ")}`);
  }
}
