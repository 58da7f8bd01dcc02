import { FAILURE_REASONS_SQL } from "./campaign-report-repository.ts";
import { withTransaction, type Database } from "./database.ts";
import { recipientStateCountsSql } from "./recipient-state.ts";

// `smsblast purge`: the recipient detail of finished campaigns goes, their rows and counts stay. Every delete
// is its own short statement of at most `limit` rows, keyset-paged on an index, so no transaction holds
// millions of row locks or minutes of WAL, a running campaign never waits on it, and an interrupted purge
// simply resumes. Nothing here touches a campaign that is not completed, failed or cancelled.

const FINAL = `('completed', 'failed', 'cancelled')`;

/** Failure groups kept per purged campaign: more than a campaign page shows (20). */
const FAILURE_REASONS_KEPT = 50;

export interface PurgeCandidate {
  id: string;
  finishedAt: Date;
  /** Recipient and reject rows it had at launch (the progress bar's total). */
  rows: number;
}

/**
 * Finished campaigns (completed, failed, cancelled) that finished before `cutoff` and are not purged yet,
 * oldest first; a cancelled one with a batch still in flight waits for the next run.
 */
export async function listPurgeCandidates(db: Database, cutoff: Date, limit = 100_000): Promise<PurgeCandidate[]> {
  const { rows } = await db.pool.query<{ id: string; finished_at: Date; rows: string }>(
    `SELECT c.id, c.finished_at, (c.recipient_count + c.rejected_count + c.duplicate_count)::bigint AS rows
     FROM campaigns c
     WHERE c.purged_at IS NULL AND c.finished_at < $1 AND c.status IN ${FINAL}
       AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.campaign_id = c.id AND b.state = 'sending')
     ORDER BY c.finished_at, c.id LIMIT $2`,
    [cutoff, limit],
  );
  return rows.map((r) => ({ id: r.id, finishedAt: r.finished_at, rows: Number(r.rows) }));
}

/**
 * Under the campaign's row lock: checks again that it may be purged, and keeps what status, list, API and
 * console derive from its recipient rows (counts by state, failure groups) on the campaign row, once: a
 * resumed purge keeps the counts taken before its first delete. False: not purgeable (any more).
 */
export async function keepCountsForPurge(db: Database, campaignId: string, cutoff: Date): Promise<boolean> {
  return withTransaction(db.pool, async (client) => {
    const { rows } = await client.query<{ kept: boolean }>(
      `SELECT recipient_states IS NOT NULL AS kept FROM campaigns c
       WHERE id = $1 AND purged_at IS NULL AND finished_at < $2 AND status IN ${FINAL}
         AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.campaign_id = c.id AND b.state = 'sending')
       FOR UPDATE`,
      [campaignId, cutoff],
    );
    if (!rows[0]) return false;
    if (rows[0].kept) return true;
    await client.query(
      `UPDATE campaigns SET
         recipient_states = (SELECT coalesce(jsonb_object_agg(state, n), '{}'::jsonb)
                             FROM (${recipientStateCountsSql("campaign_id = $1")}) s),
         failure_reasons = (SELECT coalesce(jsonb_agg(to_jsonb(f) ORDER BY f.count DESC, f.state, f.code), '[]'::jsonb)
                            FROM (${FAILURE_REASONS_SQL}) f),
         updated_at = now()
       WHERE id = $1`,
      [campaignId, FAILURE_REASONS_KEPT],
    );
    return true;
  });
}

export interface RecipientKey {
  batchSequence: number;
  phone: string;
}

/**
 * Deletes up to `limit` recipients of the campaign after `after` in primary-key order; returns how many and
 * the last key. Keyset-paged on the primary key, so each chunk starts where the last one ended instead of
 * stepping over the dead index entries of the chunks before it.
 */
export async function deleteRecipientChunk(
  db: Database,
  campaignId: string,
  after: RecipientKey | null,
  limit: number,
): Promise<{ deleted: number; last: RecipientKey | null }> {
  const { rows } = await db.pool.query<{ deleted: number; last_sequence: number | null; last_phone: string | null }>(
    `WITH picked AS MATERIALIZED (
       SELECT batch_sequence, phone FROM recipients
       WHERE campaign_id = $1 AND (batch_sequence, phone) > ($2::int, $3::text)
       ORDER BY batch_sequence, phone LIMIT $4
     ), gone AS (
       DELETE FROM recipients r USING picked p
       WHERE r.campaign_id = $1 AND r.batch_sequence = p.batch_sequence AND r.phone = p.phone RETURNING 1
     ), last AS (
       SELECT batch_sequence, phone FROM picked ORDER BY batch_sequence DESC, phone DESC LIMIT 1
     )
     SELECT (SELECT count(*)::int FROM gone) AS deleted, (SELECT batch_sequence FROM last) AS last_sequence,
            (SELECT phone FROM last) AS last_phone`,
    [campaignId, after?.batchSequence ?? -1, after?.phone ?? "", limit],
  );
  const r = rows[0]!;
  return {
    deleted: r.deleted,
    last: r.last_sequence === null ? null : { batchSequence: r.last_sequence, phone: r.last_phone! },
  };
}

