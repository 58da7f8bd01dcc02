import { assertCampaignId, CampaignNotFoundError, CampaignPurgedError } from "../model/errors.ts";
import type { BatchState, CampaignStatus, RecipientState } from "../model/states.ts";
import type { Database } from "./database.ts";
import { recipientStateCountsSql, recipientStateSql } from "./recipient-state.ts";

// Read-side queries: status counts, listings and the keyset-paged exports. Nothing here writes.

/** The one campaign-exists check: a malformed id and an unknown id are both "no such campaign". */
export async function assertCampaignExists(db: Database, campaignId: string): Promise<void> {
  assertCampaignId(campaignId);
  const { rowCount } = await db.pool.query(`SELECT 1 FROM campaigns WHERE id = $1::uuid`, [campaignId]);
  if (rowCount === 0) throw new CampaignNotFoundError(campaignId);
}

/**
 * The campaign exists and still has its recipient detail (recipients, rejects): otherwise "no such campaign",
 * or "purged" saying what cannot be done (`what`) instead of an empty export.
 */
export async function assertCampaignDetailKept(db: Database, campaignId: string, what: string): Promise<void> {
  assertCampaignId(campaignId);
  const { rows } = await db.pool.query<{ purged: boolean; purged_at: Date | null }>(
    `SELECT recipient_states IS NOT NULL AS purged, purged_at FROM campaigns WHERE id = $1::uuid`,
    [campaignId],
  );
  if (!rows[0]) throw new CampaignNotFoundError(campaignId);
  if (rows[0].purged) throw new CampaignPurgedError(campaignId, rows[0].purged_at, what);
}

export interface CampaignStateCounts {
  campaign: {
    id: string;
    name: string;
    status: CampaignStatus;
    statusReason: string | null;
    provider: string;
    templateId: string;
    createdAt: Date;
    startedAt: Date | null;
    finishedAt: Date | null;
    totalRows: number;
    rejectedCount: number;
    duplicateCount: number;
    /** Set by `smsblast purge` before it deletes the recipient rows: their counts by state. */
    recipientStates: unknown;
    purgedAt: Date | null;
    /** `send --stream`: set while the launch is still reading its list. */
    readingHeartbeatAt: Date | null;
  };
  recipients: Array<{ state: RecipientState; count: number }>;
  batches: Array<{ state: BatchState; count: number }>;
}

/**
 * A campaign with its recipients and batches counted by state, straight from their rows; for a purged
 * campaign (its recipient rows deleted), the recipient counts the purge kept on the campaign row.
 */
export async function countCampaignStates(db: Database, campaignId: string): Promise<CampaignStateCounts> {
  assertCampaignId(campaignId);
  const campaign = await db.prisma.campaign.findUnique({ where: { id: campaignId } });
  if (!campaign) throw new CampaignNotFoundError(campaignId);
  const kept = keptRecipientStates(campaign.recipientStates);
  const [recipientGroups, batchGroups] = await Promise.all([
    kept ??
      db.pool
        .query<{ state: RecipientState; n: number }>(
          `SELECT state, n FROM (${recipientStateCountsSql("campaign_id = $1::uuid")}) s ORDER BY state`,
          [campaignId],
        )
        .then(({ rows }) => rows.map((g) => ({ state: g.state, count: g.n }))),
    db.prisma.batch.groupBy({ by: ["state"], where: { campaignId }, _count: { _all: true } }),
  ]);
  return {
    campaign,
    recipients: recipientGroups,
    batches: batchGroups.map((g) => ({ state: g.state, count: g._count._all })),
  };
}

/** campaigns.recipient_states ({"accepted": 998, "failed": 2}) as groups; null when not purged. */
function keptRecipientStates(value: unknown): Array<{ state: RecipientState; count: number }> | null {
  if (value === null || typeof value !== "object") return null;
  return Object.entries(value as Record<string, number>).map(([state, count]) => ({
    state: state as RecipientState,
    count: Number(count),
  }));
}

export interface CampaignListRow {
  id: string;
  name: string;
  status: CampaignStatus;
  provider: string;
  recipientCount: number;
  acceptedCount: number;
  failedCount: number;
  unknownCount: number;
  createdAt: Date;
  scheduledAt: Date | null;
  startedAt: Date | null;
  finishedAt: Date | null;
}

