import type { Command } from "commander";
import { loadConfig } from "../../config/config.ts";
import { runMigrations } from "../../runtime/services.ts";
import { startSandbox, sandboxOptionsFromEnv, type SandboxOptions } from "../../sandbox/server.ts";
import { numberBetween } from "../shared.ts";

export function registerServiceCommands(program: Command): void {
  program
    .command("migrate")
    .description("create the database if it is missing and apply pending migrations")
    .action(async () => {
      const config = loadConfig();
      const report = await runMigrations(config);
      const created = report.createdDatabase ? "created the database; " : "";
      const names = report.applied.length ? `: ${report.applied.join(", ")}` : "";
      console.log(`${created}applied ${report.applied.length} migration(s)${names}; ${report.alreadyApplied} already applied`);
    });

  program
    .command("sandbox")
    .description("run the local EngageLab look-alike provider (records every number it 'sends')")
    .option("--port <port>", "port to listen on (default 4010)", numberBetween("--port", 0, 65535))
    .option("--latency-ms <ms>", "delay before every API response", numberBetween("--latency-ms", 0, 600_000))
    .option("--error-rate <fraction>", "fraction of send requests answered HTTP 500 / code 1000", numberBetween("--error-rate", 0, 1))
    .option("--invalid-rate <fraction>", "fraction of numbers refused as invalid", numberBetween("--invalid-rate", 0, 1))
    .option("--throttle-rate <fraction>", "fraction of send requests answered HTTP 429 with Retry-After", numberBetween("--throttle-rate", 0, 1))
    .option("--hang-rate <fraction>", "fraction of send requests never answered", numberBetween("--hang-rate", 0, 1))
    .action(async (opts: Partial<SandboxOptions>) => {
      const flags = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
      const server = await startSandbox({ ...sandboxOptionsFromEnv(process.env), ...flags });
      console.log(`sandbox provider listening on ${server.url} (ledger: ${server.url}/_sandbox/sent, stats: ${server.url}/_sandbox/stats)`);
      const stop = () => void server.close().then(() => process.exit(0));
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });

  program
    .command("worker")
    .description("run a send worker until SIGTERM/SIGINT")
    .action(async () => {
      const { runSendWorkerProcess } = await import("../../../workers/send-worker.ts");
      await runSendWorkerProcess();
    });
}
