// Postgres side of the benchmark: its own database, the COPY ceiling, and the send figures read back from
// the batches table.
import { createReadStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { migrateDatabase } from "../../src/store/migrate.ts";

/** Drops and re-creates the bench database, then applies every migration. */
export async function recreateDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (!/^smsblast_bench\w*$/.test(name))
    throw new Error(`refusing to drop "${name}": the bench database must be named smsblast_bench*`);
  url.pathname = "/postgres";
  const admin = new pg.Client({ connectionString: url.href });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
  await migrateDatabase(databaseUrl);
}

/** Empties the campaign tables so every measured run starts from the same state, and flushes dirty pages. */
export async function resetCampaignData(pool: pg.Pool): Promise<void> {
  // The delivery tables have no foreign key to campaigns: named, so each size's storage figures are its own.
  await pool.query(
    `TRUNCATE campaigns, batches, recipients, rejects, delivery_events, callback_nonces RESTART IDENTITY CASCADE`,
  );
  await pool.query(`CHECKPOINT`).catch(() => {}); // needs superuser; only lowers the noise
}

/**
 * Ceiling for ingest: the same CSV file streamed straight into a temp table with COPY (no parsing in
 * Node, no normalisation, no de-dup, no index). Temp tables are not WAL-logged, like the app's staging table.
 */
export async function copyCeiling(
  databaseUrl: string,
  file: string,
): Promise<{ rows: number; seconds: number; rowsPerSecond: number }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(`CREATE TEMP TABLE bench_copy_ceiling (phone text, first_name text, city text)`);
    const started = performance.now();
    const stream = client.query(copyFrom(`COPY bench_copy_ceiling FROM STDIN WITH (FORMAT csv, HEADER true)`));
    await pipeline(createReadStream(file, { highWaterMark: 256 * 1024 }), stream);
    const seconds = (performance.now() - started) / 1000;
    const rows = Number(stream.rowCount);
    await client.query(`DROP TABLE bench_copy_ceiling`);
    return { rows, seconds, rowsPerSecond: Math.round(rows / seconds) };
  } finally {
    await client.end();
  }
}

export interface CampaignEnd {
  status: string;
  startedAt: Date | null;
  finishedAt: Date | null;
}

/** Polls the campaign every `pollMs` until it is completed (or fails), at most until `timeoutMs`. */
export async function waitForCampaignEnd(
  pool: pg.Pool,
  campaignId: string,
  timeoutMs: number,
  checkAlive: () => void = () => {},
  pollMs = 100,
): Promise<CampaignEnd> {
  const deadline = performance.now() + timeoutMs;
  for (let polls = 0; polls < Math.ceil(timeoutMs / pollMs) + 1; polls++) {
    const { rows } = await pool.query<{
      status: string;
      started_at: Date | null;
      finished_at: Date | null;
      status_reason: string | null;
    }>(`SELECT status, started_at, finished_at, status_reason FROM campaigns WHERE id = $1`, [campaignId]);
    const row = rows[0];
    if (!row) throw new Error(`campaign ${campaignId} not found`);
    if (row.status === "completed")
      return { status: row.status, startedAt: row.started_at, finishedAt: row.finished_at };
    if (row.status === "failed" || row.status === "paused" || row.status === "cancelled") {
      throw new Error(`campaign ${campaignId} ended ${row.status}${row.status_reason ? `: ${row.status_reason}` : ""}`);
    }
    checkAlive();
    if (performance.now() > deadline) break;
    await sleep(pollMs);
  }
  const progress = await pool.query(
    `SELECT state, count(*)::int AS n FROM batches WHERE campaign_id = $1 GROUP BY state`,
    [campaignId],
  );
  throw new Error(
    `campaign ${campaignId} did not complete within ${Math.round(timeoutMs / 1000)} s (batches: ${JSON.stringify(progress.rows)})`,
  );
}