/** Recent campaigns, newest first. Counters are settled when a campaign finishes; live ones are counted now. */
export async function listCampaignRows(
  db: Database,
  options: { limit: number; offset?: number; status?: CampaignStatus },
): Promise<CampaignListRow[]> {
  const rows = await db.prisma.campaign.findMany({
    where: options.status ? { status: options.status } : {},
    orderBy: [{ createdAt: "desc" }, { id: "asc" }],
    take: options.limit,
    skip: options.offset ?? 0,
  });
  const live = rows.filter((c) => c.finishedAt === null).map((c) => c.id);
  const liveCounts = new Map<string, { accepted: number; failed: number; unknown: number }>();
  if (live.length > 0) {
    const { rows: counts } = await db.pool.query<{
      campaign_id: string;
      accepted: string;
      failed: string;
      unknown: string;
    }>(
      `SELECT campaign_id, coalesce(sum(n) FILTER (WHERE state = 'accepted'), 0) AS accepted,
              coalesce(sum(n) FILTER (WHERE state = 'failed'), 0) AS failed, coalesce(sum(n) FILTER (WHERE state = 'unknown'), 0) AS unknown
       FROM (${recipientStateCountsSql("campaign_id = ANY($1::uuid[])")}) s GROUP BY campaign_id`,
      [live],
    );
    for (const c of counts)
      liveCounts.set(c.campaign_id, {
        accepted: Number(c.accepted),
        failed: Number(c.failed),
        unknown: Number(c.unknown),
      });
  }
  return rows.map((c) => {
    const counted = liveCounts.get(c.id);
    return {
      id: c.id,
      name: c.name,
      status: c.status,
      provider: c.provider,
      recipientCount: c.recipientCount,
      acceptedCount: counted?.accepted ?? c.acceptedCount,
      failedCount: counted?.failed ?? c.failedCount,
      unknownCount: counted?.unknown ?? c.unknownCount,
      createdAt: c.createdAt,
      scheduledAt: c.scheduledAt,
      startedAt: c.startedAt,
      finishedAt: c.finishedAt,
    };
  });
}

export interface RejectRow {
  rowNumber: number;
  rawValue: string;
  reason: string;
}

/** A campaign's rejects in row order, keyset-paged so a huge list stays flat in memory. */
export async function* readRejectPages(
  db: Database,
  campaignId: string,
  pageSize = 10_000,
): AsyncGenerator<RejectRow[]> {
  let after = { row: -1, id: "0" };
  for (;;) {
    const { rows } = await db.pool.query<{ id: string; row_number: number; raw_value: string; reason: string }>(
      `SELECT id, row_number, raw_value, reason FROM rejects WHERE campaign_id = $1 AND (row_number, id) > ($2, $3::bigint)
       ORDER BY row_number, id LIMIT $4`,
      [campaignId, after.row, after.id, pageSize],
    );
    if (rows.length > 0) yield rows.map((r) => ({ rowNumber: r.row_number, rawValue: r.raw_value, reason: r.reason }));
    const last = rows[rows.length - 1];
    if (!last || rows.length < pageSize) return;
    after = { row: last.row_number, id: last.id };
  }
}

export interface ReportRow {
  rowNumber: number;
  phone: string;
  state: RecipientState;
  batchSequence: number;
  planId: string | null;
  smsId: string | null;
  messageId: string | null;
  sendChannel: string | null;
  failureCode: number | null;
  failureMessage: string | null;
  deliveredAt: Date | null;
  deliveryErrorCode: string | null;
  deliveryErrorMessage: string | null;
}

/**
 * Every recipient's outcome in file row order, from ONE ordered read: a cursor over a single sorted query
 * (a sort PostgreSQL spills to disk when it must), fetched a page at a time so a million rows stream flat.
 * Ordering by row number needs no index of its own on `recipients`: keeping the table to its primary key
 * is what keeps the million-row insert fast. Stopping early (the reader stops iterating) closes the cursor.
 */
