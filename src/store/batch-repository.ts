import type pg from "pg";
import {
  CLAIMABLE_BATCH_STATES,
  OPEN_BATCH_STATES,
  isFinalStatus,
  UNCLAIMED_OPEN_BATCH_STATES,
} from "../model/states.ts";
import { withTransaction } from "./database.ts";
import { recipientStateCountsSql } from "./recipient-state.ts";
import { retryWhileDatabaseUnavailable } from "./database-health.ts";
import type { BatchState, ProviderApi, UnknownOutcomePolicy } from "../model/states.ts";
import type { SendOptions } from "../model/send-options.ts";

/** A batch claimed for sending, with what the provider call needs from its campaign. */
export interface ClaimedBatch {
  id: string;
  campaignId: string;
  sequence: number;
  idempotencyKey: string;
  params: Record<string, string>;
  attempts: number;
  firstClaimedAt: Date;
  claimedAt: Date;
  /**
   * Something was added to the suppression list since the campaign was launched: its numbers must be
   * looked for in the batch. The launch left out every number suppressed before it, so usually false.
   */
  suppressedSinceLaunch: boolean;
  lastAttemptAmbiguous: boolean;
  /**
   * The batch's recipients still waiting, in file order, read by the claim itself when none has params (one
   * round trip fewer a batch); undefined: read them with loadPendingRecipients. Not for a first attempt with
   * `suppressedSinceLaunch`, which must leave suppressed numbers out.
   */
  pendingNumbers?: string[];
  campaignName: string;
  templateId: string;
  provider: ProviderApi;
  onUnknown: UnknownOutcomePolicy;
  sendOptions: SendOptions;
}

export type ClaimResult =
  | { claimed: true; batch: ClaimedBatch }
  | { claimed: false; state: BatchState | null; campaignStatus: string | null; claimedAt: Date | null };

// The statements every batch runs (claim, its recipients, its outcome, the campaign's open check, its
// campaign's pacing) are named: parsed and planned once per connection instead of once per batch, ~170 times
// a second per statement at full speed. (PgBouncer in transaction mode needs 1.21+ with
// max_prepared_statements for that, as the delivery receiver's insert does.)

/**
 * Claims a batch with a conditional update committed BEFORE the HTTP call. Exactly one caller can move
 * it from queued/retrying to sending; a duplicate job (stalled lock, reconciler re-enqueue) changes no
 * row and must end without sending.
 */
export async function claimBatch(pool: pg.Pool, batchId: string): Promise<ClaimResult> {
  const { rows } = await pool.query<ClaimedRow>({
    name: "smsblast_claim_batch",
    text: `UPDATE batches b SET state = 'sending', attempts = b.attempts + 1, claimed_at = now(),
       first_claimed_at = coalesce(b.first_claimed_at, now()), updated_at = now()
     FROM campaigns c
     WHERE b.id = $1 AND c.id = b.campaign_id AND b.state = ANY($2::"BatchState"[]) AND c.status = 'running'
     RETURNING ${CLAIMED_COLUMNS}, ${PENDING_NUMBERS_COLUMN}`,
    values: [batchId, CLAIMABLE_BATCH_STATES],
  });
  if (rows[0]) return { claimed: true, batch: toClaimedBatch(rows[0]) };
  const { rows: current } = await pool.query<{ state: BatchState; status: string; claimed_at: Date | null }>(
    `SELECT b.state, c.status, b.claimed_at FROM batches b JOIN campaigns c ON c.id = b.campaign_id WHERE b.id = $1`,
    [batchId],
  );
  const found = current[0];
  return {
    claimed: false,
    state: found?.state ?? null,
    campaignStatus: found?.status ?? null,
    claimedAt: found?.claimed_at ?? null,
  };
}

/**
 * Takes over a batch left in `sending` by a worker that died mid-request. Compare-and-set on claimed_at:
 * of several jobs finding the same stale batch, exactly one wins.
 */
export async function reclaimStaleBatch(
  pool: pg.Pool,
  batchId: string,
  staleClaimedAt: Date,
): Promise<ClaimedBatch | null> {
  const { rows } = await pool.query<ClaimedRow>(
    `UPDATE batches b SET attempts = b.attempts + 1, claimed_at = now(), updated_at = now()
     FROM campaigns c
     WHERE b.id = $1 AND c.id = b.campaign_id AND b.state = 'sending' AND b.claimed_at = $2 AND c.status = 'running'
     RETURNING ${CLAIMED_COLUMNS}`,
    [batchId, staleClaimedAt],
  );
  return rows[0] ? toClaimedBatch(rows[0]) : null;
}

