import { CLAIMABLE_BATCH_STATES, OPEN_BATCH_STATES, UNCLAIMED_OPEN_BATCH_STATES } from "../model/states.ts";
import { completeCampaignIfDone } from "./batch-repository.ts";
import type { Database } from "./database.ts";

/**
 * Running campaigns with no open batch and no list being read are completed: the check that should have
 * done it after their last batch (or after a `send --stream` launch's last step) failed, or its process died
 * in between. Returns how many it completed.
 */
export async function completeSettledCampaigns(db: Database, campaignId?: string): Promise<number> {
  const { rows } = await db.pool.query<{ id: string }>(
    `SELECT c.id FROM campaigns c
     WHERE c.status = 'running' AND c.reading_heartbeat_at IS NULL AND ($1::uuid IS NULL OR c.id = $1::uuid)
       AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.campaign_id = c.id AND b.state = ANY($2::"BatchState"[]))`,
    [campaignId ?? null, OPEN_BATCH_STATES],
  );
  let completed = 0;
  for (const row of rows) if ((await completeCampaignIfDone(db.pool, row.id)).finished) completed++;
  return completed;
}

export interface OpenWork {
  /**
   * Batches that need a job: open ones of running campaigns, stale `sending` ones (running or cancelled
   * campaigns), and leftovers of cancelled campaigns, whose job settles them.
   */
  batches: Array<{ campaignId: string; batchId: string; state: string }>;
  /** Scheduled campaigns that need their start job. */
  scheduled: Array<{ campaignId: string; scheduledAt: Date }>;
}

/**
 * Everything Postgres says is unfinished, which Redis should therefore hold a job for. A batch in `sending`
 * but recently claimed has a live worker on it and is left alone.
 */
export async function findOpenWork(
  db: Database,
  options: { campaignId?: string; staleAfterMs: number },
): Promise<OpenWork> {
  const { rows: batches } = await db.pool.query<{ campaign_id: string; id: string; state: string }>(
    `SELECT b.campaign_id, b.id, b.state FROM batches b JOIN campaigns c ON c.id = b.campaign_id
     WHERE ($1::uuid IS NULL OR c.id = $1::uuid)
       AND (
         (c.status = 'running' AND b.state = ANY($3::"BatchState"[]))
         -- stale in-flight batches, also of cancelled campaigns: their job settles them
         OR (c.status IN ('running', 'cancelled') AND b.state = 'sending'
             AND b.claimed_at < now() - make_interval(secs => $2::double precision / 1000))
         OR (c.status = 'cancelled' AND b.state = ANY($4::"BatchState"[]))
       )
     ORDER BY b.campaign_id, b.sequence`,
    [options.campaignId ?? null, options.staleAfterMs, CLAIMABLE_BATCH_STATES, UNCLAIMED_OPEN_BATCH_STATES],
  );
  const { rows: scheduled } = await db.pool.query<{ id: string; scheduled_at: Date }>(
    `SELECT id, scheduled_at FROM campaigns WHERE status = 'scheduled' AND scheduled_at IS NOT NULL AND ($1::uuid IS NULL OR id = $1::uuid)`,
    [options.campaignId ?? null],
  );
  return {
    batches: batches.map((b) => ({ campaignId: b.campaign_id, batchId: b.id, state: b.state })),
    scheduled: scheduled.map((s) => ({ campaignId: s.id, scheduledAt: s.scheduled_at })),
  };
}
