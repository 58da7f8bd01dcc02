import { createHash } from "node:crypto";
import type pg from "pg";
import { copyIn, copyRecipientsIn, CopyRowBuffer } from "./copy-writer.ts";
import { SeenFilter } from "./seen-filter.ts";
import { withTransaction, type Database } from "./database.ts";
import { lockAgainstErasure, prepareForgottenCheck, type ForgottenCondition } from "./forgotten-number-repository.ts";
import { assertTransition } from "../model/campaign-state.ts";
import type { IngestRow } from "../model/ingest-row.ts";
import { assertCampaignId, CampaignNotFoundError } from "../model/errors.ts";
import {
  OPEN_BATCH_STATES,
  UNCLAIMED_OPEN_BATCH_STATES,
  type CampaignStatus,
  type ProviderApi,
  type UnknownOutcomePolicy,
} from "../model/states.ts";
import type { SendOptions } from "../model/send-options.ts";

export interface NewCampaign {
  name: string;
  templateId: string;
  templateParams: Record<string, string>;
  provider: ProviderApi;
  onUnknown: UnknownOutcomePolicy;
  sendOptions: SendOptions;
  source: string;
  /** Set for runs of a recurring schedule; unique, so a firing cannot create two campaigns. */
  runKey?: string;
  /** `retry-failed`: the campaign whose failures this one sends again. */
  retryOf?: string;
}

export interface IngestedCampaign {
  campaignId: string;
  totalRows: number;
  recipientCount: number;
  rejectedCount: number;
  duplicateCount: number;
  suppressedCount: number;
  /** Where the time went: streaming rows into staging, then suppression, de-dup and planning in SQL. */
  timings: { stageMs: number; planMs: number };
  /** Batch ids in send order (none were created when `dryRun`). */
  batchIds: string[];
}

/** Rejects grouped by reason, most frequent first; computed only when nothing was left to send. */
export interface RejectReasonCount {
  reason: string;
  count: number;
  firstRow: number;
}

/** A guarded launch's predecessor with the same fingerprint, inside the window. */
export interface EarlierLaunch {
  campaignId: string;
  status: CampaignStatus;
  createdAt: Date;
}

/** What the use case sees before the launch commits: throwing here rolls everything back. */
export interface IngestCheck {
  counts: Omit<IngestedCampaign, "campaignId" | "timings" | "batchIds">;
  /** With `repeatGuard`: the latest campaign with the same fingerprint inside the window, if any. */
  earlierLaunch?: EarlierLaunch;
  /** The most frequent reject reasons (up to 5). */
  rejectReasons: () => Promise<RejectReasonCount[]>;
}

export interface IngestOptions {
  batchSize: number;
  /**
   * Bulk APIs take one set of params per request, so recipients with different params cannot share a
   * batch. The single-recipient API sends each with its own params: no grouping needed.
   */
  groupByParams: boolean;
  /** Status the campaign starts in once its recipients are stored: `running`, or `scheduled` with `scheduledAt`. */
  initialStatus: Extract<CampaignStatus, "running" | "scheduled">;
  scheduledAt?: Date;
  onProgress?: (rowsRead: number) => void;
  progressEvery?: number;
  /** Plan and count, then roll back: nothing is stored or sent. */
  dryRun?: boolean;
  /** Called with the counts before the transaction commits; an error it throws stores nothing. */
  beforeCommit?: (check: IngestCheck) => Promise<void>;
  /**
   * Fingerprint the launch, look for the same fingerprint within `windowMs` (reported to `beforeCommit` as
   * `earlierLaunch`) and record this one; the look-up and the record hold one advisory lock on the
   * fingerprint until commit, so two racing launches of one list cannot both miss each other.
   */
  repeatGuard?: RepeatGuard;
  /**
   * Limits on each row's own param values: a row with a value over `maxChars` (0 = no limit) or matching
   * `forbiddenPattern` (case-insensitive) becomes a reject. `tooLong` / `forbidden` are the reasons, as
   * format() strings with %1$s = variable, %2$s = its source (`sources`, e.g. the CSV column), %3$s = length.
   */
  paramLimits?: {
    maxChars: number;
    forbiddenPattern: string;
    sources: Record<string, string>;
    tooLong: string;
    forbidden: string;
  };
  /** The streamed plan's SeenFilter holds 2^n bits (default 27, 16 MB); tests force false positives with a tiny one. */
  seenFilterLog2Bits?: number;
}

/** The repeat guard of a launch by hand (IngestOptions.repeatGuard). */
export interface RepeatGuard {
  windowMs: number;
  /**
   * A CSV file's launch: the file's bytes with the launch's settings (fileFingerprint). Recorded besides the
   * recipients' fingerprint, and looked for too: a launch of `send --stream` is guarded by it alone before its
   * first batch, since its recipients' fingerprint exists only once its whole list is read.
   */
  fileFingerprint?: string;
}

/** Where a campaign's rows come from: fills the `ingest_rows` staging table, returns how many rows it wrote. */
export type StagingSource = (client: pg.PoolClient) => Promise<number>;

/** A source's rows in the chunks it reads them in (readCsvRecipientChunks): one promise per chunk, not per row. */
export type IngestRowChunks = AsyncIterable<readonly IngestRow[]> | Iterable<readonly IngestRow[]>;

/** Stores a campaign whose rows stream in from a file (COPY in 64 KB chunks). */
export async function createCampaignWithRecipients(
  db: Database,
  campaign: NewCampaign,
  rows: IngestRowChunks,
  options: IngestOptions,
): Promise<IngestedCampaign> {
  const iterator = chunkIterator(rows);
  const first = await iterator.next();
  const all = prepend(first, iterator);
  // A list without per-recipient params (no mapped columns) is planned while it streams: its recipients
  // go straight into `recipients`, numbered into batches as they come (see streamRecipients).
  if (first.done || first.value[0]?.params == null) {
    return createCampaignStaged(
      db,
      campaign,
      (client, campaignId) => streamRecipients(client, campaignId, all, options),
      options,
    );
  }
  return createCampaign(
    db,
    campaign,
    (client) => copyRows(client, { [Symbol.asyncIterator]: () => all }, options),
    options,
  );
}

