// The benchmark's delivery phase (issue 15), against a real `smsblast serve` process (signed callbacks of
// 100 rows) and a real `smsblast delivery-worker` process, in the two parts the targets name:
//   live:    `sent` reports at 200 callbacks/s, open loop like a provider, with the applier running as
//            deployed: callback p50/p99 and the time from callback to recipient state;
//   backlog: a `delivered` report for every recipient, stored with the applier stopped, then the applier
//            started alone on them: reports applied per second, i.e. its capacity.
// (Posting as fast as possible with the applier running measured neither: the receiver was then past its
// 200/s and the applier only kept pace with what came in.) `npm run bench:delivery` runs one part alone.
import { createHmac, randomBytes } from "node:crypto";
import type pg from "pg";
import { Agent, request } from "undici";
import type { ChildHandle } from "./processes.ts";
import type { Bottleneck } from "./report.ts";

export interface DeliveryPhaseResult {
  /** The live part: `sent` reports at `targetCallbacksPerSecond` with the applier running. */
  live: LivePartResult;
  /** The backlog part: a `delivered` report per recipient, applied by the applier alone. */
  backlog: BacklogPartResult;
  serverPeakRssMb?: number;
  /** CPU while the applier drained the backlog alone (set by the caller, which owns the sampler). */
  drainCpu?: Bottleneck;
}

export interface LivePartResult {
  reports: number;
  callbacks: number;
  rowsPerCallback: number;
  targetCallbacksPerSecond: number;
  callbacksPerSecond: number;
  callbackP50Ms: number;
  callbackP99Ms: number;
  callbackMaxMs: number;
  /** Receipt of a callback → its events applied (the statement's start), over every event: p50 / p99. */
  reportDelayP50Ms: number;
  reportDelayP99Ms: number;
  /** Last callback answered → its reports applied: whether the applier keeps up. */
  drainAfterLastCallbackSeconds: number;
}

export interface BacklogPartResult {
  reports: number;
  callbacks: number;
  /** Callbacks per second while storing the backlog (closed loop, 16 in flight; not a target). */
  callbacksPerSecond: number;
  /** First statement's start → all applied, from the database's clock: the applier's own time. */
  applierSeconds: number;
  /** reports / applierSeconds. */
  reportsPerSecond: number;
  /** Applier process spawned → all applied (adds the process start, ~1 s). */
  spawnToDoneSeconds: number;
}

/** The provider statuses the phase reports: `sent` in the live part, `delivered` in the backlog. */
export type ReportStatus = "sent" | "delivered";

export interface DeliveryPhaseDeps {
  pool: pg.Pool;
  campaignId: string;
  apiUrl: string;
  username: string;
  secret: string;
  /** The children, so a dead one fails the phase instead of hanging it. */
  alive: () => void;
  log: (message: string) => void;
  rowsPerCallback?: number;
  /** Closed loop: this many posters, each waiting for its answer. With `callbacksPerSecond`: the cap in flight. */
  concurrency?: number;
  /** Open loop: a callback every 1/rate s whatever the answers, like a provider pushing reports. */
  callbacksPerSecond?: number;
  timeoutMs?: number;
  /** Callbacks re-sent before the measured ones to warm the server up (default none). */
  warmupCallbacks?: number;
  /** The provider status every report carries (default `delivered`). */
  status?: ReportStatus;
  /** At most this many callbacks (default: every recipient's report). */
  maxCallbacks?: number;
}

export interface PostFigures {
  callbacks: number;
  reports: number;
  startedAt: number;
  postedAt: number;
  latencies: number[];
  /** Posted before the clock started (not in the latencies): duplicates of the first callbacks. */
  warmupCallbacks: number;
}

function signature(username: string, secret: string): Record<string, string> {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = randomBytes(8).toString("hex");
  const sig = createHmac("sha256", secret)
    .update(timestamp + nonce + username)
    .digest("hex");
  return { "x-callback-id": `timestamp=${timestamp};nonce=${nonce};username=${username};signature=${sig}` };
}

