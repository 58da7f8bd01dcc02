/**
 * Scale-suite harness: worker processes as separate hosts. Each host is a network namespace (network.ts)
 * whose workers reach PostgreSQL, Redis and their sandbox listeners only through the host's TCP relay
 * (relay.ts: 10–30 ms per chunk each way, stall, reset). One ScaleWorld is one fleet of workers on those
 * hosts (test/faults/worker-fleet.ts) carrying two campaign runs at once — 30,000 recipients over `legacy`
 * and 30,000 over `messages` — so one fault hits both platforms, and each run is checked recipient by
 * recipient against the sandbox's ledger with the fault suite's own verify() and expectHealthy().
 *
 * Knobs (environment): FAULTS_SEED (shared with the fault suite) replays the fault moments and the relay's
 * jitter; SCALE_RECIPIENTS shrinks the campaigns for a quick local look (the suite's figures use 30,000).
 */
import path from "node:path";
import { expect } from "vitest";
import { SANDBOX_API_KEY, SANDBOX_API_SECRET } from "../../src/config/config.ts";
import type { SandboxRequest } from "../../src/sandbox/ledger.ts";
import {
  FaultWorld,
  random,
  randomBetween,
  REPO_ROOT,
  SETTINGS,
  sleep,
  WorkerFleet,
  type RunResult,
  type ScenarioOptions,
  type WorldSettings,
} from "../faults/harness.ts";
import type { WorkerProcess } from "../faults/worker-fleet.ts";
import { WorkerHost } from "./network.ts";

export const SCALE_RESULTS_FILE = path.join(REPO_ROOT, "bench-results", "scale-latest.json");

export interface ScaleSettings extends WorldSettings {
  hosts: number;
  /** One-way delay the relay adds to every chunk. */
  relayDelayMs: { min: number; max: number };
  /** How long a host stays cut off. */
  cutOffMs: number;
}

/**
 * 300 batches of 100 per campaign, 600 in all, alternating, over 4 hosts with one worker process each × 4
 * in flight (16 requests at a time) at 400 ms a request plus the relay's round trips (a dozen per batch:
 * claim, recipients, record, BullMQ): about 40 s of sending on this 2-core machine, long enough for a 20 s
 * cut-off mid-campaign and a rolling restart of four hosts. Scenarios about processes per host (a host loss,
 * the shared rate limit) run 2 per host × 2 in flight. PROVIDER_TIMEOUT_MS 3 s: a claim goes stale after 8 s
 * and a BullMQ lock lapses after 9 s, both well inside the 20 s cut-off.
 */
export const SCALE: ScaleSettings = {
  ...SETTINGS,
  recipients: Number(process.env.SCALE_RECIPIENTS ?? 30_000),
  batchSize: 100,
  latencyMs: 400,
  workers: 4,
  concurrency: 4,
  providerTimeoutMs: 3_000,
  // Each reconcile re-adds a job for every open batch (600 at the start); the BullMQ stalled check brings a
  // cut-off host's jobs back by itself, the reconciler is the backstop.
  reconcileIntervalMs: 10_000,
  campaignDeadlineMs: Number(process.env.SCALE_DEADLINE_MS ?? 240_000),
  // Eight processes loading the worker at once on two busy cores: tens of seconds.
  startTimeoutMs: 120_000,
  hosts: 4,
  relayDelayMs: { min: 10, max: 30 },
  cutOffMs: 20_000,
};

/** The legacy run's numbers start at +65 8100 0000, the messages run's at +65 8200 0000. */
const MESSAGES_NUMBERS_START = 1_000_000;

export class ScaleWorld {
  readonly hosts: WorkerHost[] = [];
  private readonly hostOfSlot = new Map<number, WorkerHost>();
  private nextHostIndex = 1;
  /** Date.now() (the sandbox's clock) when both launches had returned. */
  launchedAt = 0;

  private constructor(
    readonly scenario: string,
    readonly settings: ScaleSettings,
    readonly fleet: WorkerFleet,
    readonly runs: FaultWorld[],
  ) {
    fleet.placement = (slot) => {
      const host = this.hostOfSlot.get(slot);
      if (!host) throw new Error(`worker slot ${slot} has no host`);
      return {
        namePrefix: `${host.name}/`,
        launcher: host.launcher,
        route: async (urls) => ({
          databaseUrl: await host.relayUrl(urls.databaseUrl, 5432),
          redisUrl: await host.relayUrl(urls.redisUrl, 6379),
          sandboxUrl: await host.relayUrl(urls.sandboxUrl, 80),
        }),
        // The sandbox's default credentials are only assumed for a loopback URL; a relay address is not one.
        env: { ENGAGELAB_API_KEY: SANDBOX_API_KEY, ENGAGELAB_API_SECRET: SANDBOX_API_SECRET },
      };
    };
  }