/** `rest` with the chunk already taken off it back in front; a plain iterator, not another generator layer. */
function prepend(
  first: IteratorResult<readonly IngestRow[]>,
  rest: AsyncIterator<readonly IngestRow[]> | Iterator<readonly IngestRow[]>,
): AsyncIterator<readonly IngestRow[]> {
  let head: IteratorResult<readonly IngestRow[]> | undefined = first;
  return {
    next: async () => {
      if (head === undefined) return rest.next();
      const taken = head;
      head = undefined;
      return taken;
    },
  };
}

/**
 * Stores a campaign, its recipients, its rejects and its batch plan in ONE transaction: any error (a bad
 * CSV row, a lost connection) leaves no half-created campaign. Rows are staged in a temporary table, then
 * suppressed, de-duplicated and planned with set-based SQL, never one query per row. With `dryRun` the
 * plan is computed and reported, then rolled back.
 */
export async function createCampaign(
  db: Database,
  campaign: NewCampaign,
  stage: StagingSource,
  options: IngestOptions,
): Promise<IngestedCampaign> {
  return createCampaignStaged(db, campaign, async (client) => ({ totalRows: await stage(client) }), options);
}

/**
 * What the staging step wrote: rows in `ingest_rows` only, or, for a streamed plan, `planned` recipients
 * already in `recipients` (numbered 0 … planned − 1 into batches) and in `ingest_rows` the rejects and the
 * `held` rows whose number may repeat an earlier one.
 */
export interface Staged {
  totalRows: number;
  streamed?: { planned: number; held: number };
}

async function createCampaignStaged(
  db: Database,
  campaign: NewCampaign,
  stage: (client: pg.PoolClient, campaignId: string) => Promise<Staged>,
  options: IngestOptions,
): Promise<IngestedCampaign> {
  return withTransaction(
    db.pool,
    async (client) => {
      const campaignId = await insertCampaignRow(client, campaign, { scheduledAt: options.scheduledAt });

      // The planner sorts and hashes up to millions of rows: give this one transaction room to do it in memory.
      await client.query(`SET LOCAL work_mem = '256MB'`);
      await client.query(
        `CREATE TEMP TABLE ingest_rows (row_number int NOT NULL, phone text, raw text, reject_reason text, params jsonb) ON COMMIT DROP`,
      );
      const stageStarted = performance.now();
      const { totalRows, streamed } = await stage(client, campaignId);
      const planStarted = performance.now();
      // From here to the commit a concurrent `forget` waits, and this launch sees any forget committed before.
      await lockAgainstErasure(client);
      const forgotten = await prepareForgottenCheck(client, db.phoneHasher, "this launch");
      const removed = streamed ? await moveSuppressedRecipients(client, campaignId, forgotten) : 0;
      const suppressedCount = removed + (await applySuppressions(client, forgotten));
      if (options.paramLimits) await rejectParamsOverLimits(client, options.paramLimits);

      await insertStagedRejects(client, campaignId);
      const plan = streamed
        ? await settleHeldRows(client, campaignId, streamed, removed, options.batchSize)
        : await planRecipients(client, campaignId, options.batchSize, options.groupByParams);
      const { recipientCount } = plan;
      // A scheduled campaign's batches wait as `pending` until the start job flips them to `queued`.
      const batchState = options.initialStatus === "running" ? "queued" : "pending";
      // Batches are counted from the recipients when numbering has holes (suppressed rows taken out).
      const { batchIds } = !plan.evenBatches
        ? await insertBatches(client, campaignId, campaign.templateParams, options.groupByParams, batchState)
        : await insertEvenBatches(
            client,
            campaignId,
            campaign.templateParams,
            recipientCount,
            options.batchSize,
            batchState,
          );

      const { rows: counts } = await client.query<{ rejected: string; valid: string }>(
        `SELECT count(*) FILTER (WHERE reject_reason IS NOT NULL) AS rejected, count(*) FILTER (WHERE phone IS NOT NULL) AS valid
         FROM ingest_rows`,
      );
      const rejectedCount = Number(counts[0]!.rejected);
      const duplicateCount = plan.duplicateCount ?? Number(counts[0]!.valid) - recipientCount;
      // The rejects list the duplicates too, each naming the row it repeats (the first occurrence was sent).
      // Only when there are any: finding them costs two passes over the staged rows.
      if (plan.duplicateCount === undefined && duplicateCount > 0) {
        await client.query(
          `WITH firsts AS (
             SELECT phone, min(row_number) AS first_row FROM ingest_rows WHERE phone IS NOT NULL GROUP BY phone HAVING count(*) > 1
           )
           INSERT INTO rejects (campaign_id, row_number, raw_value, reason)
           SELECT $1, i.row_number, i.raw, 'duplicate of row ' || f.first_row
           FROM ingest_rows i JOIN firsts f USING (phone) WHERE i.row_number <> f.first_row`,
          [campaignId],
        );
      }
      const fingerprint = options.repeatGuard ? await launchFingerprint(client, campaignId, campaign) : undefined;
      const earlierLaunch =
        fingerprint && options.repeatGuard
          ? await lockAndFindEarlierLaunch(
              client,
              { fingerprint, fileFingerprint: options.repeatGuard.fileFingerprint },
              options.repeatGuard.windowMs,
            )
          : undefined;
      await options.beforeCommit?.({
        counts: { totalRows, recipientCount, rejectedCount, duplicateCount, suppressedCount },
        earlierLaunch,
        rejectReasons: () => rejectReasonCounts(client),
      });
      if (fingerprint) {
        await client.query(
          `INSERT INTO launch_guards (campaign_id, fingerprint, file_fingerprint) VALUES ($1, $2, $3)`,
          [campaignId, fingerprint, options.repeatGuard?.fileFingerprint ?? null],
        );
      }
      const finished = batchIds.length === 0;
      await client.query(
        `UPDATE campaigns SET total_rows = $2, recipient_count = $3, rejected_count = $4, duplicate_count = $5,
           batch_count = $6, status = $7::"CampaignStatus", started_at = CASE WHEN $7::"CampaignStatus" = 'running' THEN now() END,
           finished_at = CASE WHEN $8 THEN now() END, suppressed_count = $9, updated_at = now()
         WHERE id = $1`,
        [
          campaignId,
          totalRows,
          recipientCount,
          rejectedCount,
          duplicateCount,
          batchIds.length,
          finished ? "completed" : options.initialStatus,
          finished,
          suppressedCount,
        ],
      );
      const timings = {
        stageMs: Math.round(planStarted - stageStarted),
        planMs: Math.round(performance.now() - planStarted),
      };
      return {
        campaignId,
        totalRows,
        recipientCount,
        rejectedCount,
        duplicateCount,
        suppressedCount,
        batchIds,
        timings,
      };
    },
    { commit: !options.dryRun },
  );
}

