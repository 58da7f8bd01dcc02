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
      console.log(
        `${created}applied ${report.applied.length} migration(s)${names}; ${report.alreadyApplied} already applied` +
          (report.deploymentId ? `; deployment ${report.deploymentId}` : ""),
      );
    });

  program
    .command("sandbox")
    .description("run the local EngageLab look-alike provider (records every number it 'sends')")
    .option("--port <port>", "port to listen on (default 4010)", numberBetween("--port", 0, 65535))
    .option("--latency-ms <ms>", "delay before every API response", numberBetween("--latency-ms", 0, 600_000))
    .option(
      "--error-rate <fraction>",
      "fraction of send requests answered HTTP 500 / code 1000",
      numberBetween("--error-rate", 0, 1),
    )
    .option(
      "--invalid-rate <fraction>",
      "fraction of numbers refused as invalid",
      numberBetween("--invalid-rate", 0, 1),
    )
    .option(
      "--throttle-rate <fraction>",
      "fraction of send requests answered HTTP 429 with Retry-After",
      numberBetween("--throttle-rate", 0, 1),
    )
    .option("--hang-rate <fraction>", "fraction of send requests never answered", numberBetween("--hang-rate", 0, 1))
    .option(
      "--callback-url <url>",
      "send signed delivery callbacks for every accepted number to this URL (e.g. http://127.0.0.1:3000/callbacks/engagelab)",
    )
    .option("--callback-username <name>", "callback username (CALLBACK_USERNAME of the receiver)")
    .option("--callback-secret <secret>", "callback secret (CALLBACK_SECRET of the receiver)")
    .option(
      "--callback-delay-ms <ms>",
      "minimum delay of a report after its send",
      numberBetween("--callback-delay-ms", 0, 3_600_000),
    )
    .option(
      "--callback-jitter-ms <ms>",
      "random extra delay, uniform up to this",
      numberBetween("--callback-jitter-ms", 0, 3_600_000),
    )
    .option(
      "--delivered-rate <fraction>",
      "fraction of accepted numbers reported delivered (default 0.9)",
      numberBetween("--delivered-rate", 0, 1),
    )
    .option(
      "--never-reported-rate <fraction>",
      "fraction never reported (default 0.02); the rest are undelivered",
      numberBetween("--never-reported-rate", 0, 1),
    )
    .option(
      "--duplicate-rate <fraction>",
      "fraction of final reports sent twice",
      numberBetween("--duplicate-rate", 0, 1),
    )
    .option(
      "--out-of-order-rate <fraction>",
      "fraction whose final report comes before `sent`",
      numberBetween("--out-of-order-rate", 0, 1),
    )
    .action(async (opts: Partial<SandboxOptions> & Record<string, string | number | undefined>) => {
      const {
        callbackUrl,
        callbackUsername,
        callbackSecret,
        callbackDelayMs,
        callbackJitterMs,
        deliveredRate,
        neverReportedRate,
        duplicateRate,
        outOfOrderRate,
        ...rest
      } = opts;
      const flags = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
      const callbackFlags = Object.fromEntries(
        Object.entries({
          username: callbackUsername,
          secret: callbackSecret,
          delayMs: callbackDelayMs,
          jitterMs: callbackJitterMs,
          deliveredRate,
          neverReportedRate,
          duplicateRate,
          outOfOrderRate,
        }).filter(([, v]) => v !== undefined),
      );
      const callbacks = typeof callbackUrl === "string" ? { url: callbackUrl, ...callbackFlags } : undefined;
      const server = await startSandbox({
        ...sandboxOptionsFromEnv(process.env),
        ...flags,
        ...(callbacks ? { callbacks } : {}),
      });
      console.log(
        `sandbox provider listening on ${server.url} (ledger: ${server.url}/_sandbox/sent, stats: ${server.url}/_sandbox/stats)`,
      );
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

  program
    .command("delivery-worker")
    .description(
      "run a delivery-reports worker (applies stored callbacks, marks no-report, purges) until SIGTERM/SIGINT",
    )
    .action(async () => {
      const { runDeliveryWorkerProcess } = await import("../../../workers/delivery-worker.ts");
      await runDeliveryWorkerProcess();
    });
}
