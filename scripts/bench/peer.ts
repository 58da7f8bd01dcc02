// The peer design of the benchmark (issue 18), the part shared by scripts/bench.ts and peer-child.ts: its
// queue, its table (one row per recipient, as such systems keep), and the bench's reads of it.
import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";

export const PEER_QUEUE_NAME = "peer-send";
export const PEER_TABLE = "bench_peer_recipients";
export const PEER_ATTEMPTS = 3;

export interface PeerJob {
  recipientId: string;
  to: string;
}

/** The peer's own queue prefix beside ours: `{smsblast-bench}` → `{smsblast-bench-peer}`. */
export function peerQueuePrefix(prefix: string): string {
  return prefix.endsWith("}") ? `${prefix.slice(0, -1)}-peer}` : `${prefix}-peer`;
}

/** (Re-)creates the peer's table with `n` distinct pending recipients (the numbers of generate-csv.ts). */
export async function createPeerRecipients(pool: pg.Pool, n: number): Promise<void> {
  await pool.query(`DROP TABLE IF EXISTS ${PEER_TABLE}`);
  await pool.query(
    `CREATE TABLE ${PEER_TABLE} (id bigserial PRIMARY KEY, phone text NOT NULL, status text NOT NULL DEFAULT 'pending',
       message_id text, send_channel text, attempts int NOT NULL DEFAULT 0, error text, sent_at timestamptz)`,
  );
  await pool.query(
    `INSERT INTO ${PEER_TABLE} (phone) SELECT '+65' || (81000000 + (i * 7919) % 17000000) FROM generate_series(0, $1 - 1) i`,
    [n],
  );
  await pool.query(`ANALYZE ${PEER_TABLE}`);
}

export async function dropPeerRecipients(pool: pg.Pool): Promise<void> {
  await pool.query(`DROP TABLE IF EXISTS ${PEER_TABLE}`);
}

export interface PeerCounts {
  sent: number;
  failed: number;
  pending: number;
  /** max(sent_at), epoch ms (Postgres clock: the same host's). */
  lastSentAtMs: number | undefined;
}

export async function peerCounts(pool: pg.Pool): Promise<PeerCounts> {
  const { rows } = await pool.query<{ sent: number; failed: number; pending: number; last: Date | null }>(
    `SELECT count(*) FILTER (WHERE status = 'sent')::int AS sent, count(*) FILTER (WHERE status = 'failed')::int AS failed,
            count(*) FILTER (WHERE status = 'pending')::int AS pending, max(sent_at) AS last
     FROM ${PEER_TABLE}`,
  );
  const r = rows[0]!;
  return { sent: r.sent, failed: r.failed, pending: r.pending, lastSentAtMs: r.last?.getTime() };
}

/** Polls (every 100 ms) until no row is pending. */
export async function waitForPeerDone(pool: pg.Pool, timeoutMs: number, checkAlive: () => void): Promise<PeerCounts> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const counts = await peerCounts(pool);
    if (counts.pending === 0) return counts;
    checkAlive();
    if (performance.now() > deadline)
      throw new Error(`peer: ${counts.pending} recipients still pending after ${Math.round(timeoutMs / 1000)} s`);
    await sleep(100);
  }
}