// The suppression check rides on the claim: probing the list for each of a batch's 1000 numbers cost 1.3 ms a
// batch, a fifth of Postgres's time in a 1M send (pg_stat_statements), and finds nothing unless a number was
// suppressed since the launch. The hour's margin covers a suppression whose transaction began before the
// campaign row was written and committed after.
const CLAIMED_COLUMNS = `b.id, b.campaign_id, b.sequence, b.idempotency_key, b.params, b.attempts, b.first_claimed_at, b.claimed_at,
  b.last_attempt_ambiguous,
  c.name AS campaign_name, c.template_id, c.provider, c.on_unknown, c.send_options,
  EXISTS (SELECT 1 FROM suppressions s WHERE s.created_at >= c.created_at - interval '1 hour') AS suppressed_since_launch`;

// The numbers as one text value (see loadPendingRecipients); NULL when some recipient has params, whose rows
// are read on their own. Returned by the claim's statement, so a batch's numbers cost no round trip of their
// own: statements written to Postgres were a fifth of each worker's profile in a 1M send (--cpu-prof).
const PENDING_NUMBERS_COLUMN = `(SELECT CASE WHEN bool_or(r.params IS NOT NULL) THEN NULL
     ELSE coalesce(string_agg(r.phone, E'\n' ORDER BY r.row_number), '') END
   FROM recipients r WHERE r.campaign_id = b.campaign_id AND r.batch_sequence = b.sequence AND r.state = 'pending') AS pending_numbers`;

/** The columns of CLAIMED_COLUMNS, as pg returns them. */
interface ClaimedRow {
  id: string;
  campaign_id: string;
  sequence: number;
  idempotency_key: string;
  params: Record<string, string>;
  attempts: number;
  first_claimed_at: Date;
  claimed_at: Date;
  last_attempt_ambiguous: boolean;
  campaign_name: string;
  template_id: string;
  provider: ProviderApi;
  on_unknown: UnknownOutcomePolicy;
  send_options: SendOptions;
  suppressed_since_launch: boolean;
  /** Only in the claim's own RETURNING (PENDING_NUMBERS_COLUMN). */
  pending_numbers?: string | null;
}

function toClaimedBatch(row: ClaimedRow): ClaimedBatch {
  return {
    id: row.id,
    campaignId: row.campaign_id,
    sequence: row.sequence,
    idempotencyKey: row.idempotency_key,
    params: row.params,
    attempts: row.attempts,
    firstClaimedAt: row.first_claimed_at,
    claimedAt: row.claimed_at,
    suppressedSinceLaunch: row.suppressed_since_launch,
    lastAttemptAmbiguous: row.last_attempt_ambiguous,
    ...(typeof row.pending_numbers === "string"
      ? { pendingNumbers: row.pending_numbers === "" ? [] : row.pending_numbers.split("\n") }
      : {}),
    campaignName: row.campaign_name,
    templateId: row.template_id,
    provider: row.provider,
    onUnknown: row.on_unknown,
    sendOptions: row.send_options,
  };
}

/** Keeps a long batch's claim fresh, so another worker does not take it for a dead worker's. */
export async function touchClaim(pool: pg.Pool, batchId: string): Promise<void> {
  await pool.query(`UPDATE batches SET claimed_at = now() WHERE id = $1 AND state = 'sending'`, [batchId]);
}

/**
 * Recipients of the batch still waiting for an outcome, in file order. With `skipSuppressed` (a batch's
 * first attempt, when something was suppressed since the launch: ClaimedBatch.suppressedSinceLaunch),
 * numbers suppressed since the launch (a STOP reply, `suppress add`) are left out and end `cancelled` with
 * the reason, in the same statement. A retry never changes its set: under the same
 * request_id the provider would answer for the first set.
 */