/**
 * The campaign's row: `draft` until its launch's transaction sets its status, or, for `send --stream`
 * (`reading`), `running` at once with its started_at and its reading heartbeat.
 */
export async function insertCampaignRow(
  client: pg.PoolClient,
  campaign: NewCampaign,
  row: { scheduledAt?: Date; reading?: boolean },
): Promise<string> {
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO campaigns (name, template_id, template_params, provider, on_unknown, send_options, source, status,
       run_key, scheduled_at, retry_of, started_at, reading_heartbeat_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $11 THEN 'running' ELSE 'draft' END::"CampaignStatus",
       $8, $9, $10, CASE WHEN $11 THEN now() END, CASE WHEN $11 THEN now() END)
     RETURNING id`,
    [
      campaign.name,
      campaign.templateId,
      JSON.stringify(campaign.templateParams),
      campaign.provider,
      campaign.onUnknown,
      JSON.stringify(campaign.sendOptions),
      campaign.source,
      campaign.runKey ?? null,
      row.scheduledAt ?? null,
      campaign.retryOf ?? null,
      row.reading === true,
    ],
  );
  return rows[0]!.id;
}

/**
 * SHA-256 of provider, template id and the sorted distinct (E.164 number, effective params) pairs, where
 * the effective params are the campaign's constant params overlaid by the recipient's own. jsonb's text
 * form is canonical (keys ordered), so the same list in another row order or column order has the same
 * fingerprint; any other number, param value, template or provider gives another.
 */
export async function launchFingerprint(
  client: pg.PoolClient,
  campaignId: string,
  campaign: NewCampaign,
): Promise<string> {
  return combineFingerprint(campaign, [await fingerprintParts(client, campaignId, campaign)]);
}

/** launchFingerprint's aggregates over some of the recipients, to be added up (combineFingerprint). */
export interface FingerprintParts {
  count: bigint;
  sum: bigint;
  xor: bigint;
}

/**
 * launchFingerprint's count, sum and XOR of a 64-bit hash per recipient (number and params): order-free.
 * Sorting a million numbers for string_agg took 2.5 s of a 1M launch; this is one pass. It guards against an
 * accidental second launch of the same list, not against someone crafting a colliding one. `sequences`: only
 * the recipients in batch sequences [from, to), which `send --stream` adds up: the streamed ones' on a
 * connection of their own while the held rows are settled, and the appended ones'.
 */
export async function fingerprintParts(
  client: pg.Pool | pg.PoolClient,
  campaignId: string,
  campaign: NewCampaign,
  sequences?: { from: number; to: number },
): Promise<FingerprintParts> {
  const inRange = sequences ? `AND batch_sequence >= $3 AND batch_sequence < $4` : "";
  const { rows } = await client.query<{ n: string; sum: string; xor: string }>(
    `SELECT count(*)::text AS n, coalesce(sum(h), 0)::text AS sum, coalesce(bit_xor(h), 0)::text AS xor
     FROM (SELECT hashtextextended(phone || E'\t' || coalesce(($2::jsonb || params)::text, ($2::jsonb)::text), 0) AS h
           FROM recipients WHERE campaign_id = $1 ${inRange}) r`,
    [campaignId, JSON.stringify(campaign.templateParams), ...(sequences ? [sequences.from, sequences.to] : [])],
  );
  return { count: BigInt(rows[0]!.n), sum: BigInt(rows[0]!.sum), xor: BigInt(rows[0]!.xor) };
}

/**
 * The fingerprint of the recipients whose parts these are: SHA-256 of provider, template id, count, sum and
 * XOR, one per line, as PostgreSQL wrote it before (`$2 || E'\n' || … || count(*) || …` hashed in SQL), so
 * the launch_guards rows stored then still match.
 */
export function combineFingerprint(campaign: NewCampaign, parts: readonly FingerprintParts[]): string {
  let count = 0n;
  let sum = 0n;
  let xor = 0n;
  for (const part of parts) {
    count += part.count;
    sum += part.sum;
    xor = BigInt.asIntN(64, xor ^ part.xor);
  }
  const text = `${campaign.provider}\n${campaign.templateId}\n${count}\n${sum}\n${xor}`;
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/**
 * The latest launch inside the window with either fingerprint. Each is locked (the lock key is its first 64
 * bits) until this transaction ends, the file's first: a `send --stream` launch locks only its file's in its
 * first transaction and only the recipients' in its last, so no two launches wait on each other in a cycle.
 */
export async function lockAndFindEarlierLaunch(
  client: pg.PoolClient,
  fingerprints: { fingerprint?: string; fileFingerprint?: string },
  windowMs: number,
): Promise<EarlierLaunch | undefined> {
  const { fingerprint = null, fileFingerprint = null } = fingerprints;
  for (const key of [fileFingerprint, fingerprint]) {
    if (key !== null)
      await client.query(`SELECT pg_advisory_xact_lock(('x' || substr($1, 1, 16))::bit(64)::bigint)`, [key]);
  }
  const { rows } = await client.query<{ id: string; status: CampaignStatus; created_at: Date }>(
    `SELECT c.id, c.status, c.created_at FROM launch_guards g JOIN campaigns c ON c.id = g.campaign_id
     WHERE (g.fingerprint = $1 OR g.file_fingerprint = $3) AND g.created_at > now() - $2 * interval '1 millisecond'
     ORDER BY g.created_at DESC LIMIT 1`,
    [fingerprint, windowMs, fileFingerprint],
  );
  const row = rows[0];
  return row ? { campaignId: row.id, status: row.status, createdAt: row.created_at } : undefined;
}

export async function rejectReasonCounts(client: pg.PoolClient): Promise<RejectReasonCount[]> {
  const { rows } = await client.query<{ reason: string; count: string; first_row: number }>(
    `SELECT reject_reason AS reason, count(*) AS count, min(row_number) AS first_row FROM ingest_rows
     WHERE reject_reason IS NOT NULL GROUP BY reject_reason ORDER BY count(*) DESC, min(row_number) LIMIT 5`,
  );
  return rows.map((r) => ({ reason: r.reason, count: Number(r.count), firstRow: r.first_row }));
}

/**
 * Opt-outs win over any list: suppressed numbers (forgotten ones by their keyed hash) and opted-out contacts
 * become rejects, never recipients.
 */
export async function applySuppressions(client: pg.PoolClient, forgotten: ForgottenCondition | null): Promise<number> {
  // A forgotten number's reject keeps no trace of it: not its raw value either (rejects are exported).
  const { rowCount: forgottenRows } = forgotten
    ? await client.query(
        `UPDATE ingest_rows i SET reject_reason = 'suppressed', phone = NULL, raw = '${FORGOTTEN_RAW_VALUE}'
         WHERE i.phone IS NOT NULL AND ${forgotten("i.phone")}`,
      )
    : { rowCount: 0 };
  const { rowCount } = await client.query(
    `UPDATE ingest_rows i SET reject_reason = 'suppressed', phone = NULL
     WHERE i.phone IS NOT NULL
       AND (EXISTS (SELECT 1 FROM suppressions s WHERE s.phone = i.phone)
            OR EXISTS (SELECT 1 FROM contacts c WHERE c.phone = i.phone AND c.opted_out))`,
  );
  return (forgottenRows ?? 0) + (rowCount ?? 0);
}

/** The raw value recorded for a row whose number was forgotten (`smsblast forget`). */
export const FORGOTTEN_RAW_VALUE = "(forgotten number)";

/** Rows whose own param values break the limits become rejects (the first such variable, by name, is named). */
async function rejectParamsOverLimits(
  client: pg.PoolClient,
  limits: NonNullable<IngestOptions["paramLimits"]>,
): Promise<void> {
  await client.query(
    `UPDATE ingest_rows i SET phone = NULL, reject_reason = bad.reason
     FROM (
       SELECT DISTINCT ON (r.row_number) r.row_number,
              format(CASE WHEN $1 > 0 AND char_length(kv.value) > $1 THEN $4 ELSE $5 END,
                     kv.key, coalesce($3::jsonb ->> kv.key, kv.key), char_length(kv.value)) AS reason
       FROM ingest_rows r CROSS JOIN LATERAL jsonb_each_text(r.params) kv
       WHERE r.phone IS NOT NULL AND r.params IS NOT NULL
         AND (($1 > 0 AND char_length(kv.value) > $1) OR kv.value ~* $2)
       ORDER BY r.row_number, kv.key
     ) bad
     WHERE i.row_number = bad.row_number AND i.phone IS NOT NULL`,
    [limits.maxChars, limits.forbiddenPattern, JSON.stringify(limits.sources), limits.tooLong, limits.forbidden],
  );
}

async function copyRows(client: pg.PoolClient, rows: IngestRowChunks, options: IngestOptions): Promise<number> {
  const progressEvery = options.progressEvery ?? 50_000;
  const count = await copyIn(
    client,
    `COPY ingest_rows (row_number, phone, raw, reject_reason, params) FROM STDIN`,
    async (writer) => {
      let n = 0;
      for await (const chunk of rows) {
        for (const row of chunk) {
          await writer.writeRow([
            row.rowNumber,
            row.phone,
            row.raw,
            row.rejectReason,
            row.params ? JSON.stringify(row.params) : null,
          ]);
          if (++n % progressEvery === 0) options.onProgress?.(n);
        }
      }
      return n;
    },
  );
  options.onProgress?.(count);
  return count;
}

/** The recipients planned; `evenBatches`: numbered 0 … n − 1 in runs of the batch size (batches computed). */
export interface Plan {
  recipientCount: number;
  evenBatches: boolean;
  /** Set when the plan wrote the duplicate rejects itself. */
  duplicateCount?: number;
}

/** Held rows wait encoded (CopyRowBuffer) until this many bytes, then go out in a COPY of their own. */
const HELD_BYTES_PER_COPY = 256 * 1024;

/**
 * The streamed plan of a list without per-recipient params, the common case: one pass over the rows.
 * A number the SeenFilter has certainly not seen goes straight into `recipients` with batch sequence
 * ⌊k / batchSize⌋ (k = recipients so far); rejects and the rows whose number it may have seen are held in
 * `ingest_rows` for settleHeldRows. COPY streams one table at a time on a connection, so the recipients'
 * COPY pauses once HELD_BYTES_PER_COPY of held rows are buffered (at the end of a chunk), and they go out
 * in a COPY of their own.
 * Where staging every row and planning it in SQL wrote each recipient twice (1M: stage 4 s, plan 9.5 s),
 * Postgres now inserts the recipients while the producer is still parsing.
 */
export async function streamRecipients(
  client: pg.PoolClient,
  campaignId: string,
  rows: AsyncIterator<readonly IngestRow[]> | Iterator<readonly IngestRow[]>,
  options: Pick<IngestOptions, "batchSize" | "onProgress" | "progressEvery" | "seenFilterLog2Bits">,
  /** `send --stream`: ends a COPY once `full` says so, and after each COPY's held rows, `end` commits a step. */
  steps?: StreamSteps,
): Promise<Staged> {
  const progressEvery = options.progressEvery ?? 50_000;
  const seen = new SeenFilter(options.seenFilterLog2Bits);
  const held = new CopyRowBuffer();
  let totalRows = 0;
  let planned = 0;
  let heldValid = 0;
  let done = false;
  while (!done) {
    await copyRecipientsIn(client, campaignId, async (writer) => {
      // At least one chunk per COPY: a step that is "full" at once (its time is up) still moves the list on.
      for (let first = true; first || (held.bytes < HELD_BYTES_PER_COPY && !steps?.full(planned)); first = false) {
        const next = await rows.next();
        if (next.done) {
          done = true;
          return;
        }
        for (const row of next.value) {
          if (row.params !== null) throw new Error(`row ${row.rowNumber} has params in a list planned without them`);
          if (++totalRows % progressEvery === 0) options.onProgress?.(totalRows);
          const maybeSeen = row.phone !== null && seen.addIfAbsent(row.phone);
          if (row.phone === null || maybeSeen) {
            await held.writeRow([row.rowNumber, row.phone, row.raw, row.rejectReason]);
            if (maybeSeen) heldValid++;
          } else {
            await writer.writeRecipient(row.phone, row.rowNumber, Math.floor(planned++ / options.batchSize));
          }
        }
      }
    });
    const chunks = await held.take();
    if (chunks.length > 0) {
      await copyIn(client, `COPY ingest_rows (row_number, phone, raw, reject_reason) FROM STDIN`, async (writer) => {
        for (const chunk of chunks) await writer.writeEncoded(chunk);
      });
    }
    if (!done) await steps?.end(planned, totalRows);
  }
  options.onProgress?.(totalRows);
  return { totalRows, streamed: { planned, held: heldValid } };
}

/** How a launch that sends while reading cuts the stream into steps (streamed-launch.ts). */
export interface StreamSteps {
  /** True once the open step holds enough recipients (`planned` so far) or has lasted long enough. */
  full: (planned: number) => boolean;
  /** Commits the step: every batch complete at `planned` recipients; the list is not read to its end yet. */
  end: (planned: number, totalRows: number) => Promise<void>;
}

/**
 * Streamed plan, recipients on the suppression list (or opted-out contacts, or forgotten numbers) are taken
 * out again and become rejects like the staged ones, with their number as the raw value (the cell as
 * written was not kept). The join is driven by the suppressions, hashed: one pass over this campaign's rows.
 */
export async function moveSuppressedRecipients(
  client: pg.PoolClient,
  campaignId: string,
  forgotten: ForgottenCondition | null,
  /** `send --stream`: the batches of one step only, [from, to). */
  sequences?: { from: number; to: number },
  /** False: no number is on the list or opted out (checked at the launch's start), so only forgotten ones go. */
  anySuppressed = true,
): Promise<number> {
  let moved = 0;
  // Only when asked: over the whole campaign, a range condition turned the planner from its hash join.
  const inRange = sequences ? `AND r.batch_sequence >= $2 AND r.batch_sequence < $3` : "";
  const params = sequences ? [campaignId, sequences.from, sequences.to] : [campaignId];
  if (forgotten) {
    const { rowCount } = await client.query(
      `WITH gone AS (DELETE FROM recipients r WHERE r.campaign_id = $1 ${inRange} AND ${forgotten("r.phone")} RETURNING r.row_number)
       INSERT INTO ingest_rows (row_number, phone, raw, reject_reason)
       SELECT row_number, NULL, '${FORGOTTEN_RAW_VALUE}', 'suppressed' FROM gone`,
      params,
    );
    moved += rowCount ?? 0;
  }
  if (!anySuppressed) return moved;
  const { rowCount } = await hashJoined(
    client,
    `WITH gone AS (
       DELETE FROM recipients r
       USING (SELECT phone FROM suppressions UNION SELECT phone FROM contacts WHERE opted_out) s
       WHERE r.campaign_id = $1 ${inRange} AND r.phone = s.phone
       RETURNING r.row_number, r.phone
     )
     INSERT INTO ingest_rows (row_number, phone, raw, reject_reason)
     SELECT row_number, NULL, phone, 'suppressed' FROM gone`,
    params,
  );
  return moved + (rowCount ?? 0);
}

/**
 * Whether any number is on the suppression list or an opted-out contact at all. A `send --stream` launch asks
 * once, at its start: with none, its steps skip the suppression join (14 ms a step of 50,000), and a number
 * suppressed after the start is left out by the claim of its batch (suppressed_since_launch), as for any
 * launch. Only forgotten numbers (`smsblast forget`), which the claim cannot see, are checked at every step.
 */
export async function anySuppressed(client: pg.PoolClient): Promise<boolean> {
  const { rows } = await client.query<{ any: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM suppressions WHERE phone_hmac IS NULL) OR EXISTS (SELECT 1 FROM contacts WHERE opted_out) AS any`,
  );
  return rows[0]!.any;
}

