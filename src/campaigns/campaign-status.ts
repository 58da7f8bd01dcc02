import { AWAITING_REPORT_STATES } from "../model/delivery-status.ts";
import { RECIPIENT_STATES, type RecipientState } from "../model/states.ts";
import { countCampaignStates, countFailureReasons } from "../store/campaign-report-repository.ts";
import type { Database } from "../store/database.ts";

export interface CampaignStatusReport {
  id: string;
  name: string;
  status: string;
  statusReason: string | null;
  provider: string;
  templateId: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  rows: { total: number; rejected: number; duplicates: number };
  recipients: { total: number } & Record<RecipientState, number>;
  /**
   * From delivery reports: `awaitingReport` = accepted or sent without a final report yet; `rate` =
   * delivered / (delivered + undelivered + no_report), null before any recipient has an outcome.
   */
  delivery: { delivered: number; undelivered: number; noReport: number; awaitingReport: number; rate: number | null };
  batches: { total: number } & Record<string, number>;
  /**
   * When `smsblast purge` deleted the recipient detail (recipients, rejects); the counts above are the ones it
   * kept. Null: the detail is there (or a purge is under way, and the counts are already the kept ones).
   */
  purgedAt: string | null;
  /** `send --stream`: the launch is still reading its list, so the totals grow and more batches will come. */
  readingList: boolean;
}

/** Counts straight from the recipient and batch rows (the truth), not from the campaign's running counters. */
export async function getCampaignStatus(db: Database, campaignId: string): Promise<CampaignStatusReport> {
  const { campaign, recipients: recipientGroups, batches: batchGroups } = await countCampaignStates(db, campaignId);
  const recipients = {
    total: 0,
    ...(Object.fromEntries(RECIPIENT_STATES.map((state) => [state, 0])) as Record<RecipientState, number>),
  };
  for (const group of recipientGroups) {
    recipients[group.state] = group.count;
    recipients.total += group.count;
  }
  const batches: { total: number } & Record<string, number> = { total: 0 };
  for (const group of batchGroups) {
    batches[group.state] = group.count;
    batches.total += group.count;
  }
  return {
    id: campaign.id,
    name: campaign.name,
    status: campaign.status,
    statusReason: campaign.statusReason,
    provider: campaign.provider,
    templateId: campaign.templateId,
    createdAt: campaign.createdAt.toISOString(),
    startedAt: campaign.startedAt?.toISOString() ?? null,
    finishedAt: campaign.finishedAt?.toISOString() ?? null,
    rows: { total: campaign.totalRows, rejected: campaign.rejectedCount, duplicates: campaign.duplicateCount },
    recipients,
    delivery: deliverySummary(recipients),
    batches,
    purgedAt: campaign.purgedAt?.toISOString() ?? null,
    readingList: campaign.readingHeartbeatAt !== null,
  };
}

function deliverySummary(recipients: Record<RecipientState, number>): CampaignStatusReport["delivery"] {
  const settled = recipients.delivered + recipients.undelivered + recipients.no_report;
  return {
    delivered: recipients.delivered,
    undelivered: recipients.undelivered,
    noReport: recipients.no_report,
    awaitingReport: AWAITING_REPORT_STATES.reduce((sum, state) => sum + recipients[state], 0),
    rate: settled === 0 ? null : Math.round((recipients.delivered / settled) * 10_000) / 10_000,
  };
}

export interface FailureReason {
  state: "failed" | "undelivered" | "unknown" | "no_report";
  code: string | null;
  message: string | null;
  count: number;
}

/** Failure groups shown on a campaign page: the most frequent reasons, each with its count. */
const FAILURE_REASONS_SHOWN = 20;

export async function getFailureReasons(db: Database, campaignId: string): Promise<FailureReason[]> {
  return (await countFailureReasons(db, campaignId, FAILURE_REASONS_SHOWN)) as FailureReason[];
}
