import type { Logger } from "../config/logger.ts";
import type { CampaignQueue } from "../queue/send-queue.ts";
import { startScheduledCampaignRecord } from "../store/campaign-repository.ts";
import type { Database } from "../store/database.ts";

export type StartOutcome =
  { kind: "started"; batches: number } | { kind: "too-early"; notBefore: Date } | { kind: "not-scheduled" };

/**
 * The start job of a delayed campaign: scheduled → running, then its batches are queued. A paused or
 * cancelled campaign is left alone (resume schedules the start again).
 */
export async function startScheduledCampaign(
  deps: { db: Database; log: Logger; queue: CampaignQueue },
  campaignId: string,
): Promise<StartOutcome> {
  const result = await startScheduledCampaignRecord(deps.db, campaignId);
  if (result === null) return { kind: "not-scheduled" };
  if ("notBefore" in result) return { kind: "too-early", notBefore: result.notBefore };
  await deps.queue.enqueue(campaignId, result.batchIds);
  deps.log.info({ campaignId, batches: result.batchIds.length }, "scheduled campaign started");
  return { kind: "started", batches: result.batchIds.length };
}
