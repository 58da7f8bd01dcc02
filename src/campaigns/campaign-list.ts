import { listCampaignRows } from "../store/campaign-report-repository.ts";
import type { Database } from "../store/database.ts";
import type { CampaignStatus } from "../model/states.ts";

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
  startedAt: Date | null;
  finishedAt: Date | null;
}

/** Recent campaigns, newest first, with their outcome counts. */
export async function listCampaigns(
  db: Database,
  options: { limit: number; offset?: number; status?: CampaignStatus },
): Promise<CampaignSummary[]> {
  const rows = await listCampaignRows(db, options);
  return rows.map((c) => ({
    id: c.id,
    name: c.name,
    status: c.status,
    provider: c.provider,
    recipients: c.recipientCount,
    accepted: c.acceptedCount,
    failed: c.failedCount,
    unknown: c.unknownCount,
    createdAt: c.createdAt,
    scheduledAt: c.scheduledAt,
    startedAt: c.startedAt,
    finishedAt: c.finishedAt,
  }));
}