/** Up to `limit` rejects from row `fromRow` on (row order, the index); returns how many and the last row. */
export async function deleteRejectChunk(
  db: Database,
  campaignId: string,
  fromRow: number,
  limit: number,
): Promise<{ deleted: number; lastRow: number | null }> {
  const { rows } = await db.pool.query<{ deleted: number; last_row: number | null }>(
    `WITH picked AS MATERIALIZED (
       SELECT id, row_number FROM rejects WHERE campaign_id = $1 AND row_number >= $2 ORDER BY row_number LIMIT $3
     ), gone AS (
       DELETE FROM rejects r USING picked p WHERE r.id = p.id RETURNING 1
     )
     SELECT (SELECT count(*)::int FROM gone) AS deleted, (SELECT max(row_number) FROM picked) AS last_row`,
    [campaignId, fromRow, limit],
  );
  return { deleted: rows[0]!.deleted, lastRow: rows[0]!.last_row };
}

/**
 * Up to `limit` raw delivery rows (callback rows: they hold phone numbers) recorded for the campaign; returns
 * the events they held (a row is one event or a whole callback of row_count events), 0 when none was left.
 */
export async function deleteDeliveryEventChunk(db: Database, campaignId: string, limit: number): Promise<number> {
  const { rows } = await db.pool.query<{ events: number }>(
    `WITH gone AS (
       DELETE FROM delivery_events WHERE ctid = ANY(ARRAY(SELECT ctid FROM delivery_events WHERE campaign_id = $1 LIMIT $2))
       RETURNING row_count
     )
     SELECT coalesce(sum(row_count), 0)::int AS events FROM gone`,
    [campaignId, limit],
  );
  return rows[0]!.events;
}

/** The uploads a campaign was launched from (the API's raw CSV rows and their judgements). */
export async function uploadsOfCampaign(db: Database, campaignId: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ id: string }>(`SELECT id FROM uploads WHERE campaign_id = $1`, [campaignId]);
  return rows.map((r) => r.id);
}

/** Up to `limit` rows of an upload (raw rows and their judgements) after `afterRow`; returns rows and the last. */
export async function deleteUploadRowChunk(
  db: Database,
  uploadId: string,
  afterRow: number,
  limit: number,
): Promise<{ deleted: number; lastRow: number | null }> {
  const { rows } = await db.pool.query<{ deleted: number; last_row: number | null }>(
    `WITH picked AS MATERIALIZED (
       SELECT row FROM upload_rows WHERE upload_id = $1 AND row > $2 ORDER BY row LIMIT $3
     ), judged AS (
       DELETE FROM upload_judgements j USING picked p WHERE j.upload_id = $1 AND j.row = p.row RETURNING 1
     ), gone AS (
       DELETE FROM upload_rows r USING picked p WHERE r.upload_id = $1 AND r.row = p.row RETURNING 1
     )
     -- (both DELETEs run to completion whether or not the SELECT reads them)
     SELECT (SELECT count(*)::int FROM gone) AS deleted,
            (SELECT max(row) FROM picked) AS last_row`,
    [uploadId, afterRow, limit],
  );
  return { deleted: rows[0]!.deleted, lastRow: rows[0]!.last_row };
}

/** The upload row itself, once its rows are gone (judgements without a raw row go with it, by cascade). */
export async function deleteUploadRecord(db: Database, uploadId: string): Promise<void> {
  await db.pool.query(`DELETE FROM uploads WHERE id = $1`, [uploadId]);
}

export async function markCampaignPurged(db: Database, campaignId: string): Promise<void> {
  await db.pool.query(`UPDATE campaigns SET purged_at = now(), updated_at = now() WHERE id = $1`, [campaignId]);
}

/** Whole-table figures for the purge's report and its benchmark: heap + indexes + TOAST, and live rows. */
export async function tableSizes(
  db: Database,
  tables: readonly string[],
): Promise<Array<{ table: string; bytes: number; rows: number }>> {
  const { rows } = await db.pool.query<{ table: string; bytes: string; rows: string }>(
    `SELECT t AS table, pg_total_relation_size(t::regclass)::bigint AS bytes,
            coalesce((SELECT n_live_tup FROM pg_stat_user_tables s WHERE s.relid = t::regclass), 0)::bigint AS rows
     FROM unnest($1::text[]) AS t`,
    [tables],
  );
  return rows.map((r) => ({ table: r.table, bytes: Number(r.bytes), rows: Number(r.rows) }));
}

/** VACUUM (ANALYZE) of the tables a purge emptied: their space is reused by new rows. Not in a transaction. */
export async function vacuumTables(db: Database, tables: readonly string[]): Promise<void> {
  for (const table of tables) {
    if (!/^[a-z_]+$/.test(table)) throw new Error(`not a table name: ${table}`);
    await db.pool.query(`VACUUM (ANALYZE) ${table}`);
  }
}

/** One purge at a time (CLI or any scheduler): a session advisory lock on its own connection, or null. */
export async function withPurgeLock<T>(db: Database, fn: () => Promise<T>): Promise<T | null> {
  const client = await db.pool.connect();
  let broken: Error | undefined;
  try {
    const { rows } = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock($1::bigint) AS ok`, [PURGE_LOCK]);
    if (!rows[0]!.ok) return null;
    try {
      return await fn();
    } finally {
      await client.query(`SELECT pg_advisory_unlock($1::bigint)`, [PURGE_LOCK]).catch((error: unknown) => {
        broken = error as Error;
      });
    }
  } finally {
    client.release(broken);
  }
}

const PURGE_LOCK = "7308901234567002";

export const PURGED_TABLES = ["recipients", "rejects", "delivery_events", "upload_rows", "upload_judgements"] as const;
