// Entry point of the scheduler process (`smsblast scheduler`): turns cron firings into campaign runs.
import { loadConfig } from "../src/config/config.ts";
import { createLogger } from "../src/config/logger.ts";
import { startScheduler } from "../src/campaigns/scheduler-runtime.ts";

export async function runSchedulerProcess(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const running = await startScheduler(config, log);
  const shutdown = (signal: string) => {
    log.info({ signal }, "shutting down");
    running.stop().then(
      () => process.exit(0),
      (error) => {
        log.error({ err: error }, "error during shutdown");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runSchedulerProcess().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
