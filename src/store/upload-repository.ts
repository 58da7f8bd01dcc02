import type pg from "pg";
import { copyIn, type CopyTextWriter } from "./copy-writer.ts";
import { withTransaction, type Database } from "./database.ts";
import type { StagingSource } from "./campaign-repository.ts";
import { prepareForgottenCheck, type ForgottenCondition } from "./forgotten-number-repository.ts";

// Uploads of the HTTP API: raw rows by COPY while the body streams in, each row's judgement under the
// current mapping, and the set-based counts of the check. Rows never come back to Node in one piece.

export interface UploadRecord {
  id: string;
  createdBy: string;
  filename: string | null;
  status: "receiving" | "ready" | "launched";
  columns: string[];
  delimiter: string;
  encoding: string;
  rowCount: number;
  byteCount: number;
  mapping: unknown;
  campaignId: string | null;
  createdAt: Date;
  expiresAt: Date;
}

export interface NewUpload {
  createdBy: string;
  filename: string | null;
  columns: string[];
  delimiter: string;
  encoding: string;
  expiresAt: Date;
}

const UPLOAD_COLUMNS = `id, created_by AS "createdBy", filename, status, columns, delimiter, encoding, row_count AS "rowCount",
  byte_count::float8 AS "byteCount", mapping, campaign_id AS "campaignId", created_at AS "createdAt", expires_at AS "expiresAt"`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Committed at once: a crash mid-upload leaves a `receiving` upload that its expiry deletes. */
