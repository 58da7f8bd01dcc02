// The benchmark's delivery phase (issue 15): every recipient of the end-to-end campaign gets a `delivered`
// report, POSTed to a real `smsblast serve` process as signed callbacks of 100 rows, applied by a real
// `smsblast delivery-worker` process. Measured: callback latency (p50/p99) and rate, and reports applied per
// second until the last recipient is `delivered`.
import { createHmac, randomBytes } from "node:crypto";
import type pg from "pg";
import { Agent, request } from "undici";
import type { ChildHandle } from "./processes.ts";

export interface DeliveryPhaseResult {
  reports: number;
  callbacks: number;
  rowsPerCallback: number;
  concurrency: number;
  /** Callbacks per second while posting. */
  callbacksPerSecond: number;
  callbackP50Ms: number;
  callbackP99Ms: number;
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
  concurrency?: number;
  timeoutMs?: number;
}

function signature(username: string, secret: string): Record<string, string> {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = randomBytes(8).toString("hex");
  const sig = createHmac("sha256", secret)
    .update(timestamp + nonce + username)
    .digest("hex");
  return { "x-callback-id": `timestamp=${timestamp};nonce=${nonce};username=${username};signature=${sig}` };
}

export async function runDeliveryPhase(deps: DeliveryPhaseDeps): Promise<DeliveryPhaseResult> {
  const rowsPerCallback = deps.rowsPerCallback ?? 100;
  const concurrency = deps.concurrency ?? 16;
  const { rows: batches } = await deps.pool.query<{ id: string; sequence: number }>(
    `SELECT id, sequence FROM batches WHERE campaign_id = $1 ORDER BY sequence`,
    [deps.campaignId],
  );
  const total = Number(
    (
      await deps.pool.query<{ n: string }>(`SELECT count(*) AS n FROM recipients WHERE campaign_id = $1`, [
        deps.campaignId,
      ])
    ).rows[0]!.n,
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

  const started = performance.now();
  let callbacks = 0;
  const source = bodies();
  const post = async (): Promise<void> => {
    for (;;) {
      const next = await source.next();
      if (next.done) return;
      const t0 = performance.now();
      const response = await request(`${deps.apiUrl}/callbacks/engagelab`, {
        method: "POST",
        dispatcher: agent,
        headers: { "content-type": "application/json", ...signature(deps.username, deps.secret) },
        body: next.value,
      });
      await response.body.dump();
      latencies.push(performance.now() - t0);
      if (response.statusCode !== 200) throw new Error(`callback answered ${response.statusCode}`);
      callbacks++;
    }
  };
  // An async generator serialises next(): the posters share it safely.
  await Promise.all(Array.from({ length: concurrency }, post));
  const postedAt = performance.now();
  const postSeconds = (postedAt - started) / 1000;
  deps.log(
    `delivery: ${callbacks} callbacks of ${rowsPerCallback} rows posted in ${postSeconds.toFixed(1)} s; waiting for the applier`,
  );

  const deadline = Date.now() + (deps.timeoutMs ?? 10 * 60_000);
  for (;;) {
    deps.alive();
    const { rows } = await deps.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM recipients WHERE campaign_id = $1 AND state = 'delivered'`,
      [deps.campaignId],
    );
    if (Number(rows[0]!.n) >= total) break;
    if (Date.now() > deadline) throw new Error(`delivery phase: ${rows[0]!.n} of ${total} delivered at the deadline`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const doneAt = performance.now();
  await agent.close();
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  const applySeconds = (doneAt - started) / 1000;
  return {
    reports: total,
    callbacks,
    rowsPerCallback,
    concurrency,
    callbacksPerSecond: callbacks / postSeconds,
    callbackP50Ms: pct(0.5),
    callbackP99Ms: pct(0.99),
    applySeconds,
    reportsPerSecond: total / applySeconds,
    drainAfterLastCallbackSeconds: (doneAt - postedAt) / 1000,
  };
}

export type { ChildHandle };
