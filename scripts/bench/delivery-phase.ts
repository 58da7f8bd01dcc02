// The benchmark's delivery phase (issue 15): every recipient of the end-to-end campaign gets a `delivered`
// report, POSTed to a real `smsblast serve` process as signed callbacks of 100 rows, applied by a real
// `smsblast delivery-worker` process. Measured: callback latency (p50/p99) and rate, and reports applied per
// second until the last recipient is `delivered`. `npm run bench:delivery` runs this phase alone.
import { createHmac, randomBytes } from "node:crypto";
import type pg from "pg";
import { Agent, request } from "undici";
import type { ChildHandle } from "./processes.ts";

export interface DeliveryPhaseResult {
  reports: number;
  callbacks: number;
  rowsPerCallback: number;
  concurrency: number;
  /** Callbacks per second asked for (open loop); undefined: as fast as `concurrency` posters go. */
  targetCallbacksPerSecond?: number;
  /** Callbacks per second while posting. */
  callbacksPerSecond: number;
  callbackP50Ms: number;
  callbackP99Ms: number;
  callbackMaxMs: number;
  /** First callback sent → last recipient `delivered`. */
  applySeconds: number;
  /** reports / applySeconds. */
  reportsPerSecond: number;
  /** Last callback answered → last recipient `delivered`: how far the applier trails the receiver. */
  drainAfterLastCallbackSeconds: number;
  serverPeakRssMb?: number;
}

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

/** POSTs a `delivered` report for every recipient of the campaign; returns when the last one is answered. */
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
            message_status: "delivered",
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
  for await (const body of bodies()) built.push(body);
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
 * Polls until no stored event is pending, then checks that every recipient is `delivered`; returns
 * performance.now() then. The poll is an EXISTS on the applier's partial work-list index, so it costs the
 * database nothing beside the applier (a count over a million recipients every 100 ms would).
 */
export async function waitForAllDelivered(deps: DeliveryPhaseDeps, total: number, pollMs = 50): Promise<number> {
  const deadline = Date.now() + (deps.timeoutMs ?? 10 * 60_000);
  for (;;) {
    deps.alive();
    const { rows } = await deps.pool.query<{ pending: boolean }>(
      // 'received' (a whole callback) and 'pending' (a single event of an older receiver) are both still to apply.
      `SELECT EXISTS (SELECT 1 FROM delivery_events WHERE outcome IN ('received', 'pending')) AS pending`,
    );
    if (!rows[0]!.pending) {
      const doneAt = performance.now();
      const n = await countRecipients(deps.pool, deps.campaignId, "delivered");
      if (n >= total) return doneAt;
    }
    if (Date.now() > deadline) {
      const n = await countRecipients(deps.pool, deps.campaignId, "delivered");
      throw new Error(`delivery phase: ${n} of ${total} delivered at the deadline`);
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

export async function runDeliveryPhase(deps: DeliveryPhaseDeps): Promise<DeliveryPhaseResult> {
  const total = await countRecipients(deps.pool, deps.campaignId);
  const posted = await postDeliveryCallbacks(deps);
  deps.log(`delivery: waiting for the applier`);
  const doneAt = await waitForAllDelivered(deps, total);
  const latencies = posted.latencies.sort((a, b) => a - b);
  const applySeconds = (doneAt - posted.startedAt) / 1000;
  return {
    reports: total,
    callbacks: posted.callbacks,
    rowsPerCallback: deps.rowsPerCallback ?? 100,
    concurrency: deps.concurrency ?? (deps.callbacksPerSecond === undefined ? 16 : 256),
    targetCallbacksPerSecond: deps.callbacksPerSecond,
    callbacksPerSecond: posted.callbacks / ((posted.postedAt - posted.startedAt) / 1000),
    callbackP50Ms: percentile(latencies, 0.5),
    callbackP99Ms: percentile(latencies, 0.99),
    callbackMaxMs: latencies[latencies.length - 1] ?? 0,
    applySeconds,
    reportsPerSecond: total / applySeconds,
    drainAfterLastCallbackSeconds: (doneAt - posted.postedAt) / 1000,
  };
}

export type { ChildHandle };