/** Polls (every 20 ms) until a worker has claimed the campaign's first batch. */
export async function waitForFirstClaim(
  pool: pg.Pool,
  campaignId: string,
  timeoutMs: number,
  checkAlive: () => void = () => {},
): Promise<void> {
  const pollMs = 20;
  for (let polls = 0; polls < Math.ceil(timeoutMs / pollMs); polls++) {
    const { rowCount } = await pool.query(
      `SELECT 1 FROM batches WHERE campaign_id = $1 AND first_claimed_at IS NOT NULL LIMIT 1`,
      [campaignId],
    );
    if (rowCount) return;
    checkAlive();
    await sleep(pollMs);
  }
  throw new Error(`no batch of campaign ${campaignId} was claimed within ${Math.round(timeoutMs / 1000)} s`);
}

export interface SendFigures {
  batches: number;
  recipientsSent: number;
  notSentBatches: number;
  /** Attempts beyond the first, over all batches. */
  retries: number;
  firstClaimAt: Date;
  lastSentAt: Date;
  /** first claim → last batch recorded */
  seconds: number;
  recipientsPerSecond: number;
  /** sent_at − claimed_at of each batch's successful attempt: claim, provider call, recording. */
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
}

export async function sendFigures(pool: pg.Pool, campaignId: string): Promise<SendFigures> {
  const { rows } = await pool.query<{
    batches: number;
    sent: number;
    not_sent: number;
    retries: number;
    first_claim: Date;
    last_sent: Date;
    p50: number;
    p99: number;
    max: number;
  }>(
    `SELECT count(*)::int AS batches,
            coalesce(sum(size) FILTER (WHERE state = 'sent'), 0)::int AS sent,
            count(*) FILTER (WHERE state <> 'sent')::int AS not_sent,
            (sum(attempts) - count(*))::int AS retries,
            min(first_claimed_at) AS first_claim,
            max(sent_at) AS last_sent,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - claimed_at) * 1000) AS p50,
            percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - claimed_at) * 1000) AS p99,
            max(extract(epoch FROM sent_at - claimed_at) * 1000)::float8 AS max
     FROM batches WHERE campaign_id = $1`,
    [campaignId],
  );
  const r = rows[0]!;
  const seconds = (r.last_sent.getTime() - r.first_claim.getTime()) / 1000;
  return {
    batches: r.batches,
    recipientsSent: r.sent,
    notSentBatches: r.not_sent,
    retries: r.retries,
    firstClaimAt: r.first_claim,
    lastSentAt: r.last_sent,
    seconds,
    recipientsPerSecond: Math.round(r.sent / seconds),
    latencyP50Ms: Math.round(Number(r.p50)),
    latencyP99Ms: Math.round(Number(r.p99)),
    latencyMaxMs: Math.round(Number(r.max)),
  };
}

export interface StorageFigures {
  recipients: number;
  /** pg_total_relation_size (heap + TOAST + indexes) of each table measured, in bytes. */
  tableBytes: Record<string, number>;
  /** tableBytes / recipients, per table. */
  bytesPerRecipient: Record<string, number>;
  totalBytesPerRecipient: number;
  /**
   * After VACUUM, the free space inside `recipients` per recipient (pg_freespacemap, when the server has it):
   * dead row versions a report's rewrite left, reusable by the next campaign's rows without growing the file.
   */
  recipientsFreeBytesPerRecipient?: number;
}

/**
 * What one campaign of `recipients` leaves in PostgreSQL: the recipients and batches tables, plus the delivery
 * tables when the delivery phase filled them. The tables hold that campaign only (resetCampaignData).
 */
export async function storageFigures(pool: pg.Pool, recipients: number): Promise<StorageFigures> {
  const tables = ["recipients", "batches"];
  for (const table of ["delivery_events", "callback_nonces"]) {
    const { rowCount } = await pool.query(`SELECT 1 FROM ${table} LIMIT 1`);
    if (rowCount) tables.push(table);
  }
  const { rows } = await pool.query<{ name: string; bytes: string }>(
    `SELECT t AS name, pg_total_relation_size(t::regclass) AS bytes FROM unnest($1::text[]) t`,
    [tables],
  );
  const tableBytes = Object.fromEntries(rows.map((r) => [r.name, Number(r.bytes)]));
  const per = (bytes: number) => Math.round((bytes / Math.max(1, recipients)) * 10) / 10;
  const total = Object.values(tableBytes).reduce((a, b) => a + b, 0);
  return {
    recipients,
    tableBytes,
    bytesPerRecipient: Object.fromEntries(Object.entries(tableBytes).map(([k, v]) => [k, per(v)])),
    totalBytesPerRecipient: per(total),
  };
}

