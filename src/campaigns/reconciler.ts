import type { Logger } from "../config/logger.ts";
import { staleClaimAfterMs } from "../model/states.ts";
import type { CampaignQueue } from "../queue/send-queue.ts";
import type { Database } from "../store/database.ts";
import { assertCampaignExists } from "../store/campaign-report-repository.ts";
import { completeSettledCampaigns, findOpenWork } from "../store/reconcile-repository.ts";
import { cancelStaleReadings, STALE_READING_AFTER_MS } from "../store/streamed-launch.ts";

export interface ReconcileReport {
  batchesRequeued: number;
  staleBatches: number;
  startsScheduled: number;
  campaigns: number;
  /** `send --stream` launches whose producer stopped part-way through the list: cancelled. */
  staleReadingsCancelled: number;
  /** Running campaigns found with nothing left open, completed (their own completion check was lost). */
  campaignsCompleted: number;
}

/**
 * Postgres is the truth and Redis only transport: give every unfinished batch its job back (jobId = batch
 * id, so a job that still exists is left as it is), and every scheduled campaign its start job. A batch
 * stuck in `sending` past the provider timeout gets a job too; that job settles it by the unknown-outcome
 * rule. After Redis loses everything, this alone brings every running campaign to completion.
 */
export async function reconcile(
  deps: {
    db: Database;
    queue: CampaignQueue;
    log: Logger;
    providerTimeoutMs: number;
    /** How long a `send --stream` launch may go without a step before it is taken for dead (default 5 min). */
    staleReadingAfterMs?: number;
  },
  campaignId?: string,
): Promise<ReconcileReport> {
  // A malformed or unknown id is "no such campaign", as `status` says it, not a database error.
  if (campaignId !== undefined) await assertCampaignExists(deps.db, campaignId);
  // First: a cancelled campaign's queued batches are then settled by the jobs given back below.
  const stale = await cancelStaleReadings(deps.db, deps.staleReadingAfterMs ?? STALE_READING_AFTER_MS, campaignId);
  for (const id of stale)
    deps.log.warn({ campaignId: id }, "cancelled a campaign whose launch stopped part-way through reading its list");
  const work = await findOpenWork(deps.db, { campaignId, staleAfterMs: staleClaimAfterMs(deps.providerTimeoutMs) });
  const byCampaign = new Map<string, string[]>();
  for (const b of work.batches) {
    const ids = byCampaign.get(b.campaignId) ?? [];
    ids.push(b.batchId);
    byCampaign.set(b.campaignId, ids);
  }
  for (const [id, batchIds] of byCampaign) await deps.queue.enqueue(id, batchIds);
  for (const s of work.scheduled) await deps.queue.scheduleStart(s.campaignId, s.scheduledAt);
  const report = {
    batchesRequeued: work.batches.length,
    staleBatches: work.batches.filter((b) => b.state === "sending").length,
    startsScheduled: work.scheduled.length,
    campaigns: byCampaign.size,
    staleReadingsCancelled: stale.length,
    campaignsCompleted: await completeSettledCampaigns(deps.db, campaignId),
  };
  if (report.batchesRequeued || report.startsScheduled || report.campaignsCompleted)
    deps.log.info(report, "reconciled open work with the queue");
  return report;
}
