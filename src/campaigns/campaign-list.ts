import type { Database } from "../store/database.ts";
import type { CampaignStatus } from "../store/generated/enums.ts";

export interface CampaignSummary {
  id: string;
  name: string;
  status: string;
  provider: string;
  recipients: number;
  accepted: number;
  failed: number;
  unknown: number;
  createdAt: Date;
  scheduledAt: Date | null;
  finishedAt: Date | null;
}

/** Recent campaigns, newest first, with their outcome counts. */
export async function listCampaigns(db: Database, options: { limit: number; status?: CampaignStatus }): Promise<CampaignSummary[]> {
  const rows = await db.prisma.campaign.findMany({
    where: options.status ? { status: options.status } : {},
    orderBy: { createdAt: "desc" },
    take: options.limit,
  });
  // Counters are settled when a campaign finishes; for the others, count their recipients now.
  const live = rows.filter((c) => c.finishedAt === null).map((c) => c.id);
  const liveCounts = new Map<string, { accepted: number; failed: number; unknown: number }>();
  if (live.length > 0) {
    const { rows: counts } = await db.pool.query<{ campaign_id: string; accepted: string; failed: string; unknown: string }>(
      `SELECT campaign_id, count(*) FILTER (WHERE state = 'accepted') AS accepted, count(*) FILTER (WHERE state = 'failed') AS failed,
              count(*) FILTER (WHERE state = 'unknown') AS unknown
       FROM recipients WHERE campaign_id = ANY($1::uuid[]) GROUP BY campaign_id`,
      [live],
    );
    for (const c of counts) liveCounts.set(c.campaign_id, { accepted: Number(c.accepted), failed: Number(c.failed), unknown: Number(c.unknown) });
  }
  return rows.map((c) => ({
    id: c.id,
    name: c.name,
    status: c.status,
    provider: c.provider,
    recipients: c.recipientCount,
    accepted: liveCounts.get(c.id)?.accepted ?? c.acceptedCount,
    failed: liveCounts.get(c.id)?.failed ?? c.failedCount,
    unknown: liveCounts.get(c.id)?.unknown ?? c.unknownCount,
    createdAt: c.createdAt,
    scheduledAt: c.scheduledAt,
    finishedAt: c.finishedAt,
  }));
}