/**
 * Runs a statement that joins this campaign's recipients to other rows by phone with nested loops off. The
 * primary key cannot be probed by phone alone, and recipients just COPYed have no statistics: a planner that
 * took the table for small could pick, per suppression or held row, a scan of the campaign's whole key range
 * (H × N). A hash join is one pass over each side, whatever their sizes.
 */
export async function hashJoined(client: pg.PoolClient, sql: string, params: unknown[]): Promise<pg.QueryResult> {
  await client.query(`SET LOCAL enable_nestloop = off`);
  const result = await client.query(sql, params);
  // On an error the transaction rolls back, and the setting with it.
  await client.query(`SET LOCAL enable_nestloop = on`);
  return result;
}

/**
 * Streamed plan, the held rows with a number: for each number the first row (in `recipients` or held)
 * wins. A held row that is first (the filter's false positive) becomes a recipient after the planned ones,
 * continuing their numbering; the others are duplicates, rejected naming the row they repeat.
 */
export async function settleHeldRows(
  client: pg.PoolClient,
  campaignId: string,
  streamed: NonNullable<Staged["streamed"]>,
  removed: number,
  batchSize: number,
): Promise<Plan> {
  if (streamed.held === 0)
    return { recipientCount: streamed.planned - removed, evenBatches: removed === 0, duplicateCount: 0 };
  await hashJoined(
    client,
    `CREATE TEMP TABLE held_firsts ON COMMIT DROP AS
     SELECT phone, min(row_number) AS first_row FROM (
       SELECT r.phone, r.row_number FROM recipients r
       JOIN (SELECT DISTINCT phone FROM ingest_rows WHERE phone IS NOT NULL) h ON h.phone = r.phone
       WHERE r.campaign_id = $1
       UNION ALL
       SELECT phone, row_number FROM ingest_rows WHERE phone IS NOT NULL
     ) x GROUP BY phone`,
    [campaignId],
  );
  const { rowCount: appended } = await client.query(
    `INSERT INTO recipients (campaign_id, phone, row_number, batch_sequence)
     SELECT $1, i.phone, i.row_number, (($2::int + row_number() OVER (ORDER BY i.row_number) - 1) / $3::int)::int
     FROM ingest_rows i JOIN held_firsts f ON f.phone = i.phone AND f.first_row = i.row_number`,
    [campaignId, streamed.planned, batchSize],
  );
  const { rowCount: duplicates } = await client.query(
    `INSERT INTO rejects (campaign_id, row_number, raw_value, reason)
     SELECT $1, i.row_number, i.raw, 'duplicate of row ' || f.first_row
     FROM ingest_rows i JOIN held_firsts f ON f.phone = i.phone WHERE i.row_number <> f.first_row`,
    [campaignId],
  );
  return {
    recipientCount: streamed.planned + (appended ?? 0) - removed,
    evenBatches: removed === 0,
    duplicateCount: duplicates ?? 0,
  };
}