  static async create(scenario: string, overrides: Partial<ScaleSettings> = {}): Promise<ScaleWorld> {
    const settings = { ...SCALE, ...overrides };
    const fleet = await WorkerFleet.create(`scale_${scenario}`, settings, { suite: "scale" });
    const options = { fleet, settings, resultsFile: SCALE_RESULTS_FILE, suite: "scale" };
    const runs = [
      await FaultWorld.create(scenario, "legacy", options),
      await FaultWorld.create(scenario, "messages", { ...options, numbersStart: MESSAGES_NUMBERS_START }),
    ];
    return new ScaleWorld(scenario, settings, fleet, runs);
  }

  async addHost(): Promise<WorkerHost> {
    const host = await WorkerHost.create(this.nextHostIndex++, {
      relay: { delayMs: this.settings.relayDelayMs, random },
    });
    this.hosts.push(host);
    return host;
  }

  /**
   * `settings.hosts` hosts with `settings.workers` processes spread over them, all connected; then both
   * campaigns launched at once. The product's fair share (src/queue/send-queue.ts) alternates their batches,
   * so every host is sending both when a fault hits.
   */
  async start(): Promise<void> {
    for (let i = 0; i < this.settings.hosts; i++) await this.addHost();
    for (let slot = 0; slot < this.settings.workers; slot++)
      this.hostOfSlot.set(slot, this.hosts[slot % this.hosts.length]!);
    const started = performance.now();
    await this.fleet.startWorkers(this.settings.workers);
    this.fleet.note(
      `${this.scenario}: ${this.settings.workers} workers on ${this.hosts.length} hosts up in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    await Promise.all(this.runs.map((run) => run.launch()));
    this.launchedAt = Date.now();
  }

  slotsOn(host: WorkerHost): number[] {
    return [...this.hostOfSlot].filter(([, h]) => h === host).map(([slot]) => slot);
  }

  workersOn(host: WorkerHost): WorkerProcess[] {
    return this.slotsOn(host).flatMap((slot) => this.fleet.workers[slot] ?? []);
  }

  /**
   * Waits (bounded) until `host`'s workers have a request open in the sandbox for each campaign, so the
   * fault hits both platforms' work in flight on that host. Throws when a campaign ended first.
   */
  async waitForHostBusy(host: WorkerHost, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 6_000; i++) {
      await this.fleet.superviseWorkers();
      const names = new Set(this.workersOn(host).map((w) => w.name));
      const busy = this.runs.every((run) =>
        this.fleet.env.sandbox.ledger.openAt(Date.now(), { api: run.provider }).some((r) => names.has(r.via ?? "")),
      );
      if (busy) return;
      if (i % 20 === 0)
        for (const run of this.runs) {
          const status = (await run.inFlight()).campaignStatus;
          if (status !== "running")
            throw new Error(`${run.flavour} campaign is ${status} before ${host.name} was busy`);
        }
      if (Date.now() > deadline) break;
      await sleep(10);
    }
    throw new Error(`${host.name} had no request open for both campaigns within ${timeoutMs} ms`);
  }

  /** Records one fault on both runs, by the sandbox's clock at `atMs`. */
  private async recordFault(description: string, atMs: number, victims: WorkerProcess[]): Promise<void> {
    for (const run of this.runs) await run.recordFault(description, atMs, victims);
  }

  private describe(description: string): void {
    for (const run of this.runs) run.describeFault(description);
  }

  /** Send requests (either campaign) that `workers` got into the sandbox after `sinceMs`. */
  private requestsFrom(workers: WorkerProcess[], sinceMs: number): SandboxRequest[] {
    const names = new Set(workers.map((w) => w.name));
    return this.fleet.env.sandbox.ledger.requestLog().filter((r) => r.receivedAt > sinceMs && names.has(r.via ?? ""));
  }

  /**
   * Cuts `host` off for `settings.cutOffMs` while its workers are mid-request on both campaigns: `stall`
   * (its connections hang, as when packets are dropped) or `reset` (RST on every connection, new ones
   * refused). Its batches' BullMQ locks lapse meanwhile and other hosts take them over; then it comes back
   * and must send again before the campaigns end.
   */
  async cutOff(host: WorkerHost, mode: "stall" | "reset"): Promise<void> {
    await this.waitForHostBusy(host);
    const victims = this.workersOn(host);
    const atMs = Date.now();
    if (mode === "stall") host.relay.stall();
    else await host.relay.reset();
    await this.recordFault(`${host.name} cut off (${mode}) ${this.settings.cutOffMs / 1000} s`, atMs, victims);
    // While it is away, its BullMQ locks lapse and its claims go stale: other hosts must settle every batch
    // it was mid-request on (legacy: re-sent under the same request_id; messages: unknown) before it is back.
    const held = this.runs.flatMap((run) => run.faults.at(-1)!.victimOpenBatches);
    const restoreAt = atMs + this.settings.cutOffMs;
    let stillSending = await this.sendingAmong(held);
    while (stillSending.length > 0 && Date.now() < restoreAt - 100) {
      await sleep(Math.min(250, restoreAt - 100 - Date.now()));
      stillSending = await this.sendingAmong(held);
    }
    const settledAt = Date.now();
    await sleep(Math.max(0, restoreAt - Date.now()));
    await host.relay.restore();
    expect(
      stillSending,
      `batches ${host.name} was mid-request on, still \`sending\` when it came back: no other host took them over`,
    ).toEqual([]);
    this.describe(
      `its ${held.length} in-flight batches settled by other hosts within ${((settledAt - atMs) / 1000).toFixed(1)} s`,
    );
    const restoredAt = Date.now();
    this.fleet.note(`${this.scenario}: ${host.name} restored after ${((restoredAt - atMs) / 1000).toFixed(1)} s`);
    const back = await this.waitForRequestsFrom(victims, restoredAt);
    this.describe(`${host.name} sending again +${((back - restoredAt) / 1000).toFixed(1)} s after restore`);
    expect(
      victims.filter((w) => !w.alive).map((w) => w.name),
      `workers of ${host.name} that died while it was cut off`,
    ).toEqual([]);
  }

