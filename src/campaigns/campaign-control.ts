import { pauseCampaignRecord, resumeCampaignRecord } from "../store/campaign-repository.ts";
import type { Database } from "../store/database.ts";

/** Stops a campaign between batches: batches already in flight finish, no new batch is claimed. */
export async function pauseCampaign(db: Database, campaignId: string, reason = "paused by operator"): Promise<void> {
  await pauseCampaignRecord(db, campaignId, reason);
}

/** Lets a paused campaign continue and gives every open batch its job back. */
export async function resumeCampaign(
  db: Database,
  enqueue: (campaignId: string, batchIds: readonly string[]) => Promise<void>,
  campaignId: string,
): Promise<number> {
  const batchIds = await resumeCampaignRecord(db, campaignId);
  await enqueue(campaignId, batchIds);
  return batchIds.length;
}
