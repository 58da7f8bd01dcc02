import type { CampaignQueue } from "../queue/send-queue.ts";
import {
  cancelCampaignRecord,
  pauseCampaignRecord,
  resumeCampaignRecord,
  type CancelResult,
  type ResumeResult,
} from "../store/campaign-repository.ts";
import type { Database } from "../store/database.ts";
import { completeCampaignIfDone } from "../store/batch-repository.ts";

/** Stops a campaign between batches: batches already in flight finish, no new batch is claimed. */
export async function pauseCampaign(db: Database, campaignId: string, reason = "paused by operator"): Promise<void> {
  await pauseCampaignRecord(db, campaignId, reason);
}

/**
 * Lets a paused campaign continue: its open batches get their jobs back, or, when it was paused before its
 * start time, its start job is scheduled again.
 */
export async function resumeCampaign(
  db: Database,
  queue: Pick<CampaignQueue, "enqueue"> & Partial<Pick<CampaignQueue, "scheduleStart">>,
  campaignId: string,
): Promise<ResumeResult> {
  const result = await resumeCampaignRecord(db, campaignId);
  if (!result) throw new Error("unreachable: a resume without conditions changed nothing");
  await requeueResumed(db, queue, campaignId, result);
  return result;
}

/**
 * The outage prober's resume: only while the campaign is still paused by an outage and has resumed by itself
 * fewer than `maxAutoResumes` times (a person's pause or cancel in between wins). Null when it did nothing.
 */
export async function autoResumeCampaign(
  db: Database,
  queue: Pick<CampaignQueue, "enqueue"> & Partial<Pick<CampaignQueue, "scheduleStart">>,
  campaignId: string,
  maxAutoResumes: number,
): Promise<ResumeResult | null> {
  const result = await resumeCampaignRecord(db, campaignId, { auto: { max: maxAutoResumes } });
  if (result) await requeueResumed(db, queue, campaignId, result);
  return result;
}

async function requeueResumed(
  db: Database,
  queue: Pick<CampaignQueue, "enqueue"> & Partial<Pick<CampaignQueue, "scheduleStart">>,
  campaignId: string,
  result: ResumeResult,
): Promise<void> {
  if (result.status === "running") {
    await queue.enqueue(campaignId, result.batchIds);
    // Paused just as its last batch finished: nothing will run again to complete it.
    if (result.batchIds.length === 0) await completeCampaignIfDone(db.pool, campaignId);
  } else if (result.scheduledAt && queue.scheduleStart) await queue.scheduleStart(campaignId, result.scheduledAt);
}

/**
 * Cancels a campaign: nothing not yet claimed is ever sent and those recipients end `cancelled`. Jobs left
 * in Redis find the batch cancelled and end without sending, so they need no cleanup.
 */
export async function cancelCampaign(
  db: Database,
  campaignId: string,
  reason = "cancelled by operator",
): Promise<CancelResult> {
  const result = await cancelCampaignRecord(db, campaignId, reason);
  await completeCampaignIfDone(db.pool, campaignId); // final counters, unless a batch is still in flight
  return result;
}
