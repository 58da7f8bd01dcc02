import type { Config } from "../config/config.ts";
import type { Logger } from "../config/logger.ts";
import { purgeOldWebhookHistory, runWebhookRound } from "../access/webhook-dispatch.ts";
import { SIGNING_SECRET_VARIABLE } from "../access/webhooks.ts";
import type { Database } from "../store/database.ts";
import { WebhookClient } from "../webhooks/webhook-client.ts";

export interface RunningWebhookDispatcher {
  /** No new round; waits for the one in progress (its POSTs are bounded by WEBHOOK_TIMEOUT_MS). */
  stop(): Promise<void>;
}

const PURGE_INTERVAL_MS = 60 * 60 * 1000;

/**
 * The webhook dispatcher of an API process (docs/webhooks.md): every WEBHOOK_POLL_MS, fans new campaign
 * events out and POSTs the due deliveries. It runs in every `smsblast serve`; several processes share the
 * work through the claim (FOR UPDATE SKIP LOCKED), so none sends a delivery another holds. A failing round
 * (PostgreSQL restarting) is logged and the next one tries again.
 */
export function startWebhookDispatcher(
  config: Pick<Config, "webhooks">,
  db: Database,
  log: Logger,
): RunningWebhookDispatcher {
  const client = new WebhookClient({ timeoutMs: config.webhooks.timeoutMs });
  const dispatcherLog = log.child({ component: "webhooks" });
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  let warnedUnsigned = false;
  let lastPurge = 0;

  const round = async () => {
    try {
      const result = await runWebhookRound({ db, log: dispatcherLog, config, poster: client });
      if (result.unsigned && !warnedUnsigned) {
        warnedUnsigned = true;
        dispatcherLog.warn(`${SIGNING_SECRET_VARIABLE} is not set: no webhook is sent until it is (deliveries wait)`);
      }
      if (Date.now() - lastPurge >= PURGE_INTERVAL_MS) {
        lastPurge = Date.now();
        const purged = await purgeOldWebhookHistory(db);
        if (purged > 0) dispatcherLog.info({ purged }, "old webhook events deleted");
      }
    } catch (error) {
      if (!stopped) dispatcherLog.warn({ err: error }, "webhook round failed; trying again at the next one");
    }
  };
  const loop = async () => {
    while (!stopped) {
      await round();
      if (stopped) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, config.webhooks.pollMs).unref();
      });
    }
  };
  const running = loop();

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      wake?.();
      await running;
      await client.close();
    },
  };
}