export async function insertUpload(db: Database, upload: NewUpload): Promise<string> {
  const { rows } = await db.pool.query<{ id: string }>(
    `INSERT INTO uploads (created_by, filename, columns, delimiter, encoding, expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
    [upload.createdBy, upload.filename, upload.columns, upload.delimiter, upload.encoding, upload.expiresAt],
  );
  return rows[0]!.id;
}

/**
 * COPYs the rows in, one COPY statement per `commitEvery` rows (each commits on its own), so the first rows
 * are stored while the client is still sending and a huge file never sits in one open statement. A failure
 * aborts the COPY in progress; the caller deletes the upload.
 */
export async function storeUploadRows(
  db: Database,
  uploadId: string,
  rows: AsyncIterable<{ row: number; cells: string[] }>,
  options: { commitEvery?: number; onCommitted?: (rows: number) => void } = {},
): Promise<number> {
  const commitEvery = options.commitEvery ?? 20_000;
  const iterator = rows[Symbol.asyncIterator]();
  const client = await db.pool.connect();
  let stored = 0;
  let done = false;
  try {
    while (!done) {
      const written = await copyIn(client, `COPY upload_rows (upload_id, row, cells) FROM STDIN`, async (writer) => {
        let n = 0;
        while (n < commitEvery) {
          const step = await iterator.next();
          if (step.done) {
            done = true;
            break;
          }
          n++;
          await writer.writeRow([uploadId, step.value.row, toPgArray(step.value.cells)]);
        }
        return n;
      });
      stored += written;
      options.onCommitted?.(stored);
    }
    return stored;
  } finally {
    client.release();
  }
}

export async function markUploadReady(
  db: Database,
  uploadId: string,
  counts: { rowCount: number; byteCount: number },
): Promise<void> {
  await db.pool.query(`UPDATE uploads SET status = 'ready', row_count = $2, byte_count = $3 WHERE id = $1`, [
    uploadId,
    counts.rowCount,
    counts.byteCount,
  ]);
}

/** The upload and, by cascade, its rows and judgements. */
export async function deleteUpload(db: Database, uploadId: string): Promise<void> {
  await db.pool.query(`DELETE FROM uploads WHERE id = $1`, [uploadId]);
}

export async function deleteExpiredUploads(db: Database, now = new Date()): Promise<number> {
  const { rowCount } = await db.pool.query(`DELETE FROM uploads WHERE expires_at <= $1`, [now]);
  return rowCount ?? 0;
}

/** A ready upload that has not expired, or null (an id that is not a UUID is simply unknown). */
export async function findUpload(db: Database, uploadId: string): Promise<UploadRecord | null> {
  if (!UUID.test(uploadId)) return null;
  const { rows } = await db.pool.query<UploadRecord>(
    `SELECT ${UPLOAD_COLUMNS} FROM uploads WHERE id = $1 AND status <> 'receiving' AND expires_at > now()`,
    [uploadId],
  );
  return rows[0] ?? null;
}

export async function readUploadSample(db: Database, uploadId: string, limit: number): Promise<string[][]> {
  const { rows } = await db.pool.query<{ cells: string[] }>(
    `SELECT cells FROM upload_rows WHERE upload_id = $1 ORDER BY row LIMIT $2`,
    [uploadId, limit],
  );
  return rows.map((r) => r.cells);
}

export async function readUploadRow(db: Database, uploadId: string, row: number): Promise<string[] | null> {
  const { rows } = await db.pool.query<{ cells: string[] }>(
    `SELECT cells FROM upload_rows WHERE upload_id = $1 AND row = $2`,
    [uploadId, row],
  );
  return rows[0]?.cells ?? null;
}

export interface StoredUploadRow {
  row: number;
  cells: string[];
}

/** Every row in order, a keyset page at a time. */
export async function* readUploadRowPages(
  db: Database,
  uploadId: string,
  pageSize = 10_000,
): AsyncGenerator<StoredUploadRow[]> {
  let after = 0;
  for (;;) {
    const { rows } = await db.pool.query<StoredUploadRow>(
      `SELECT row, cells FROM upload_rows WHERE upload_id = $1 AND row > $2 ORDER BY row LIMIT $3`,
      [uploadId, after, pageSize],
    );
    if (rows.length === 0) return;
    yield rows;
    after = rows[rows.length - 1]!.row;
  }
}

export interface UploadJudgementRow {
  row: number;
  phone: string | null;
  rejectReason: string | null;
  segments: number | null;
}

/** Replaces the rows' judgements and the mapping they were made under, in one transaction. */
export async function replaceUploadJudgements(
  db: Database,
  uploadId: string,
  mapping: unknown,
  judged: AsyncIterable<UploadJudgementRow>,
): Promise<void> {
  await withTransaction(db.pool, async (client) => {
    // Row lock: two mappings of one upload at once would interleave their judgements.
    await client.query(`SELECT 1 FROM uploads WHERE id = $1 FOR UPDATE`, [uploadId]);
    await client.query(`DELETE FROM upload_judgements WHERE upload_id = $1`, [uploadId]);
    await copyIn(
      client,
      `COPY upload_judgements (upload_id, row, phone, reject_reason, segments) FROM STDIN`,
      async (writer: CopyTextWriter) => {
        for await (const j of judged) await writer.writeRow([uploadId, j.row, j.phone, j.rejectReason, j.segments]);
      },
    );
    await client.query(`UPDATE uploads SET mapping = $2 WHERE id = $1`, [uploadId, JSON.stringify(mapping)]);
  });
}

/** How the check groups recipients into requests: the same rule as the campaign planner. */
export interface UploadPlanShape {
  /** Template variables taken from columns, and those columns' 0-based indexes. */
  variables: string[];
  columnIndexes: number[];
  batchSize: number;
  groupByParams: boolean;
}

export interface UploadCounts {
  rows: number;
  invalid: number;
  suppressed: number;
  duplicates: number;
  valid: number;
  batches: number;
  /** Sum of the per-row segments of the recipients (null when no row has a segment count). */
  segments: number | null;
}

// Suppression first (forgotten numbers by their keyed hash), then de-duplication by first occurrence, then
// batches per set of params: the order and rules of createCampaign in campaign-repository.ts, so a check's
// numbers are the launch's.
const judgedSql = (forgotten: ForgottenCondition | null) => `
  judged AS (
    SELECT j.row, j.phone, j.reject_reason, j.segments,
           j.phone IS NOT NULL AND (EXISTS (SELECT 1 FROM suppressions s WHERE s.phone = j.phone)
                                    OR EXISTS (SELECT 1 FROM contacts c WHERE c.phone = j.phone AND c.opted_out)
                                    ${forgotten ? `OR ${forgotten("j.phone")}` : ""}) AS suppressed
    FROM upload_judgements j WHERE j.upload_id = $1
  ), sendable AS (
    SELECT DISTINCT ON (phone) phone, row, segments FROM judged WHERE phone IS NOT NULL AND NOT suppressed ORDER BY phone, row
  )`;

/** A read of an upload's judgements that honours forgotten numbers (their check needs a transaction). */
async function withJudged<T>(db: Database, fn: (client: pg.PoolClient, judged: string) => Promise<T>): Promise<T> {
  return withTransaction(db.pool, async (client) => {
    const forgotten = await prepareForgottenCheck(client, db.phoneHasher, "the upload check");
    return fn(client, judgedSql(forgotten));
  });
}

const PARAMS_OF_ROW = `CASE WHEN cardinality($2::text[]) > 0 THEN
  (SELECT jsonb_object_agg(m.variable, r.cells[m.idx + 1]) FROM unnest($2::text[], $3::int[]) AS m(variable, idx)) END`;

export async function countUpload(db: Database, uploadId: string, shape: UploadPlanShape): Promise<UploadCounts> {
  const { rows } = await withJudged(db, (client, JUDGED) =>
    client.query<{
      rows: number;
      invalid: number;
      suppressed: number;
      valid_rows: number;
      valid: number;
      batches: number;
      segments: number | null;
    }>(
      `WITH ${JUDGED}, grouped AS (
       SELECT count(*) AS n FROM sendable s JOIN upload_rows r ON r.upload_id = $1 AND r.row = s.row
       GROUP BY CASE WHEN $5 THEN ${PARAMS_OF_ROW} END
     )
     SELECT (SELECT count(*)::int FROM judged) AS rows,
            (SELECT count(*)::int FROM judged WHERE reject_reason IS NOT NULL) AS invalid,
            (SELECT count(*)::int FROM judged WHERE suppressed) AS suppressed,
            (SELECT count(*)::int FROM judged WHERE phone IS NOT NULL AND NOT suppressed) AS valid_rows,
            (SELECT count(*)::int FROM sendable) AS valid,
            (SELECT coalesce(sum(ceil(n::numeric / $4)), 0)::int FROM grouped) AS batches,
            (SELECT sum(segments)::float8 FROM sendable) AS segments`,
      [uploadId, shape.variables, shape.columnIndexes, shape.batchSize, shape.groupByParams],
    ),
  );
  const r = rows[0]!;
  return {
    rows: r.rows,
    invalid: r.invalid,
    suppressed: r.suppressed,
    duplicates: r.valid_rows - r.valid,
    valid: r.valid,
    batches: r.batches,
    segments: r.segments,
  };
}

export interface UploadRowError {
  row: number;
  value: string;
  reason: string;
}

/**
 * Invalid, suppressed and duplicate rows in row order (what the launch would store as rejects), after
 * `afterRow`; a duplicate names the row it repeats, whose number is the one sent.
 */
export async function readUploadRowErrors(
  db: Database,
  uploadId: string,
  phoneIndex: number,
  options: { afterRow?: number; limit: number },
): Promise<UploadRowError[]> {
  const { rows } = await withJudged(db, (client, JUDGED) =>
    client.query<UploadRowError>(
      `WITH ${JUDGED}, firsts AS (
       SELECT phone, min(row) AS first_row FROM judged WHERE phone IS NOT NULL AND NOT suppressed GROUP BY phone HAVING count(*) > 1
     )
     SELECT j.row, coalesce(r.cells[$2::int + 1], '') AS value,
            CASE WHEN j.suppressed THEN 'suppressed' WHEN j.reject_reason IS NOT NULL THEN j.reject_reason
                 ELSE 'duplicate of row ' || f.first_row END AS reason
     FROM judged j JOIN upload_rows r ON r.upload_id = $1 AND r.row = j.row
     LEFT JOIN firsts f ON f.phone = j.phone AND NOT j.suppressed
     WHERE (j.reject_reason IS NOT NULL OR j.suppressed OR f.first_row < j.row) AND j.row > $3
     ORDER BY j.row LIMIT $4`,
      [uploadId, phoneIndex, options.afterRow ?? 0, options.limit],
    ),
  );
  return rows;
}

export async function* readUploadRowErrorPages(
  db: Database,
  uploadId: string,
  phoneIndex: number,
  pageSize = 10_000,
): AsyncGenerator<UploadRowError[]> {
  let afterRow = 0;
  for (;;) {
    const page = await readUploadRowErrors(db, uploadId, phoneIndex, { afterRow, limit: pageSize });
    if (page.length === 0) return;
    yield page;
    afterRow = page[page.length - 1]!.row;
  }
}

/**
 * The launch's staging: the judged rows go from upload_judgements (number or reject) and upload_rows (raw
 * value, mapped params) into the campaign's ingest_rows with one INSERT … SELECT, never through Node.
 */
export function stageUpload(
  uploadId: string,
  phoneIndex: number,
  shape: Pick<UploadPlanShape, "variables" | "columnIndexes">,
): StagingSource {
  return async (client: pg.PoolClient) => {
    const { rowCount } = await client.query(
      `INSERT INTO ingest_rows (row_number, phone, raw, reject_reason, params)
       SELECT j.row, j.phone, coalesce(r.cells[$4::int + 1], ''), j.reject_reason, ${PARAMS_OF_ROW}
       FROM upload_judgements j JOIN upload_rows r ON r.upload_id = j.upload_id AND r.row = j.row
       WHERE j.upload_id = $1`,
      [uploadId, shape.variables, shape.columnIndexes, phoneIndex],
    );
    return rowCount ?? 0;
  };
}

/**
 * ready → launching, so two launches of one upload cannot both run; null when it is not ready (the
 * campaign it was launched as, if any, is returned instead).
 */
export async function claimUploadForLaunch(
  db: Database,
  uploadId: string,
): Promise<{ claimed: true } | { claimed: false; status: string; campaignId: string | null }> {
  const { rowCount } = await db.pool.query(
    `UPDATE uploads SET status = 'launching' WHERE id = $1 AND status = 'ready'`,
    [uploadId],
  );
  if (rowCount === 1) return { claimed: true };
  const { rows } = await db.pool.query<{ status: string; campaign_id: string | null }>(
    `SELECT status, campaign_id FROM uploads WHERE id = $1`,
    [uploadId],
  );
  return { claimed: false, status: rows[0]?.status ?? "deleted", campaignId: rows[0]?.campaign_id ?? null };
}

/** launching → launched (with its campaign), or back to ready after a dry run or a refused launch. */
export async function finishUploadLaunch(db: Database, uploadId: string, campaignId: string | null): Promise<void> {
  await db.pool.query(
    `UPDATE uploads SET status = CASE WHEN $2::uuid IS NULL THEN 'ready' ELSE 'launched' END, campaign_id = $2 WHERE id = $1`,
    [uploadId, campaignId],
  );
}

/** A text[] literal for COPY: every element quoted, so delimiters, braces and quotes in cells are safe. */
function toPgArray(values: readonly string[]): string {
  let literal = "{";
  for (let i = 0; i < values.length; i++) {
    if (i > 0) literal += ",";
    const value = values[i]!;
    literal += /["\\]/.test(value) ? `"${value.replace(/[\\"]/g, "\\$&")}"` : `"${value}"`;
  }
  return literal + "}";
}