export async function* readReportPages(
  db: Database,
  campaignId: string,
  pageSize = 10_000,
): AsyncGenerator<ReportRow[]> {
  const client = await db.pool.connect();
  let failed: Error | undefined;
  try {
    await client.query("BEGIN READ ONLY");
    await client.query(
      `DECLARE report_rows NO SCROLL CURSOR FOR
       SELECT r.row_number, r.phone, ${recipientStateSql("r", "b")} AS state, r.batch_sequence, b.plan_id, r.sms_id, coalesce(r.message_id, b.message_id) AS message_id,
              r.send_channel, r.failure_code, r.failure_message, r.delivered_at, r.delivery_error_code, r.delivery_error_message
       FROM recipients r JOIN batches b ON b.campaign_id = r.campaign_id AND b.sequence = r.batch_sequence
       WHERE r.campaign_id = $1
       ORDER BY r.row_number`,
      [campaignId],
    );
    for (;;) {
      const { rows } = await client.query<{
        row_number: number;
        phone: string;
        state: RecipientState;
        batch_sequence: number;
        plan_id: string | null;
        sms_id: string | null;
        message_id: string | null;
        send_channel: string | null;
        failure_code: number | null;
        failure_message: string | null;
        delivered_at: Date | null;
        delivery_error_code: string | null;
        delivery_error_message: string | null;
      }>(`FETCH FORWARD ${Math.trunc(pageSize)} FROM report_rows`);
      if (rows.length > 0) {
        yield rows.map((r) => ({
          rowNumber: r.row_number,
          phone: r.phone,
          state: r.state,
          batchSequence: r.batch_sequence,
          planId: r.plan_id,
          smsId: r.sms_id,
          messageId: r.message_id,
          sendChannel: r.send_channel,
          failureCode: r.failure_code,
          failureMessage: r.failure_message,
          deliveredAt: r.delivered_at,
          deliveryErrorCode: r.delivery_error_code,
          deliveryErrorMessage: r.delivery_error_message,
        }));
      }
      if (rows.length < pageSize) return;
    }
  } catch (error) {
    failed = error as Error;
    throw error;
  } finally {
    // ROLLBACK closes the cursor; a connection that failed mid-read is discarded, not reused.
    if (failed === undefined) await client.query("ROLLBACK").catch((error: unknown) => (failed = error as Error));
    client.release(failed);
  }
}

/** The one recipient of a single-message campaign (send-one) and its campaign's status reason. */
export async function findSingleRecipientOutcome(db: Database, campaignId: string) {
  const [recipient, campaign, batchSent] = await Promise.all([
    db.prisma.recipient.findFirstOrThrow({ where: { campaignId } }),
    db.prisma.campaign.findUniqueOrThrow({ where: { id: campaignId } }),
    db.prisma.batch.count({ where: { campaignId, state: "sent" } }),
  ]);
  return {
    // a pending recipient of a sent batch was accepted with it (recipient-state.ts)
    state: recipient.state === "pending" && batchSent > 0 ? ("accepted" as const) : recipient.state,
    messageId: recipient.messageId,
    sendChannel: recipient.sendChannel,
    failureCode: recipient.failureCode,
    failureMessage: recipient.failureMessage,
    statusReason: campaign.statusReason,
  };
}

/** A campaign's template and fixed params, for a test send of its message. */
export async function findCampaignMessage(
  db: Database,
  campaignId: string,
): Promise<{ templateId: string; templateParams: Record<string, string> }> {
  assertCampaignId(campaignId);
  const campaign = await db.prisma.campaign.findUnique({
    where: { id: campaignId },
    select: { templateId: true, templateParams: true },
  });
  if (!campaign) throw new CampaignNotFoundError(campaignId);
  return { templateId: campaign.templateId, templateParams: (campaign.templateParams ?? {}) as Record<string, string> };
}

export interface FailureReasonRow {
  state: RecipientState;
  code: string | null;
  message: string | null;
  count: number;
}

/**
 * Recipients that did not get the message, grouped by why: the provider's refusal (failed), the delivery
 * report's error (undelivered), or no outcome (unknown, no_report). Most frequent first.
 */
export async function countFailureReasons(
  db: Database,
  campaignId: string,
  limit: number,
): Promise<FailureReasonRow[]> {
  assertCampaignId(campaignId);
  const kept = await db.pool.query<{ failure_reasons: FailureReasonRow[] | null }>(
    `SELECT failure_reasons FROM campaigns WHERE id = $1::uuid AND recipient_states IS NOT NULL`,
    [campaignId],
  );
  // Purged: the groups the purge kept (the most frequent ones, as many as a campaign page shows).
  if (kept.rows[0]) return (kept.rows[0].failure_reasons ?? []).slice(0, limit);
  const { rows } = await db.pool.query<FailureReasonRow>(FAILURE_REASONS_SQL, [campaignId, limit]);
  return rows;
}

/** Failure groups of campaign $1, the $2 most frequent; also what `smsblast purge` keeps of them. */
export const FAILURE_REASONS_SQL = `SELECT state::text AS state,
    CASE WHEN state = 'undelivered' THEN delivery_error_code ELSE failure_code::text END AS code,
    CASE WHEN state = 'undelivered' THEN delivery_error_message ELSE failure_message END AS message,
    count(*)::int AS count
  FROM recipients
  WHERE campaign_id = $1::uuid AND state IN ('failed', 'undelivered', 'unknown', 'no_report')
  GROUP BY 1, 2, 3 ORDER BY count DESC, 1, 2 LIMIT $2`;
