// The shared life of a long-running smsblast process: typed config, logger, SIGTERM/SIGINT → graceful stop.
import { loadConfig, type Config } from "../src/config/config.ts";
import { createLogger, type Logger } from "../src/config/logger.ts";

export async function runUntilSignalled(
  start: (config: Config, log: Logger) => Promise<{ stop(): Promise<void> }>,
): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  // The handlers go on before the start: a signal while it starts (after its "started" line, before it
  // returns) is kept and acted on once it has, instead of killing the process with nothing stopped.
  const state: { running?: { stop(): Promise<void> }; signalled?: string } = {};
  const onSignal = (signal: string) => {
    if (state.running) shutdown(state.running, signal);
    else {
      // The handlers are `once`: a second signal has its default effect and ends the process at once.
      state.signalled ??= signal;
      log.info({ signal }, "stopping once started; send it again to exit now");
    }
  };
  process.once("SIGTERM", () => onSignal("SIGTERM"));
  process.once("SIGINT", () => onSignal("SIGINT"));
  state.running = await start(config, log);
  if (state.signalled) shutdown(state.running, state.signalled);

  function shutdown(runningProcess: { stop(): Promise<void> }, signal: string) {
    log.info({ signal }, "shutting down");
    runningProcess.stop().then(
      () => process.exit(0),
      (error) => {
        log.error({ err: error }, "error during shutdown");
        process.exit(1);
      },
    );
  }
}

/** For entry files: run `main` when the file is executed directly, and exit with its error otherwise. */
export function runIfMain(moduleUrl: string, main: () => Promise<void>): void {
  if (moduleUrl !== `file://${process.argv[1]}`) return;
  main().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
