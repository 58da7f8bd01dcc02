import { recordAudit } from "../access/audit-log.ts";
import { purgeFinishedCampaigns } from "../campaigns/retention.ts";
import type { Config } from "../config/config.ts";
import type { Logger } from "../config/logger.ts";
import { formatDuration } from "../model/duration.ts";
import type { Database } from "../store/database.ts";

export interface RunningScheduledPurge {
  /** Stops between two chunks of a purge in progress, and waits for it. */
  stop(): Promise<void>;
}

/**
 * The scheduled equivalent of `smsblast purge --older-than PURGE_OLDER_THAN`, in the scheduler process: at
 * start-up and then every PURGE_INTERVAL_MS. Several schedulers may run: one purge at a time holds the
 * advisory lock, the others skip that round. Logs counts only (never a number); audited as system:purge.
 */
export function startScheduledPurge(db: Database, config: Config, log: Logger): RunningScheduledPurge | undefined {
  const olderThanMs = config.retention.purgeOlderThanMs;
  if (olderThanMs === undefined) return undefined;
  const stopping = new AbortController();
  let current: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const runOnce = async () => {
    try {
      const report = await purgeFinishedCampaigns(db, {
        olderThanMs,
        chunkRows: config.retention.purgeChunkRows,
        signal: stopping.signal,
      });
      if (report === null) {
        log.info("scheduled purge skipped: another purge holds the lock");
        return;
      }
      const counts = {
        olderThan: report.olderThan,
        campaigns: report.campaigns,
        recipients: report.recipients,
        rejects: report.rejects,
        deliveryEvents: report.deliveryEvents,
        uploadRows: report.uploadRows,
        stopped: report.stopped,
      };
      if (report.campaigns > 0 || report.recipients > 0) {
        await recordAudit(db, { kind: "system", name: "purge" }, "retention.purge", { details: counts });
        log.info({ ...counts, ms: report.ms }, "scheduled purge done");
      } else log.debug({ ...counts, ms: report.ms }, "scheduled purge: nothing to purge");
    } catch (error) {
      log.error({ err: error }, "scheduled purge failed; the next round tries again");
    }
  };
  const schedule = (delayMs: number) => {
    timer = setTimeout(() => {
      current = runOnce().finally(() => {
        current = undefined;
        if (!stopping.signal.aborted) schedule(config.retention.purgeIntervalMs);
      });
    }, delayMs);
    timer.unref();
  };
  schedule(0);
  log.info(
    { olderThan: formatDuration(olderThanMs), everyMs: config.retention.purgeIntervalMs },
    "scheduled purge enabled (PURGE_OLDER_THAN)",
  );
  return {
    async stop() {
      stopping.abort();
      clearTimeout(timer);
      await current;
    },
  };
}
