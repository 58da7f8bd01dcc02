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

export class CampaignNotFoundError extends Error {
  override name = "CampaignNotFoundError";
  constructor(readonly campaignId: string) {
    super(`No campaign with id ${campaignId}`);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Counts straight from the recipient and batch rows (the truth), not from the campaign's running counters. */
export async function getCampaignStatus(db: Database, campaignId: string): Promise<CampaignStatusReport> {
  if (!UUID.test(campaignId)) throw new CampaignNotFoundError(campaignId);
  const campaign = await db.prisma.campaign.findUnique({ where: { id: campaignId } });
  if (!campaign) throw new CampaignNotFoundError(campaignId);
  const [recipientGroups, batchGroups] = await Promise.all([
    db.prisma.recipient.groupBy({ by: ["state"], where: { campaignId }, _count: { _all: true } }),
    db.prisma.batch.groupBy({ by: ["state"], where: { campaignId }, _count: { _all: true } }),
  ]);
  const recipients = { total: 0, pending: 0, accepted: 0, failed: 0, unknown: 0, cancelled: 0 };
  for (const group of recipientGroups) {
    recipients[group.state] = group._count._all;
    recipients.total += group._count._all;
  }
  const batches: { total: number } & Record<string, number> = { total: 0 };
  for (const group of batchGroups) {
    batches[group.state] = group._count._all;
    batches.total += group._count._all;
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
