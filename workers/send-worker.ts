// Entry point of a send worker process (`smsblast worker`, or `docker compose up --scale worker=N`).
import { loadConfig } from "../src/config/config.ts";
import { createLogger } from "../src/config/logger.ts";
import { startSendWorker } from "../src/campaigns/worker-runtime.ts";

export async function runSendWorkerProcess(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const running = await startSendWorker(config, log);
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
  runSendWorkerProcess().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