/**
 * De-duplicates by E.164 number (first occurrence wins) and assigns batch sequences: recipients with
 * identical params share batches (both bulk APIs take one set of params per request), each group cut into
 * chunks of at most `batchSize`, groups and chunks in file order.
 */
async function planRecipients(
  client: pg.PoolClient,
  campaignId: string,
  batchSize: number,
  groupByParams: boolean,
): Promise<Plan> {
  const { rows } = await client.query<{ personalised: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM ingest_rows WHERE params IS NOT NULL) AS personalised`,
  );
  if (!rows[0]!.personalised) {
    // The common case, one set of params for everyone: a hash de-dup and one numbering pass.
    const { rowCount } = await client.query(
      `INSERT INTO recipients (campaign_id, phone, row_number, batch_sequence)
       SELECT $1, phone, first_row, ((row_number() OVER (ORDER BY first_row) - 1) / $2)::int
       FROM (SELECT phone, min(row_number) AS first_row FROM ingest_rows WHERE phone IS NOT NULL GROUP BY phone) d`,
      [campaignId, batchSize],
    );
    return { recipientCount: rowCount ?? 0, evenBatches: true };
  }
  const groupKey = groupByParams ? "params" : "NULL::jsonb";
  const { rowCount } = await client.query(
    `WITH dedup AS (
       SELECT DISTINCT ON (phone) phone, row_number, params FROM ingest_rows WHERE phone IS NOT NULL ORDER BY phone, row_number
     ), chunked AS (
       SELECT phone, row_number, params,
              (row_number() OVER (PARTITION BY ${groupKey} ORDER BY row_number) - 1) / $2 AS chunk,
              min(row_number) OVER (PARTITION BY ${groupKey}) AS group_start
       FROM dedup
     )
     INSERT INTO recipients (campaign_id, phone, row_number, params, batch_sequence)
     SELECT $1, phone, row_number, params, (dense_rank() OVER (ORDER BY group_start, chunk) - 1)::int
     FROM chunked`,
    [campaignId, batchSize],
  );
  return { recipientCount: rowCount ?? 0, evenBatches: false };
}

/** Batches inserted: their ids in sequence order, and how many recipients they hold together. */
export interface InsertedBatches {
  batchIds: string[];
  recipients: number;
}

/** `send --stream`: one step's batch sequences [from, to), or from `from` on when `to` is null. */
export type SequenceRange = { from: number; to: number | null };

/**
 * The batches of an unpersonalised list: its n recipients are numbered 0, 1, … in runs of `batchSize`, so
 * batch k holds min(batchSize, n − k·batchSize) and the template's params. Computed, where insertBatches
 * reads the recipients twice (1.1 s of a 1M launch). `sequences`: only those (default all of them).
 */
export async function insertEvenBatches(
  client: pg.PoolClient,
  campaignId: string,
  templateParams: Record<string, string>,
  recipientCount: number,
  batchSize: number,
  state: "queued" | "pending",
  sequences: SequenceRange = { from: 0, to: null },
): Promise<InsertedBatches> {
  const { rows } = await client.query<{ id: string; sequence: number; size: number }>(
    `INSERT INTO batches (campaign_id, sequence, size, idempotency_key, params, state)
     SELECT $1::uuid, k, least($3::int, $4::int - k * $3::int), $1::uuid::text || '-' || k, $2::jsonb, $5::"BatchState"
     FROM generate_series($6::int, coalesce($7::int, ceil($4::int / $3::numeric)::int) - 1) k
     ORDER BY k
     RETURNING id, sequence, size`,
    [campaignId, JSON.stringify(templateParams), batchSize, recipientCount, state, sequences.from, sequences.to],
  );
  return insertedInOrder(rows);
}

/**
 * Batches counted from the recipients, one per batch sequence holding any, with the params of its first
 * recipient when grouped by params. `sequences`: only those (default all: no range condition then, so the
 * planner's choice over the whole campaign stays what it was).
 */
export async function insertBatches(
  client: pg.PoolClient,
  campaignId: string,
  templateParams: Record<string, string>,
  groupByParams: boolean,
  state: "queued" | "pending",
  sequences?: SequenceRange,
): Promise<InsertedBatches> {
  const inRange = sequences ? `AND batch_sequence >= $5 AND ($6::int IS NULL OR batch_sequence < $6)` : "";
  const { rows } = await client.query<{ id: string; sequence: number; size: number }>(
    `INSERT INTO batches (campaign_id, sequence, size, idempotency_key, params, state)
     SELECT $1, s.batch_sequence, s.size, $1::text || '-' || s.batch_sequence,
            $2::jsonb || CASE WHEN $3 THEN coalesce(p.params, '{}'::jsonb) ELSE '{}'::jsonb END, $4::"BatchState"
     FROM (SELECT batch_sequence, count(*)::int AS size FROM recipients WHERE campaign_id = $1 ${inRange} GROUP BY batch_sequence) s
     JOIN (SELECT DISTINCT ON (batch_sequence) batch_sequence, params FROM recipients WHERE campaign_id = $1 ${inRange}
           ORDER BY batch_sequence, row_number) p USING (batch_sequence)
     ORDER BY s.batch_sequence
     RETURNING id, sequence, size`,
    [
      campaignId,
      JSON.stringify(templateParams),
      groupByParams,
      state,
      ...(sequences ? [sequences.from, sequences.to] : []),
    ],
  );
  return insertedInOrder(rows);
}

/** RETURNING promises no order: the ids in sequence order, and the recipients they hold. */
function insertedInOrder(rows: Array<{ id: string; sequence: number; size: number }>): InsertedBatches {
  rows.sort((a, b) => a.sequence - b.sequence);
  return { batchIds: rows.map((r) => r.id), recipients: rows.reduce((n, r) => n + r.size, 0) };
}

/**
 * The staged rows that are rejects (invalid, suppressed, over a param limit) into `rejects`; returns how many.
 */
export async function insertStagedRejects(client: pg.PoolClient, campaignId: string): Promise<number> {
  const { rowCount } = await client.query(
    `INSERT INTO rejects (campaign_id, row_number, raw_value, reason)
     SELECT $1, row_number, raw, reject_reason FROM ingest_rows WHERE reject_reason IS NOT NULL`,
    [campaignId],
  );
  return rowCount ?? 0;
}

/** A source's chunks as one iterator, whether it is async (a file being read) or not (rows in memory). */
export function chunkIterator(
  rows: IngestRowChunks,
): AsyncIterator<readonly IngestRow[]> | Iterator<readonly IngestRow[]> {
  return Symbol.asyncIterator in rows ? rows[Symbol.asyncIterator]() : rows[Symbol.iterator]();
}

type LockedCampaign = {
  status: CampaignStatus;
  started_at: Date | null;
  scheduled_at: Date | null;
  pause_kind: string | null;
  auto_resumes: number;
};

async function lockCampaign(client: pg.PoolClient, campaignId: string): Promise<LockedCampaign> {
  const { rows } = await client.query<LockedCampaign>(
    // NO KEY: a `send --stream` step inserting batches (whose foreign key checks hold KEY SHARE on the row)
    // does not hold up a cancel or a pause; the step's own update of the row then sees the new status.
    `SELECT status, started_at, scheduled_at, pause_kind, auto_resumes FROM campaigns WHERE id::text = $1 FOR NO KEY UPDATE`,
    [campaignId],
  );
  if (!rows[0]) throw new CampaignNotFoundError(campaignId);
  return rows[0];
}

export interface ResumeResult {
  status: "running" | "scheduled";
  /** Open batches that need their job back (re-enqueueing an existing job is a no-op). */
  batchIds: string[];
  scheduledAt: Date | null;
}

/**
 * paused → running, or back to scheduled when the campaign was paused before its start time; returns
 * what must be queued again.
 */
export async function resumeCampaignRecord(
  db: Database,
  campaignId: string,
  /**
   * The outage prober's resume: only a campaign still paused by an outage and auto-resumed fewer than `max`
   * times; otherwise null and nothing changes. A person's resume (no `auto`) starts the count again.
   */
  options: { auto?: { max: number } } = {},
): Promise<ResumeResult | null> {
  return withTransaction(db.pool, async (client) => {
    const current = await lockCampaign(client, campaignId);
    if (
      options.auto &&
      (current.status !== "paused" || current.pause_kind !== "outage" || current.auto_resumes >= options.auto.max)
    )
      return null;
    const notYet =
      current.started_at === null && current.scheduled_at !== null && current.scheduled_at.getTime() > Date.now();
    const to = notYet ? "scheduled" : "running";
    assertTransition(campaignId, current.status, to);
    if (to === "scheduled") {
      await client.query(
        `UPDATE campaigns SET status = 'scheduled', status_reason = NULL, pause_kind = NULL, paused_at = NULL, updated_at = now() WHERE id = $1`,
        [campaignId],
      );
      return { status: "scheduled", batchIds: [], scheduledAt: current.scheduled_at };
    }
    await client.query(
      `UPDATE campaigns SET status = 'running', status_reason = NULL, pause_kind = NULL, paused_at = NULL,
         auto_resumes = CASE WHEN $2 THEN auto_resumes + 1 ELSE 0 END,
         started_at = coalesce(started_at, now()), updated_at = now() WHERE id = $1`,
      [campaignId, options.auto !== undefined],
    );
    await client.query(
      `UPDATE batches SET state = 'queued', updated_at = now() WHERE campaign_id = $1 AND state = 'pending'`,
      [campaignId],
    );
    const open = await client.query<{ id: string }>(
      `SELECT id FROM batches WHERE campaign_id = $1 AND state = ANY($2::"BatchState"[]) AND state <> 'pending' ORDER BY sequence`,
      [campaignId, OPEN_BATCH_STATES],
    );
    return { status: "running", batchIds: open.rows.map((r) => r.id), scheduledAt: null };
  });
}

/** running|scheduled → paused. Workers check the status in the claim, so no batch starts after this commits. */
export async function pauseCampaignRecord(db: Database, campaignId: string, reason: string): Promise<void> {
  await withTransaction(db.pool, async (client) => {
    const current = await lockCampaign(client, campaignId);
    assertTransition(campaignId, current.status, "paused");
    await client.query(
      `UPDATE campaigns SET status = 'paused', status_reason = $2, pause_kind = 'user', paused_at = now(), updated_at = now()
       WHERE id = $1`,
      [campaignId, reason],
    );
  });
}

export interface CancelResult {
  cancelledBatches: number;
  cancelledRecipients: number;
  /** Batches already in flight: they finish and are recorded; nothing starts after the cancel. */
  inFlightBatches: number;
}

/** Any non-final status → cancelled: every batch not yet claimed, and its recipients, end `cancelled`. */
export async function cancelCampaignRecord(db: Database, campaignId: string, reason: string): Promise<CancelResult> {
  return withTransaction(db.pool, async (client) => {
    const current = await lockCampaign(client, campaignId);
    assertTransition(campaignId, current.status, "cancelled");
    await client.query(
      `UPDATE campaigns SET status = 'cancelled', status_reason = $2, finished_at = now(), updated_at = now() WHERE id = $1`,
      [campaignId, reason],
    );
    const batches = await client.query<{ sequence: number }>(
      `UPDATE batches SET state = 'cancelled', updated_at = now()
       WHERE campaign_id = $1 AND state = ANY($2::"BatchState"[]) RETURNING sequence`,
      [campaignId, UNCLAIMED_OPEN_BATCH_STATES],
    );
    const recipients = await client.query(
      `UPDATE recipients SET state = 'cancelled', updated_at = now()
       WHERE campaign_id = $1 AND batch_sequence = ANY($2::int[]) AND state = 'pending'`,
      [campaignId, batches.rows.map((b) => b.sequence)],
    );
    const inFlight = await client.query(`SELECT 1 FROM batches WHERE campaign_id = $1 AND state = 'sending'`, [
      campaignId,
    ]);
    return {
      cancelledBatches: batches.rowCount ?? 0,
      cancelledRecipients: recipients.rowCount ?? 0,
      inFlightBatches: inFlight.rowCount ?? 0,
    };
  });
}

/**
 * scheduled → running once its time has come; returns the batches to queue, or null when the campaign is
 * not (or no longer) waiting to start: paused, cancelled, or already started by another worker.
 */
export async function startScheduledCampaignRecord(
  db: Database,
  campaignId: string,
  now = new Date(),
): Promise<{ batchIds: string[] } | { notBefore: Date } | null> {
  return withTransaction(db.pool, async (client) => {
    const current = await lockCampaign(client, campaignId);
    if (current.status !== "scheduled") return null;
    if (current.scheduled_at && current.scheduled_at.getTime() > now.getTime())
      return { notBefore: current.scheduled_at };
    await client.query(
      `UPDATE campaigns SET status = 'running', started_at = now(), updated_at = now() WHERE id = $1`,
      [campaignId],
    );
    const { rows } = await client.query<{ id: string; sequence: number }>(
      `UPDATE batches SET state = 'queued', updated_at = now() WHERE campaign_id = $1 AND state = 'pending' RETURNING id, sequence`,
      [campaignId],
    );
    // In batch order: the queue's fair-share priorities follow it (RETURNING promises no order).
    return { batchIds: rows.sort((a, b) => a.sequence - b.sequence).map((r) => r.id) };
  });
}

/**
 * A failed recipient's code as retry-failed sees it: its own failure code; for a number the legacy API
 * refused by name in a partial-success answer (recorded with the item's own reason and no code, since
 * 41031 is the code of the whole answer: docs/engagelab-apis.md#legacy-in-smsblast), that answer's 41031.
 * Such numbers are the only code-less failures of a `partial` batch.
 */
const FAILURE_CODE_FOR_RETRY = `coalesce(r.failure_code, CASE WHEN b.state = 'partial' THEN 41031 END)`;
const FAILED_RECIPIENTS_WITH_BATCH = `recipients r JOIN batches b ON b.campaign_id = r.campaign_id AND b.sequence = r.batch_sequence
  WHERE r.campaign_id = $1 AND r.state = 'failed'`;

/** Stages a campaign's failed recipients with the given failure codes, with their params and row numbers. */
export function stageFailedRecipients(campaignId: string, codes: number[]): StagingSource {
  return async (client) => {
    const { rowCount } = await client.query(
      `INSERT INTO ingest_rows (row_number, phone, raw, reject_reason, params)
       SELECT r.row_number, r.phone, r.phone, NULL, r.params FROM ${FAILED_RECIPIENTS_WITH_BATCH}
         AND ${FAILURE_CODE_FOR_RETRY} = ANY($2::int[])`,
      [campaignId, codes],
    );
    return rowCount ?? 0;
  };
}

export interface CampaignDefinition {
  name: string;
  status: CampaignStatus;
  templateId: string;
  templateParams: Record<string, string>;
  provider: ProviderApi;
  onUnknown: UnknownOutcomePolicy;
  sendOptions: SendOptions;
  /** Set once `smsblast purge` began deleting its recipients (null: purged_at not reached yet, or not purged). */
  purged: { at: Date | null } | null;
}

/** What a campaign was launched with, to launch it again (retry-failed). */
export async function readCampaignDefinition(db: Database, campaignId: string): Promise<CampaignDefinition> {
  assertCampaignId(campaignId);
  const row = await db.prisma.campaign.findUnique({ where: { id: campaignId } });
  if (!row) throw new CampaignNotFoundError(campaignId);
  return {
    name: row.name,
    status: row.status,
    templateId: row.templateId,
    templateParams: row.templateParams as Record<string, string>,
    provider: row.provider,
    onUnknown: row.onUnknown,
    sendOptions: row.sendOptions as SendOptions,
    purged: row.recipientStates === null ? null : { at: row.purgedAt },
  };
}

/** A campaign's failed recipients counted by failure code as retry-failed sees it (null: no code), most frequent first. */
export async function countFailuresByCode(
  db: Database,
  campaignId: string,
): Promise<Array<{ code: number | null; count: number }>> {
  const { rows } = await db.pool.query<{ code: number | null; count: number }>(
    `SELECT ${FAILURE_CODE_FOR_RETRY} AS code, count(*)::int AS count FROM ${FAILED_RECIPIENTS_WITH_BATCH}
     GROUP BY 1 ORDER BY count(*) DESC, 1`,
    [campaignId],
  );
  return rows;
}

/** A campaign paused by a provider outage that may still resume by itself. */
export interface OutagePausedCampaign {
  id: string;
  provider: ProviderApi;
  autoResumes: number;
  pausedAt: Date;
}

/** Campaigns paused by an outage and auto-resumed fewer than `maxAutoResumes` times, oldest pause first. */
export async function listOutagePausedCampaigns(db: Database, maxAutoResumes: number): Promise<OutagePausedCampaign[]> {
  const { rows } = await db.pool.query<{ id: string; provider: ProviderApi; auto_resumes: number; paused_at: Date }>(
    `SELECT id, provider, auto_resumes, coalesce(paused_at, updated_at) AS paused_at FROM campaigns
     WHERE status = 'paused' AND pause_kind = 'outage' AND auto_resumes < $1 ORDER BY paused_at LIMIT 1000`,
    [maxAutoResumes],
  );
  return rows.map((r) => ({ id: r.id, provider: r.provider, autoResumes: r.auto_resumes, pausedAt: r.paused_at }));
}

/**
 * Outage pauses that have used up their AUTO_RESUME_MAX automatic resumes become pauses for a person
 * (`outage-exhausted`), their reason saying so; returns their ids.
 */
export async function markAutoResumeExhausted(db: Database, maxAutoResumes: number): Promise<string[]> {
  const { rows } = await db.pool.query<{ id: string }>(
    `UPDATE campaigns SET pause_kind = 'outage-exhausted',
       status_reason = replace(coalesce(status_reason, 'provider unreachable'), 'resumes by itself once it answers, or ', '')
         || ' (resumed by itself ' || auto_resumes || ' times, AUTO_RESUME_MAX; waiting for a person)',
       updated_at = now()
     WHERE status = 'paused' AND pause_kind = 'outage' AND auto_resumes >= $1 RETURNING id`,
    [maxAutoResumes],
  );
  return rows.map((r) => r.id);
}