export async function countRecipients(pool: pg.Pool, campaignId: string, state?: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM recipient_outcomes WHERE campaign_id = $1 AND ($2::text IS NULL OR state::text = $2)`,
    [campaignId, state ?? null],
  );
  return Number(rows[0]!.n);
}

/**
 * POSTs a report (`deps.status`, default `delivered`) for every recipient of the campaign, or for the first
 * `maxCallbacks` callbacks' worth; returns when the last one is answered.
 */
export async function postDeliveryCallbacks(deps: DeliveryPhaseDeps): Promise<PostFigures> {
  const rowsPerCallback = deps.rowsPerCallback ?? 100;
  const concurrency = deps.concurrency ?? (deps.callbacksPerSecond === undefined ? 16 : 256);
  const { rows: batches } = await deps.pool.query<{ id: string; sequence: number }>(
    `SELECT id, sequence FROM batches WHERE campaign_id = $1 ORDER BY sequence`,
    [deps.campaignId],
  );
  const agent = new Agent({ connections: concurrency, keepAliveTimeout: 30_000 });
  const latencies: number[] = [];
  const itime = Math.floor(Date.now() / 1000);

  // One batch's numbers at a time, cut into callbacks: the phone list of a million is never held at once.
  async function* bodies(): AsyncGenerator<string> {
    for (const batch of batches) {
      const { rows } = await deps.pool.query<{ phone: string }>(
        `SELECT phone FROM recipients WHERE campaign_id = $1 AND batch_sequence = $2`,
        [deps.campaignId, batch.sequence],
      );
      for (let i = 0; i < rows.length; i += rowsPerCallback) {
        const slice = rows.slice(i, i + rowsPerCallback).map((r) => ({
          message_id: `bench-${batch.sequence}`,
          to: r.phone.slice(1),
          server: "sms",
          channel: "sms",
          itime,
          custom_args: { campaign_id: deps.campaignId, batch_id: batch.id },
          status: {
            message_status: deps.status ?? "delivered",
            status_data: { msg_time: itime, message_id: `bench-${batch.sequence}` },
            billing: { cost: 0.01, currency: "USD" },
            error_code: 0,
          },
        }));
        yield JSON.stringify({ total: slice.length, rows: slice });
      }
    }
  }

  let callbacks = 0;
  let measuring = false;
  const send = async (body: string): Promise<void> => {
    const t0 = performance.now();
    const response = await request(`${deps.apiUrl}/callbacks/engagelab`, {
      method: "POST",
      dispatcher: agent,
      headers: { "content-type": "application/json", ...signature(deps.username, deps.secret) },
      body,
    });
    await response.body.dump();
    if (response.statusCode !== 200) throw new Error(`callback answered ${response.statusCode}`);
    if (!measuring) return;
    latencies.push(performance.now() - t0);
    callbacks++;
  };
  // Every body is built before the clock starts (about 30 KB per callback of 100 rows, so 300 MB for a
  // million reports): on a busy machine, building them while posting delayed the answers' reading and the
  // client-side latency then measured the poster more than the server.
  const built: string[] = [];
  for await (const body of bodies()) {
    built.push(body);
    if (built.length === deps.maxCallbacks) break;
  }
  const reports = built.reduce((n, body) => n + (body.match(/"to":/g) ?? []).length, 0);

  const postAll = async (list: string[]): Promise<void> => {
    const source = list.values();
    const startedAt = performance.now();
    if (deps.callbacksPerSecond === undefined) {
      const post = async (): Promise<void> => {
        for (;;) {
          const next = source.next();
          if (next.done) return;
          await send(next.value);
        }
      };
      await Promise.all(Array.from({ length: concurrency }, post));
      return;
    }
    // Open loop: the i-th callback leaves at start + i/rate; a slow answer does not delay the next one.
    const interval = 1000 / deps.callbacksPerSecond;
    const inFlight = new Set<Promise<void>>();
    let failure: Error | undefined;
    for (let i = 0; ; i++) {
      const next = source.next();
      if (next.done) break;
      const wait = startedAt + i * interval - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      while (inFlight.size >= concurrency) await Promise.race(inFlight);
      if (failure !== undefined) throw failure;
      const p: Promise<void> = send(next.value)
        .catch((error: unknown) => {
          failure = error instanceof Error ? error : new Error(String(error));
        })
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.all(inFlight);
    if (failure !== undefined) throw failure;
  };

  // Warm-up, not measured: a freshly started server answers its first second or two of callbacks slowly
  // (modules loaded on first use, code not yet optimised, pool connections opened one by one: p99 over
  // 1 s in the first 100 callbacks), which says nothing about a receiver that runs for days. The warm-up
  // re-sends the first callbacks with fresh nonces, as a provider retrying them would: their reports are
  // duplicates, which the applier must handle anyway and which only add to its work.
  const warmup = built.slice(0, Math.min(built.length, deps.warmupCallbacks ?? 0));
  if (warmup.length > 0) {
    await postAll(warmup);
    deps.log(`delivery: ${warmup.length} warm-up callbacks posted (not measured)`);
  }
  measuring = true;
  const startedAt = performance.now();
  await postAll(built);
  const postedAt = performance.now();
  await agent.close();
  deps.log(
    `delivery: ${callbacks} callbacks of ${rowsPerCallback} rows posted in ${((postedAt - startedAt) / 1000).toFixed(1)} s`,
  );
  return { callbacks, reports, warmupCallbacks: warmup.length, startedAt, postedAt, latencies };
}

/**
 * Polls until no stored event is pending, then checks that `expected` recipients are in `state`; returns
 * performance.now() then and the database's clock (epoch ms) at that poll. The poll is an EXISTS on the
 * applier's partial work-list index, so it costs the database nothing beside the applier (a count over a
 * million recipients every 100 ms would).
 */
export async function waitForApplied(
  deps: DeliveryPhaseDeps,
  state: ReportStatus,
  expected: number,
  pollMs = 50,
): Promise<{ doneAt: number; dbEpochMs: number }> {
  const deadline = Date.now() + (deps.timeoutMs ?? 10 * 60_000);
  for (;;) {
    deps.alive();
    const { rows } = await deps.pool.query<{ pending: boolean; at: number }>(
      // 'received' (a whole callback) and 'pending' (a single event of an older receiver) are both still to apply.
      `SELECT EXISTS (SELECT 1 FROM delivery_events WHERE outcome IN ('received', 'pending')) AS pending,
              (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS at`,
    );
    if (!rows[0]!.pending) {
      const doneAt = performance.now();
      const n = await countRecipients(deps.pool, deps.campaignId, state);
      if (n >= expected) return { doneAt, dbEpochMs: rows[0]!.at };
    }
    if (Date.now() > deadline) {
      const n = await countRecipients(deps.pool, deps.campaignId, state);
      throw new Error(`delivery phase: ${n} of ${expected} ${state} at the deadline`);
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** waitForApplied for `delivered`: performance.now() when every recipient is delivered. */
export async function waitForAllDelivered(deps: DeliveryPhaseDeps, total: number, pollMs = 50): Promise<number> {
  return (await waitForApplied(deps, "delivered", total, pollMs)).doneAt;
}

async function databaseNow(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ at: string }>(`SELECT clock_timestamp()::text AS at`);
  return rows[0]!.at;
}

/**
 * Receipt → applied of the events stored since `since`, weighted by events per row: p50 and p99 in ms.
 * applied_at is the applying statement's now(), its start; its commit follows within its own duration.
 */
async function reportDelays(pool: pg.Pool, campaignId: string, since: string): Promise<{ p50: number; p99: number }> {
  const { rows } = await pool.query<{ p50: number | null; p99: number | null }>(
    `WITH d AS (
       SELECT (extract(epoch FROM applied_at - received_at) * 1000)::float8 AS ms, row_count FROM delivery_events
       WHERE campaign_id = $1 AND received_at >= $2::timestamptz AND outcome = 'applied'
     ), c AS (SELECT ms, sum(row_count) OVER (ORDER BY ms) AS upto, sum(row_count) OVER () AS total FROM d)
     SELECT min(ms) FILTER (WHERE upto >= total * 0.5) AS p50, min(ms) FILTER (WHERE upto >= total * 0.99) AS p99 FROM c`,
    [campaignId, since],
  );
  return { p50: rows[0]?.p50 ?? 0, p99: rows[0]?.p99 ?? 0 };
}

export interface DeliveryPhaseControl {
  /** Spawns a delivery-worker process. */
  startApplier: () => void;
  /** Stops the running delivery-worker process. */
  stopApplier: () => Promise<void>;
  /** The live part's rate (default 200 callbacks/s, the receiver's target) and length cap (default 30 s). */
  liveCallbacksPerSecond?: number;
  liveSeconds?: number;
  /** Around the backlog drain, e.g. a CPU window of the applier alone. */
  onDrainStart?: () => void;
  onDrainEnd?: () => void;
}

/** DeliveryPhaseDeps.alive for these children (read at each call: the applier is replaced between parts). */
export function failIfExited(children: () => Array<ChildHandle | undefined>, during: string): () => void {
  return () => {
    for (const c of children())
      if (c && !c.isRunning()) throw new Error(`${c.name} exited ${during}:\n${c.stderr().slice(-3000)}`);
  };
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

/** The two parts (see the top of this file); the applier is running when this is called, and when it returns. */
export async function runDeliveryPhase(
  deps: DeliveryPhaseDeps,
  control: DeliveryPhaseControl,
): Promise<DeliveryPhaseResult> {
  const total = await countRecipients(deps.pool, deps.campaignId);
  const rowsPerCallback = deps.rowsPerCallback ?? 100;
  const rate = control.liveCallbacksPerSecond ?? 200;
  const maxLive = Math.max(1, Math.round(rate * (control.liveSeconds ?? 30)));

  // The send's dirty pages written out first (as bench:delivery does after seeding), so the checkpoint
  // the send's WAL would start does not land in the live part's 30 s and measure the send instead.
  await deps.pool.query(`CHECKPOINT`).catch(() => {});
  const liveSince = await databaseNow(deps.pool);
  const live = await postDeliveryCallbacks({
    ...deps,
    status: "sent",
    callbacksPerSecond: rate,
    maxCallbacks: maxLive,
    warmupCallbacks: deps.warmupCallbacks ?? 2 * rate,
  });
  deps.log(`delivery: live part posted; waiting for the applier`);
  const liveDone = await waitForApplied(deps, "sent", live.reports);
  const delays = await reportDelays(deps.pool, deps.campaignId, liveSince);
  const liveLatencies = live.latencies.sort((a, b) => a - b);

  await control.stopApplier();
  const backlogSince = await databaseNow(deps.pool);
  const backlog = await postDeliveryCallbacks({ ...deps, status: "delivered", concurrency: 16, warmupCallbacks: 0 });
  deps.log(`delivery: backlog of ${backlog.reports} reports stored; starting the applier alone on it`);
  control.onDrainStart?.();
  const spawnedAt = performance.now();
  control.startApplier();
  const drained = await waitForApplied(deps, "delivered", total);
  control.onDrainEnd?.();
  const { rows } = await deps.pool.query<{ first: number | null }>(
    `SELECT (extract(epoch FROM min(applied_at)) * 1000)::float8 AS first FROM delivery_events
     WHERE campaign_id = $1 AND received_at >= $2::timestamptz`,
    [deps.campaignId, backlogSince],
  );
  const applierSeconds = Math.max(0.001, (drained.dbEpochMs - (rows[0]?.first ?? drained.dbEpochMs)) / 1000);
  return {
    live: {
      reports: live.reports,
      callbacks: live.callbacks,
      rowsPerCallback,
      targetCallbacksPerSecond: rate,
      callbacksPerSecond: live.callbacks / ((live.postedAt - live.startedAt) / 1000),
      callbackP50Ms: percentile(liveLatencies, 0.5),
      callbackP99Ms: percentile(liveLatencies, 0.99),
      callbackMaxMs: liveLatencies[liveLatencies.length - 1] ?? 0,
      reportDelayP50Ms: delays.p50,
      reportDelayP99Ms: delays.p99,
      drainAfterLastCallbackSeconds: (liveDone.doneAt - live.postedAt) / 1000,
    },
    backlog: {
      reports: backlog.reports,
      callbacks: backlog.callbacks,
      callbacksPerSecond: backlog.callbacks / ((backlog.postedAt - backlog.startedAt) / 1000),
      applierSeconds,
      reportsPerSecond: backlog.reports / applierSeconds,
      spawnToDoneSeconds: (drained.doneAt - spawnedAt) / 1000,
    },
  };
}

export type { ChildHandle };