export async function loadPendingRecipients(
  pool: pg.Pool,
  campaignId: string,
  sequence: number,
  options: { skipSuppressed?: boolean } = {},
): Promise<Array<{ phone: string; params: Record<string, string> | null }>> {
  if (!options.skipSuppressed) {
    // The numbers as one text value: a row per recipient cost the worker ~0.5 s of pg row parsing per
    // million (--cpu-prof) and Postgres a message per row. Rows only when some recipient has params.
    // (A newline is in no E.164 number and no e-mail address.)
    const { rows: joined } = await pool.query<{ phones: string | null; personalised: boolean }>({
      name: "smsblast_batch_numbers",
      text: `SELECT string_agg(phone, E'\n' ORDER BY row_number) AS phones, bool_or(params IS NOT NULL) AS personalised
             FROM recipients WHERE campaign_id = $1 AND batch_sequence = $2 AND state = 'pending'`,
      values: [campaignId, sequence],
    });
    const numbers = joined[0];
    if (!numbers?.phones) return [];
    if (!numbers.personalised) return numbers.phones.split("\n").map((phone) => ({ phone, params: null }));
    const { rows } = await pool.query<{ phone: string; params: Record<string, string> | null }>({
      name: "smsblast_batch_recipients",
      text: `SELECT phone, params FROM recipients WHERE campaign_id = $1 AND batch_sequence = $2 AND state = 'pending' ORDER BY row_number`,
      values: [campaignId, sequence],
    });
    return rows;
  }
  const { rows } = await pool.query<{ phone: string; params: Record<string, string> | null }>(
    `WITH skipped AS (
       UPDATE recipients r SET state = 'cancelled', failure_message = 'suppressed after launch: ' || s.reason, updated_at = now()
       FROM suppressions s
       WHERE r.campaign_id = $1 AND r.batch_sequence = $2 AND r.state = 'pending' AND s.phone = r.phone
       RETURNING r.phone
     )
     SELECT phone, params FROM recipients
     WHERE campaign_id = $1 AND batch_sequence = $2 AND state = 'pending' AND phone NOT IN (SELECT phone FROM skipped)
     ORDER BY row_number`,
    [campaignId, sequence],
  );
  return rows;
}

/**
 * Gives a claim back when nothing was sent under it (Postgres failed before the provider call: `retrying`;
 * a batch not due yet: `queued`), so it is simply taken again later rather than judged by the
 * unknown-outcome rule. The claim's attempt is not counted. Only this very claim is released.
 */
export async function releaseClaim(
  pool: pg.Pool,
  batchId: string,
  claimedAt: Date,
  state: "retrying" | "queued" = "retrying",
): Promise<void> {
  await pool.query(
    `UPDATE batches SET state = $3::"BatchState", attempts = greatest(attempts - 1, 0),
       first_claimed_at = CASE WHEN attempts <= 1 THEN NULL ELSE first_claimed_at END, updated_at = now()
     WHERE id = $1 AND state = 'sending' AND claimed_at = $2`,
    [batchId, claimedAt, state],
  );
}

/** Puts a claimed batch back for another attempt, keeping the last error for `status`. */
export async function markBatchRetrying(
  pool: pg.Pool,
  batchId: string,
  errorCode: number | null,
  errorMessage: string,
  ambiguous = false,
): Promise<void> {
  await pool.query(
    `UPDATE batches SET state = 'retrying', error_code = $2, error_message = $3, last_attempt_ambiguous = $4, updated_at = now()
     WHERE id = $1 AND state = 'sending'`,
    [batchId, errorCode, errorMessage, ambiguous],
  );
}

export interface BatchOutcome {
  batchId: string;
  campaignId: string;
  sequence: number;
  state: Extract<BatchState, "sent" | "partial" | "failed" | "unknown">;
  planId?: string | null;
  messageId?: string | null;
  taskId?: string | null;
  totalCount?: number | null;
  acceptedCount?: number | null;
  errorCode?: number | null;
  errorMessage?: string | null;
  /** Recipients the provider accepted, with the ids it returned for each. */
  accepted: Array<{ phone: string; smsId?: string; messageId?: string; sendChannel?: string }>;
  /** Recipients the provider refused, with its reason. */
  failed: Array<{ phone: string; code?: number; message: string }>;
  /** What happens to every other recipient of the batch still pending. */
  rest: { state: "accepted" | "failed" | "unknown"; code?: number | null; message?: string | null };
}

export interface CampaignProgress {
  campaignId: string;
  status: string;
  finished: boolean;
}

/**
 * Records a batch's result in one transaction: the batch row and every recipient's outcome (set-based,
 * from arrays). The campaign row is not touched there: with 30 batches in flight, a counter update in
 * every batch transaction queued them all on that one row lock (README "Performance"). Completion is
 * checked after the commit instead.
 */
