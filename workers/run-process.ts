// The shared life of a long-running smsblast process: typed config, logger, SIGTERM/SIGINT → graceful stop.
import { loadConfig, type Config } from "../src/config/config.ts";
import { createLogger, type Logger } from "../src/config/logger.ts";

export async function runUntilSignalled(
  start: (config: Config, log: Logger) => Promise<{ stop(): Promise<void> }>,
): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const running = await start(config, log);
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

/** For entry files: run `main` when the file is executed directly, and exit with its error otherwise. */
export function runIfMain(moduleUrl: string, main: () => Promise<void>): void {
  if (moduleUrl !== `file://${process.argv[1]}`) return;
  main().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
