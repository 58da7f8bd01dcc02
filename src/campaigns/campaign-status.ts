import { countCampaignStates } from "../store/campaign-report-repository.ts";
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
  recipients: { total: number; pending: number; accepted: number; failed: number; unknown: number; cancelled: number };
  batches: { total: number } & Record<string, number>;
}

/** Counts straight from the recipient and batch rows (the truth), not from the campaign's running counters. */
export async function getCampaignStatus(db: Database, campaignId: string): Promise<CampaignStatusReport> {
  const { campaign, recipients: recipientGroups, batches: batchGroups } = await countCampaignStates(db, campaignId);
  const recipients = { total: 0, pending: 0, accepted: 0, failed: 0, unknown: 0, cancelled: 0 };
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
    batches,
  };
}