export async function recordBatchOutcome(pool: pg.Pool, outcome: BatchOutcome): Promise<CampaignProgress> {
  // Accepted recipients without provider ids need no row of their own when the rest are accepted anyway.
  const accepted = outcome.rest.state === "accepted" ? outcome.accepted.filter(hasProviderIds) : outcome.accepted;
  // A batch recorded `sent` says it for the rest: they stay `pending` and read as accepted
  // (recipient-state.ts), so a 1000-number v1/messages batch writes no recipient row at all.
  const restFollowsBatch = outcome.state === "sent" && outcome.rest.state === "accepted";
  if (restFollowsBatch && accepted.length === 0 && outcome.failed.length === 0) {
    // The batch row is all there is to write: one statement, no BEGIN and COMMIT round trips.
    await updateSettledBatch(pool, outcome);
  } else {
    await withTransaction(pool, async (client) => {
      await updateSettledBatch(client, outcome);
      await applyRecipientOutcomes(client, outcome.campaignId, outcome.sequence, accepted, outcome.failed);
      if (restFollowsBatch) return;
      await client.query(
        `UPDATE recipients SET state = $3::"RecipientState", failure_code = $4, failure_message = $5, updated_at = now()
         WHERE campaign_id = $1 AND batch_sequence = $2 AND state = 'pending'`,
        [
          outcome.campaignId,
          outcome.sequence,
          outcome.rest.state,
          outcome.rest.code ?? null,
          outcome.rest.message ?? null,
        ],
      );
    });
  }
  // After our own commit: of the last two batches finishing at once, whichever checks last sees both.
  return completeCampaignIfDone(pool, outcome.campaignId);
}

/** The batch row of a recorded outcome; only a batch still `sending` (ours) changes. */
async function updateSettledBatch(db: pg.Pool | pg.PoolClient, outcome: BatchOutcome): Promise<void> {
  const { rowCount } = await db.query({
    name: "smsblast_record_batch",
    text: `UPDATE batches SET state = $2::"BatchState", plan_id = coalesce($3, plan_id), message_id = coalesce($4, message_id),
       task_id = coalesce($5, task_id), total_count = coalesce($6, total_count), accepted_count = coalesce($7, accepted_count),
       error_code = $8, error_message = $9, sent_at = CASE WHEN $2::"BatchState" IN ('sent', 'partial') THEN now() ELSE sent_at END,
       updated_at = now()
     WHERE id = $1 AND state = 'sending'`,
    values: [
      outcome.batchId,
      outcome.state,
      outcome.planId ?? null,
      outcome.messageId ?? null,
      outcome.taskId ?? null,
      outcome.totalCount ?? null,
      outcome.acceptedCount ?? null,
      outcome.errorCode ?? null,
      outcome.errorMessage ?? null,
    ],
  });
  // Someone else (reconciler, cancel) already settled this batch: record nothing twice.
  if (rowCount === 0) throw new BatchNotClaimedError(outcome.batchId);
}

function hasProviderIds(recipient: BatchOutcome["accepted"][number]): boolean {
  return recipient.smsId !== undefined || recipient.messageId !== undefined || recipient.sendChannel !== undefined;
}

/** Accepted and refused recipients of one batch, set-based from arrays; only `pending` rows change. */
async function applyRecipientOutcomes(
  client: pg.PoolClient,
  campaignId: string,
  sequence: number,
  accepted: BatchOutcome["accepted"],
  failed: BatchOutcome["failed"],
  failedState: "failed" | "unknown" = "failed",
): Promise<void> {
  if (accepted.length > 0) {
    await client.query(
      `UPDATE recipients r SET state = 'accepted', sms_id = u.sms_id, message_id = u.message_id, send_channel = u.send_channel,
         updated_at = now()
       FROM unnest($3::text[], $4::text[], $5::text[], $6::text[]) AS u(phone, sms_id, message_id, send_channel)
       WHERE r.campaign_id = $1 AND r.batch_sequence = $2 AND r.phone = u.phone AND r.state = 'pending'`,
      [
        campaignId,
        sequence,
        accepted.map((a) => a.phone),
        accepted.map((a) => a.smsId ?? null),
        accepted.map((a) => a.messageId ?? null),
        accepted.map((a) => a.sendChannel ?? null),
      ],
    );
  }
  if (failed.length > 0) {
    await client.query(
      `UPDATE recipients r SET state = $6::"RecipientState", failure_code = u.code, failure_message = u.message, updated_at = now()
       FROM unnest($3::text[], $4::int[], $5::text[]) AS u(phone, code, message)
       WHERE r.campaign_id = $1 AND r.batch_sequence = $2 AND r.phone = u.phone AND r.state = 'pending'`,
      [
        campaignId,
        sequence,
        failed.map((f) => f.phone),
        failed.map((f) => f.code ?? null),
        failed.map((f) => f.message),
        failedState,
      ],
    );
  }
}

