// The full send cycle of each batch: from its claim in Postgres (batches.claimed_at) to BullMQ's
// `completed` event in Redis (the stream entry id carries the Redis server's time in ms). Unlike
// batches.sent_at, which Postgres stamps at the START of the recording transaction, this includes
// recording the outcome (recipients, campaign counters) and handing the job back to BullMQ.
import type { RedisConnection } from "../../src/queue/redis.ts";
import type pg from "pg";

export interface CycleFigures {
  /** Batches whose `completed` event was still in the (length-capped) events stream. */
  matched: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Mean batches in flight, from Little's law: Σ cycle time / send duration. */
  meanInFlight: number;
}

export async function cycleFigures(
  redis: RedisConnection,
  pool: pg.Pool,
  prefix: string,
  queueName: string,
  campaignId: string,
  sendSeconds: number,
): Promise<CycleFigures | undefined> {
  const { rows } = await pool.query<{ id: string; claimed_ms: string }>(
    `SELECT id, (extract(epoch FROM claimed_at) * 1000)::float8 AS claimed_ms FROM batches WHERE campaign_id = $1 AND claimed_at IS NOT NULL`,
    [campaignId],
  );
  const claimed = new Map(rows.map((r) => [r.id, Number(r.claimed_ms)]));
  const key = `${prefix}:${queueName}:events`;
  const cycles: number[] = [];
  let start = "-";
  for (let page = 0; page < 200; page++) {
    const entries = (await redis.xrange(key, start, "+", "COUNT", 1000)) as Array<[string, string[]]>;
    if (entries.length === 0) break;
    for (const [id, fields] of entries) {
      const event = fieldOf(fields, "event");
      if (event !== "completed") continue;
      const jobId = fieldOf(fields, "jobId");
      const claimedMs = jobId ? claimed.get(jobId) : undefined;
      if (claimedMs === undefined) continue;
      cycles.push(Number(id.split("-")[0]) - claimedMs);
    }
    start = `(${entries[entries.length - 1]![0]}`;
    if (entries.length < 1000) break;
  }
  if (cycles.length === 0) return undefined;
  cycles.sort((a, b) => a - b);
  const pct = (p: number) => Math.round(cycles[Math.min(cycles.length - 1, Math.floor(p * cycles.length))]!);
  const total = cycles.reduce((a, b) => a + b, 0);
  return {
    matched: cycles.length,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    maxMs: Math.round(cycles[cycles.length - 1]!),
    meanInFlight: Math.round((total / 1000 / sendSeconds) * (claimed.size / cycles.length) * 10) / 10,
  };
}

function fieldOf(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}