/**
 * Counts per time bucket of a timestamp column (for plots): `sql` selects (at timestamptz, n int). Buckets are
 * at least `minBucketMs` and about `count` over the span: finer ones show only when each statement landed.
 */
export async function timeBuckets(
  pool: pg.Pool,
  sql: string,
  params: unknown[],
  options: { minBucketMs?: number; count?: number } = {},
): Promise<{ bucketMs: number; buckets: Array<{ startMs: number; count: number }> }> {
  const minBucketMs = options.minBucketMs ?? 250;
  const { rows: span } = await pool.query<{ ms: number | null }>(
    `SELECT (extract(epoch FROM max(at) - min(at)) * 1000)::float8 AS ms FROM (${sql}) s`,
    params,
  );
  const bucketMs = Math.max(
    minBucketMs,
    Math.ceil((span[0]?.ms ?? 0) / (options.count ?? 80) / minBucketMs) * minBucketMs,
  );
  const { rows } = await pool.query<{ b: string; n: string }>(
    `SELECT floor(extract(epoch FROM at) * 1000 / ${bucketMs})::bigint AS b, sum(n)::bigint AS n
     FROM (${sql}) s WHERE at IS NOT NULL GROUP BY 1 ORDER BY 1`,
    params,
  );
  return { bucketMs, buckets: rows.map((r) => ({ startMs: Number(r.b) * bucketMs, count: Number(r.n) })) };
}

/** The server settings the write-heavy figures depend on, printed beside them (see README "PostgreSQL settings"). */
export const FIGURE_SETTINGS = ["shared_buffers", "wal_compression", "synchronous_commit", "max_wal_size"] as const;

export async function postgresSettings(pool: pg.Pool): Promise<Record<string, string>> {
  const { rows } = await pool.query<{ name: string; value: string }>(
    `SELECT name, CASE WHEN unit = '8kB' THEN pg_size_pretty(setting::bigint * 8192) WHEN unit = 'MB' THEN setting || ' MB' ELSE setting END AS value
     FROM pg_settings WHERE name = ANY($1::text[]) ORDER BY name`,
    [FIGURE_SETTINGS],
  );
  return Object.fromEntries(rows.map((r) => [r.name, r.value]));
}

export function formatSettings(settings: Record<string, string>): string {
  return Object.entries(settings)
    .map(([name, value]) => `${name}=${value}`)
    .join(", ");
}

/** "recipients 136.4, batches 0.7": bytes per recipient of each table measured. */
export function formatBytesPerTable(figures: StorageFigures, separator = ", "): string {
  return Object.entries(figures.bytesPerRecipient)
    .map(([table, bytes]) => `${table} ${bytes}`)
    .join(separator);
}

/**
 * storageFigures after the delivery reports rewrote the recipients (a rewrite that is not HOT leaves the old
 * version and a second primary-key entry): the size on disk, then VACUUM and the reusable space in it.
 */
export async function storageAfterReports(pool: pg.Pool, recipients: number): Promise<StorageFigures> {
  const figures = await storageFigures(pool, recipients);
  try {
    await pool.query(`CREATE EXTENSION IF NOT EXISTS pg_freespacemap`);
    await pool.query(`VACUUM recipients`);
    const { rows } = await pool.query<{ free: string | null }>(
      `SELECT sum(avail) AS free FROM pg_freespace('recipients')`,
    );
    figures.recipientsFreeBytesPerRecipient =
      Math.round((Number(rows[0]?.free ?? 0) / Math.max(1, recipients)) * 10) / 10;
  } catch {
    // No pg_freespacemap on this server: the size on disk alone.
  }
  return figures;
}