/**
 * Records recipients settled so far by a batch that is not finished (single-recipient API interrupted by a
 * transient or account-wide error); they will not be sent again when the batch is retried or resumed.
 */
export async function recordRecipientProgress(
  pool: pg.Pool,
  batch: { batchId: string; campaignId: string; sequence: number },
  accepted: BatchOutcome["accepted"],
  failed: BatchOutcome["failed"],
  unknown: BatchOutcome["failed"] = [],
): Promise<void> {
  if (accepted.length === 0 && failed.length === 0 && unknown.length === 0) return;
  await withTransaction(pool, async (client) => {
    const { rowCount } = await client.query(`SELECT 1 FROM batches WHERE id = $1 AND state = 'sending' FOR UPDATE`, [
      batch.batchId,
    ]);
    if (!rowCount) throw new BatchNotClaimedError(batch.batchId);
    await applyRecipientOutcomes(client, batch.campaignId, batch.sequence, accepted, failed);
    await applyRecipientOutcomes(client, batch.campaignId, batch.sequence, [], unknown, "unknown");
  });
}

/**
 * An account-wide provider error (bad or disabled key, no permission): stop the whole campaign. The batch
 * goes back to `queued` untouched, so `smsblast resume` sends it once the account is fixed.
 */
export async function pauseCampaignForBatch(
  pool: pg.Pool,
  batch: { batchId: string; campaignId: string },
  errorCode: number | null,
  reason: string,
  kind: PauseKind = "account",
): Promise<void> {
  await withTransaction(pool, async (client) => {
    await client.query(
      `UPDATE batches SET state = 'queued', error_code = $2, error_message = $3, updated_at = now() WHERE id = $1 AND state = 'sending'`,
      [batch.batchId, errorCode, reason],
    );
    await pauseRunningCampaign(client, batch.campaignId, reason, kind);
  });
}

/**
 * Why a campaign is paused (`campaigns.pause_kind`): `outage` pauses resume by themselves once a probe of the
 * provider succeeds, at most AUTO_RESUME_MAX times (then `outage-exhausted`); `account` (credentials refused)
 * and `user` never do.
 */
export type PauseKind = "outage" | "outage-exhausted" | "account" | "user";