  /** Those of `batchIds` still `sending` in PostgreSQL. */
  private async sendingAmong(batchIds: readonly string[]): Promise<string[]> {
    const { rows } = await this.fleet.env.db.pool.query<{ id: string }>(
      `SELECT id FROM batches WHERE id = ANY($1::uuid[]) AND state = 'sending'`,
      [batchIds],
    );
    return rows.map((r) => r.id);
  }

  /** When `workers` next got a request into the sandbox after `sinceMs` (bounded; fails if the campaigns end first). */
  private async waitForRequestsFrom(workers: WorkerProcess[], sinceMs: number, timeoutMs = 30_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 3_000; i++) {
      await this.fleet.superviseWorkers();
      const first = this.requestsFrom(workers, sinceMs)[0];
      if (first) return first.receivedAt;
      if (i % 10 !== 0) {
        await sleep(20);
        continue;
      }
      const statuses = await Promise.all(this.runs.map(async (run) => (await run.inFlight()).campaignStatus));
      if (statuses.every((s) => s !== "running"))
        throw new Error(
          `the campaigns ended (${statuses.join(", ")}) before ${workers.map((w) => w.name).join(", ")} sent again`,
        );
      if (Date.now() > deadline) break;
      await sleep(20);
    }
    throw new Error(`${workers.map((w) => w.name).join(", ")} sent nothing within ${timeoutMs} ms of coming back`);
  }

  /**
   * A host loss: every process in `host`'s namespace killed at once (SIGKILL to each pid `ip netns pids`
   * lists), mid-request on both campaigns; the host is removed and a replacement host with as many
   * workers joins.
   */
  async loseHost(host: WorkerHost): Promise<WorkerHost> {
    await this.waitForHostBusy(host);
    const victims = this.workersOn(host);
    const pids = host.pids();
    expect(pids, `${host.name}'s processes include its workers`).toEqual(
      expect.arrayContaining(victims.map((w) => w.pid)),
    );
    for (const w of victims) w.expectedExit = true;
    for (const pid of pids) process.kill(pid, "SIGKILL");
    // Same thread as the sandbox: no request can be answered between the signals and this timestamp.
    const atMs = Date.now();
    await Promise.all(victims.map((w) => w.exited));
    await this.recordFault(`${host.name} lost (kill -9 of its ${pids.length} processes)`, atMs, victims);
    await host.remove();
    this.hosts.splice(this.hosts.indexOf(host), 1);
    const replacement = await this.addHost();
    const slots = this.slotsOn(host);
    for (const slot of slots) this.hostOfSlot.set(slot, replacement);
    for (const slot of slots) await this.fleet.startWorker(slot);
    await this.fleet.waitForWorkersConnected(this.settings.workers);
    const back = await this.waitForRequestsFrom(this.workersOn(replacement), atMs);
    this.describe(`${replacement.name} joined, sending +${((back - atMs) / 1000).toFixed(1)} s after the loss`);
    return replacement;
  }

  /**
   * A rolling restart as an orchestrator does it: host by host, SIGTERM to each worker while it is
   * mid-request, wait for a clean exit (within the grace period, exit code 0), start its replacement on the
   * same host, and wait until the whole fleet is connected before the next host.
   */
  async rollingRestart(): Promise<void> {
    for (const host of [...this.hosts]) {
      await this.waitForHostBusy(host);
      const stopping = this.workersOn(host);
      const atMs = Date.now();
      const stops = stopping.map((w) => w.stop("SIGTERM", this.settings.providerTimeoutMs + 10_000));
      await this.recordFault(`SIGTERM ${host.name}`, atMs, []);
      const exits = await Promise.all(stops);
      expect(
        exits.map((e) => ({ code: e.code, forced: e.forced })),
        `${host.name}'s workers after SIGTERM`,
      ).toEqual(exits.map(() => ({ code: 0, forced: false })));
      for (const slot of this.slotsOn(host)) await this.fleet.startWorker(slot);
      await this.fleet.waitForWorkersConnected(this.settings.workers);
    }
    this.describe(`${this.hosts.length} hosts restarted one by one`);
  }

  /** Both campaigns to a final status, verified against the ledger and checked like the fault suite's runs. */
  async finish(options: ScenarioOptions = {}): Promise<RunResult[]> {
    const reports = await Promise.all(this.runs.map((run) => run.waitForFinal()));
    const results: RunResult[] = [];
    for (const [i, run] of this.runs.entries()) results.push(await run.verify(reports[i]!));
    for (const [i, run] of this.runs.entries()) run.expectHealthy(results[i]!, options);
    return results;
  }

  /** Sandbox request arrival times (both APIs) from `sinceMs` on, for the rate check. */
  requestTimes(sinceMs: number): number[] {
    return this.fleet.env.sandbox.ledger
      .requestLog()
      .map((r) => r.receivedAt)
      .filter((t) => t >= sinceMs)
      .sort((a, b) => a - b);
  }

  describeFault(description: string): void {
    this.describe(description);
  }

  async dispose(): Promise<void> {
    await this.fleet.dispose(async () => {
      for (const host of this.hosts.splice(0)) await host.remove();
    });
  }
}