/** running → paused with its reason and kind; returns whether this call paused it. */
export async function pauseRunningCampaign(
  client: pg.Pool | pg.PoolClient,
  campaignId: string,
  reason: string,
  kind: PauseKind,
): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE campaigns SET status = 'paused', status_reason = $2, pause_kind = $3, paused_at = now(), updated_at = now()
     WHERE id = $1 AND status = 'running'`,
    [campaignId, reason, kind],
  );
  return (rowCount ?? 0) > 0;
}

/** A batch's campaign and its provider API, read before claiming it (null: no such batch). */
export async function campaignOfBatch(
  pool: pg.Pool,
  batchId: string,
): Promise<{ campaignId: string; provider: ProviderApi; size: number; ratePerSecond: number | undefined } | null> {
  const { rows } = await pool.query<{
    campaign_id: string;
    provider: ProviderApi;
    size: number;
    rate: number | null;
  }>({
    name: "smsblast_batch_campaign",
    text: `SELECT c.id AS campaign_id, c.provider, b.size, (c.send_options->>'ratePerSecond')::float8 AS rate
     FROM batches b JOIN campaigns c ON c.id = b.campaign_id WHERE b.id = $1`,
    values: [batchId],
  });
  const row = rows[0];
  return row
    ? { campaignId: row.campaign_id, provider: row.provider, size: row.size, ratePerSecond: row.rate ?? undefined }
    : null;
}

const OPEN_STATES_SQL = OPEN_BATCH_STATES.map((state) => `'${state}'`).join(", ");

/**
 * Once no batch of the campaign is open: its counters are set from its recipients (the truth), and a
 * running campaign becomes completed, or failed when nothing was accepted and nothing may have been sent.
 */
export async function completeCampaignIfDone(pool: pg.Pool, campaignId: string): Promise<CampaignProgress> {
  // The states spelled out, so the partial index of open batches answers it with one probe: scanning the
  // campaign's batches past the recorded ones grew with the send (quadratic over a 10M campaign's 10,000).
  // A `send --stream` launch still reading its list (reading_heartbeat_at set) has batches to come.
  const { rows: open } = await pool.query<{ open: boolean; status: string }>({
    name: "smsblast_campaign_open",
    text: `SELECT status, reading_heartbeat_at IS NOT NULL
       OR EXISTS (SELECT 1 FROM batches WHERE campaign_id = $1 AND state IN (${OPEN_STATES_SQL})) AS open
     FROM campaigns WHERE id = $1`,
    values: [campaignId],
  });
  const current = open[0];
  if (!current) return { campaignId, status: "unknown", finished: false };
  if (current.open) return { campaignId, status: current.status, finished: false };
  if (completedHere(current.status)) return finishedBySomeoneElse(current.status);
  return withTransaction(pool, async (client) => {
    // The last batches of a campaign finish together, and each worker found none open: every one of them
    // counted all the recipients (1M: 0.2 s each, 2 to 4 at once on the same cores, auto_explain). Only
    // the first counts now; the others wait for its row and find it completed (or failed): this function
    // alone sets those, once no batch is open, so the counters it wrote are final.
    const { rows: locked } = await client.query<{ status: string; reading: boolean }>(
      // NO KEY: rows that reference the campaign (events, rejects) can still be inserted meanwhile.
      `SELECT status, reading_heartbeat_at IS NOT NULL AS reading FROM campaigns WHERE id = $1 FOR NO KEY UPDATE`,
      [campaignId],
    );
    const lockedStatus = locked[0]?.status;
    if (lockedStatus !== undefined && completedHere(lockedStatus)) return finishedBySomeoneElse(lockedStatus);
    if (locked[0]?.reading) return { campaignId, status: lockedStatus ?? current.status, finished: false };
    const { rows } = await client.query<{ status: string }>(
      `WITH counts AS (
       SELECT coalesce(sum(n) FILTER (WHERE state = 'accepted'), 0) AS accepted,
              coalesce(sum(n) FILTER (WHERE state = 'failed'), 0) AS failed,
              coalesce(sum(n) FILTER (WHERE state = 'unknown'), 0) AS unknown
       FROM (${recipientStateCountsSql("campaign_id = $1")}) s
     )
     UPDATE campaigns c SET accepted_count = counts.accepted, failed_count = counts.failed, unknown_count = counts.unknown,
       status = CASE WHEN c.status <> 'running' THEN c.status
                     WHEN counts.accepted > 0 OR counts.unknown > 0 THEN 'completed'::"CampaignStatus"
                     ELSE 'failed'::"CampaignStatus" END,
       finished_at = coalesce(c.finished_at, CASE WHEN c.status = 'running' THEN now() END), updated_at = now()
     FROM counts WHERE c.id = $1
       -- a purged campaign's counters stay as they were: its recipient rows are gone
       AND c.recipient_states IS NULL
     RETURNING c.status`,
      [campaignId],
    );
    const status = rows[0]?.status ?? lockedStatus ?? current.status;
    return { campaignId, status, finished: isFinalStatus(status) };
  });

  function finishedBySomeoneElse(status: string): CampaignProgress {
    return { campaignId, status, finished: true };
  }
}

/** The statuses only completeCampaignIfDone sets, once no batch is open: counters written with them are final. */
function completedHere(status: string): boolean {
  return status === "completed" || status === "failed";
}

export class BatchNotClaimedError extends Error {
  override name = "BatchNotClaimedError";
  constructor(readonly batchId: string) {
    super(`batch ${batchId} is no longer in state 'sending'; its outcome was recorded elsewhere`);
  }
}

/**
 * A batch of a cancelled campaign that is not being sent (a send failed after the cancel, or its worker
 * died): it ends `cancelled` with its pending recipients, or `unknown` when it was left in `sending`
 * (it may have been sent). Returns whether it settled the batch.
 */
export async function settleBatchOfCancelledCampaign(
  pool: pg.Pool,
  batchId: string,
  staleClaimedAt?: Date,
): Promise<boolean> {
  const settled = await withTransaction(pool, async (client) => {
    const { rows } = await client.query<{ campaign_id: string; sequence: number; state: BatchState }>(
      `UPDATE batches b SET state = CASE WHEN b.state = 'sending' THEN 'unknown'::"BatchState" ELSE 'cancelled'::"BatchState" END,
         error_message = CASE WHEN b.state = 'sending' THEN 'campaign cancelled while this batch was being sent; it may or may not have been sent' ELSE b.error_message END,
         updated_at = now()
       FROM campaigns c
       WHERE b.id = $1 AND c.id = b.campaign_id AND c.status = 'cancelled'
         AND (b.state = ANY($3::"BatchState"[]) OR (b.state = 'sending' AND b.claimed_at = $2))
       RETURNING b.campaign_id, b.sequence, b.state`,
      [batchId, staleClaimedAt ?? null, UNCLAIMED_OPEN_BATCH_STATES],
    );
    const row = rows[0];
    if (!row) return null;
    await client.query(
      `UPDATE recipients SET state = $3::"RecipientState", updated_at = now() WHERE campaign_id = $1 AND batch_sequence = $2 AND state = 'pending'`,
      [row.campaign_id, row.sequence, row.state === "unknown" ? "unknown" : "cancelled"],
    );
    return row.campaign_id;
  });
  if (settled) await completeCampaignIfDone(pool, settled);
  return settled !== null;
}

/** Recipients settled by a batch that did not finish (single-recipient API interrupted part-way). */
export interface RecipientProgress {
  accepted: BatchOutcome["accepted"];
  failed: BatchOutcome["failed"];
  unknown: BatchOutcome["failed"];
}

/**
 * What the batch-send rules (src/campaigns/batch-decision.ts) decided for a claimed batch. `progress` is
 * recorded first when present; `unexpected` marks an error that is neither a provider answer nor a refusal.
 */
export type SendDecision = (
  | { kind: "record"; outcome: BatchOutcome }
  | {
      kind: "retry";
      code: number | null;
      message: string;
      /** The last attempt may have reached the provider unanswered. */
      ambiguous: boolean;
      retryAfterMs: number | undefined;
      rateLimited: boolean;
      reason: string;
    }
  | {
      kind: "pause";
      code: number | null;
      reason: string;
      /** The provider is down (not the account refused): the campaign resumes by itself once it answers. */
      outage?: boolean;
    }
) & { progress?: RecipientProgress; unexpected?: boolean };

export type AppliedDecision =
  | { kind: "recorded"; progress: CampaignProgress }
  | { kind: "retrying"; cancelled: boolean }
  | { kind: "paused" }
  | { kind: "not-claimed"; reason: string };

/** How long a worker holds on to a provider result while Postgres is down, rather than lose it. */
const RECORD_DEADLINE_MS = 60_000;

/**
 * Applies one send decision to a claimed batch. The provider has answered: every write waits out a short
 * PostgreSQL outage (up to RECORD_DEADLINE_MS), since losing it would turn a known outcome into an unknown one.
 */
export async function applySendDecision(
  pool: pg.Pool,
  batch: { batchId: string; campaignId: string; sequence: number },
  decision: SendDecision,
): Promise<AppliedDecision> {
  const durably = <T>(write: () => Promise<T>) => retryWhileDatabaseUnavailable(pool, write, RECORD_DEADLINE_MS);
  try {
    if (decision.progress) {
      const { accepted, failed, unknown } = decision.progress;
      await durably(() => recordRecipientProgress(pool, batch, accepted, failed, unknown));
    }
    switch (decision.kind) {
      case "record":
        return { kind: "recorded", progress: await durably(() => recordBatchOutcome(pool, decision.outcome)) };
      case "retry":
        await durably(() =>
          markBatchRetrying(pool, batch.batchId, decision.code, decision.message, decision.ambiguous),
        );
        return { kind: "retrying", cancelled: await settleBatchOfCancelledCampaign(pool, batch.batchId) };
      case "pause":
        await durably(() =>
          pauseCampaignForBatch(pool, batch, decision.code, decision.reason, decision.outage ? "outage" : "account"),
        );
        await settleBatchOfCancelledCampaign(pool, batch.batchId);
        return { kind: "paused" };
    }
  } catch (error) {
    if (error instanceof BatchNotClaimedError) return { kind: "not-claimed", reason: error.message };
    throw error;
  }
}