/**
 * This process's event-loop lag, sampled every 100 ms. The sandbox and every relay run on this loop, so it is
 * the clock the rate check reads: while it lags (the launches have just parsed, copied and read back 60,000
 * rows) arrivals are forwarded and stamped late and in bunches that no worker sent.
 */
export class LoopLagMonitor {
  private readonly samples: Array<{ at: number; lagMs: number }> = [];
  private readonly timer: NodeJS.Timeout;
  private last = performance.now();

  constructor(private readonly intervalMs = 100) {
    this.timer = setInterval(() => {
      const now = performance.now();
      this.samples.push({ at: Date.now(), lagMs: now - this.last - intervalMs });
      this.last = now;
    }, intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The largest lag after `fromMs`, and when it ended. */
  worstSince(fromMs: number): { lagMs: number; at: number } {
    let worst = { lagMs: 0, at: fromMs };
    for (const sample of this.samples) if (sample.at >= fromMs && sample.lagMs > worst.lagMs) worst = sample;
    return { lagMs: Math.round(worst.lagMs), at: worst.at };
  }

  /**
   * The first moment at or after `fromMs` by which the loop has kept time within `lagMs` for `forMs`: the
   * END of the first calm stretch, not its start. What a lag held back (relay chunks, requests the sandbox
   * had not read) is released when it ends and stamped together; measured from the lag's end, that
   * backlog made one second look 1.6× the limit (CI, 2026-12-02) although the gate had spaced the sends.
   */
  calmSince(fromMs: number, lagMs = 25, forMs = 1_000): number | undefined {
    const needed = Math.ceil(forMs / this.intervalMs);
    let run = 0;
    for (const sample of this.samples) {
      if (sample.at < fromMs) continue;
      run = sample.lagMs < lagMs ? run + 1 : 0;
      if (run >= needed) return sample.at;
    }
    return undefined;
  }
}

/** A moment early in the campaign, drawn from the seeded PRNG. */
export const earlyMomentMs = (): number => randomBetween(2_000, 5_000);

/**
 * The sandbox's measured request rate against SEND_RATE_LIMIT: the mean from the first request to the
 * last (so at least `minSeconds` of sending), and the busiest window of one second, sliding over every
 * arrival.
 */
export function measureRate(times: readonly number[]): {
  seconds: number;
  mean: number;
  busiestSecond: number;
  /** Arrivals in each whole second from the first one, for the log. */
  perSecond: number[];
} {
  const perSecond: number[] = [];
  for (const t of times) {
    const second = Math.floor((t - times[0]!) / 1000);
    while (perSecond.length <= second) perSecond.push(0);
    perSecond[second]! += 1;
  }
  if (times.length < 2) return { seconds: 0, mean: 0, busiestSecond: times.length, perSecond };
  const seconds = (times.at(-1)! - times[0]!) / 1000;
  let busiest = 0;
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    while (times[end]! - times[start]! >= 1_000) start++;
    busiest = Math.max(busiest, end - start + 1);
  }
  return { seconds, mean: (times.length - 1) / seconds, busiestSecond: busiest, perSecond };
}
