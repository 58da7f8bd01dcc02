#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from "commander";
import { loadConfig, ConfigError, type Config } from "../config/config.ts";
import { createLogger, type Logger } from "../config/logger.ts";
import { getCampaignStatus, CampaignNotFoundError } from "../campaigns/campaign-status.ts";
import { launchCsvCampaign } from "../campaigns/launch-campaign.ts";
import { startSendWorker } from "../campaigns/worker-runtime.ts";
import { CsvInputError } from "../recipients/csv-source.ts";
import { createRedisConnection } from "../queue/redis.ts";
import { createSendQueue, enqueueBatches } from "../queue/send-queue.ts";
import { openDatabase, type Database } from "../store/database.ts";
import { assertMigrationsApplied, migrateDatabase, MigrationError } from "../store/migrate.ts";
import { startSandbox, sandboxOptionsFromEnv } from "../sandbox/server.ts";
import { pauseCampaign, resumeCampaign } from "../campaigns/campaign-control.ts";
import { sendOneMessage, RecipientInputError } from "../campaigns/send-one.ts";
import { ProviderRequestError } from "../engagelab/errors.ts";
import { createProviders } from "../engagelab/providers.ts";
import { CampaignStateError } from "../store/campaign-repository.ts";
import { formatStatus } from "./format.ts";
import { waitForCampaign } from "./progress.ts";

/** Errors a user can fix; printed as one clear line, without a stack trace. */
const USER_ERRORS = [
  ConfigError,
  CsvInputError,
  CampaignNotFoundError,
  CampaignStateError,
  MigrationError,
  InvalidArgumentError,
  ProviderRequestError,
  RecipientInputError,
];

function collectParam(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got "${value}"`);
  return { ...previous, [value.slice(0, eq).trim()]: value.slice(eq + 1) };
}

function isoTime(value: string): Date {
  const at = new Date(value);
  if (Number.isNaN(at.getTime()) || !/^\d{4}-\d{2}-\d{2}T/.test(value)) {
    throw new InvalidArgumentError(`expected an ISO time such as 2026-12-01T09:00:00+08:00, got "${value}"`);
  }
  return at;
}

function nonNegativeInt(name: string) {
  return (value: string) => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number, got "${value}"`);
    return Number(value);
  };
}

/** Provider-specific options of `send`, as stored in Campaign.sendOptions. */
function sendOptionsFrom(opts: Record<string, unknown>): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  if (opts.from !== undefined) options.from = opts.from;
  if (opts.msgType !== undefined) options.msgType = opts.msgType;
  if (opts.labelId !== undefined) options.labelId = opts.labelId;
  if (opts.customArg && Object.keys(opts.customArg as object).length > 0) options.customArgs = opts.customArg;
  if (opts.at !== undefined) {
    if (!opts.providerSchedule) {
      throw new InvalidArgumentError("--at needs --provider-schedule (EngageLab schedule_time, 3 minutes to 30 days ahead)");
    }
    options.scheduleTime = Math.floor((opts.at as Date).getTime() / 1000);
  }
  return options;
}

async function withQueue<T>(config: Config, fn: (enqueue: (campaignId: string, batchIds: readonly string[]) => Promise<void>) => Promise<T>): Promise<T> {
  const connection = createRedisConnection(config.redisUrl, "producer");
  const queue = createSendQueue(connection, { prefix: config.queuePrefix, attempts: config.send.attempts, backoffMs: config.send.backoffMs });
  try {
    return await fn((campaignId, batchIds) => enqueueBatches(queue, campaignId, batchIds));
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

function nonNegativeNumber(name: string, max = Infinity) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0 || n > max) throw new InvalidArgumentError(`${name} must be a number between 0 and ${max}`);
    return n;
  };
}

async function withServices<T>(fn: (ctx: { config: Config; log: Logger; db: Database }) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const db = openDatabase(config.databaseUrl, { applicationName: "smsblast-cli" });
  try {
    await assertMigrationsApplied(db.pool);
    return await fn({ config, log, db });
  } finally {
    await db.close();
    log.flush();
  }
}

export function buildCli(): Command {
  const program = new Command("smsblast")
    .description("Queue-backed bulk SMS campaigns for the EngageLab SMS API")
    .showHelpAfterError();

  program
    .command("migrate")
    .description("create the database if it is missing and apply pending migrations")
    .action(async () => {
      const config = loadConfig();
      const report = await migrateDatabase(config.databaseUrl);
      const created = report.createdDatabase ? "created the database; " : "";
      console.log(
        `${created}applied ${report.applied.length} migration(s)${report.applied.length ? `: ${report.applied.join(", ")}` : ""}; ${report.alreadyApplied} already applied`,
      );
    });

  program
    .command("sandbox")
    .description("run the local EngageLab look-alike provider (records every number it 'sends')")
    .option("--port <port>", "port to listen on", (v) => nonNegativeNumber("--port", 65535)(v))
    .option("--latency-ms <ms>", "delay before every API response", nonNegativeNumber("--latency-ms"))
    .option("--error-rate <fraction>", "fraction of send requests answered HTTP 500 / code 1000", nonNegativeNumber("--error-rate", 1))
    .option("--invalid-rate <fraction>", "fraction of numbers refused", nonNegativeNumber("--invalid-rate", 1))
    .option("--throttle-rate <fraction>", "fraction of send requests answered HTTP 429", nonNegativeNumber("--throttle-rate", 1))
    .option("--hang-rate <fraction>", "fraction of send requests never answered", nonNegativeNumber("--hang-rate", 1))
    .action(async (opts) => {
      const fromEnv = sandboxOptionsFromEnv(process.env);
      const server = await startSandbox({
        ...fromEnv,
        ...(opts.port !== undefined ? { port: opts.port } : {}),
        ...(opts.latencyMs !== undefined ? { latencyMs: opts.latencyMs } : {}),
        ...(opts.errorRate !== undefined ? { errorRate: opts.errorRate } : {}),
        ...(opts.invalidRate !== undefined ? { invalidRate: opts.invalidRate } : {}),
        ...(opts.throttleRate !== undefined ? { throttleRate: opts.throttleRate } : {}),
        ...(opts.hangRate !== undefined ? { hangRate: opts.hangRate } : {}),
      });
      console.log(`sandbox provider listening on ${server.url} (ledger: ${server.url}/_sandbox/sent, stats: ${server.url}/_sandbox/stats)`);
      const stop = () => void server.close().then(() => process.exit(0));
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });

  program
    .command("send")
    .description("create a campaign from a CSV file and queue it for the workers")
    .argument("<file>", "CSV file with a header row")
    .requiredOption("-t, --template <id>", "EngageLab template id")
    .option("-n, --name <name>", "campaign name (default: the file name and time)")
    .option("-p, --param <key=value>", "template parameter for every recipient (repeatable)", collectParam, {})
    .option("--phone-column <column>", "header of the phone number column", "phone")
    .addOption(new Option("--provider <api>", "EngageLab send API").choices(["messages", "legacy", "custom"]).default("messages"))
    .addOption(
      new Option("--on-unknown <policy>", "a batch whose outcome is unknown after a crash: mark unknown, or resend")
        .choices(["mark-unknown", "resend"])
        .default("mark-unknown"),
    )
    .option("--region <code>", "default country for numbers without a country code (e.g. SG)")
    .option("--from <sender>", "legacy: sender name, 3-11 letters or digits")
    .option("--msg-type <n>", "legacy: msg_type (2 = international)", nonNegativeInt("--msg-type"))
    .option("--label-id <n>", "legacy: SMS label id", nonNegativeInt("--label-id"))
    .option("--custom-arg <key=value>", "legacy: custom_args entry, 1 KB in all (repeatable)", collectParam, {})
    .option("--at <iso-time>", "with --provider-schedule: send at this time", isoTime)
    .option("--provider-schedule", "let EngageLab schedule the send (schedule_time, 3 minutes to 30 days ahead)")
    .option("--wait", "show a progress bar until the campaign completes")
    .option("--worker", "with --wait: also run a send worker in this process")
    .action(async (file: string, opts) => {
      const sendOptions = sendOptionsFrom(opts);
      await withServices(async ({ config, log, db }) => {
        const connection = createRedisConnection(config.redisUrl, "producer");
        const queue = createSendQueue(connection, { prefix: config.queuePrefix, attempts: config.send.attempts, backoffMs: config.send.backoffMs });
        const started = Date.now();
        try {
          const campaign = await launchCsvCampaign(
            { db, log, enqueue: (campaignId, batchIds) => enqueueBatches(queue, campaignId, batchIds) },
            {
              sendOptions,
              file,
              name: opts.name ?? `${file.split("/").pop()} ${new Date().toISOString()}`,
              templateId: opts.template,
              params: opts.param,
              phoneColumn: opts.phoneColumn,
              provider: opts.provider,
              onUnknown: opts.onUnknown === "resend" ? "resend" : "at_most_once",
              defaultRegion: opts.region ?? config.defaultRegion,
              batchSize: config.send.batchSize,
              onProgress: (rows) => process.stderr.write(`\r  read ${rows} rows`),
            },
          );
          process.stderr.write("\n");
          console.error(
            `campaign stored: ${campaign.recipientCount} recipients in ${campaign.batchIds.length} batches ` +
              `(${campaign.totalRows} rows, ${campaign.rejectedCount} rejected, ${campaign.duplicateCount} duplicates)` +
              (campaign.enqueued ? "" : "; NOT queued (Redis unreachable): run `smsblast reconcile`"),
          );
          console.log(campaign.campaignId);
          if (!opts.wait) return;
          const worker = opts.worker ? await startSendWorker(config, log) : undefined;
          try {
            const report = await waitForCampaign(db, campaign.campaignId);
            console.error(`\n${formatStatus(report)}\n\nwall time ${((Date.now() - started) / 1000).toFixed(1)} s`);
          } finally {
            await worker?.stop();
          }
        } finally {
          await queue.close();
          connection.disconnect();
        }
      });
    });

  program
    .command("send-one")
    .description("send one message through v1/custom-messages (OTP or notification) and print its message_id")
    .argument("<to>", "phone number or e-mail address")
    .requiredOption("-t, --template <id>", "EngageLab template id")
    .option("-p, --param <key=value>", "template parameter (repeatable)", collectParam, {})
    .option("--region <code>", "default country for a number without a country code")
    .action(async (to: string, opts) => {
      await withServices(async ({ config, log, db }) => {
        const registry = createProviders(config);
        try {
          const result = await sendOneMessage(
            { db, log, providers: registry.providers, providerTimeoutMs: config.engagelab.timeoutMs },
            { to, templateId: opts.template, params: opts.param, defaultRegion: opts.region ?? config.defaultRegion },
          );
          console.log(JSON.stringify(result));
          if (result.state !== "accepted") process.exitCode = 1;
        } finally {
          await registry.close();
        }
      });
    });

  program
    .command("pause")
    .description("stop sending a campaign between batches (in-flight batches finish)")
    .argument("<campaignId>")
    .action(async (campaignId: string) => {
      await withServices(async ({ db }) => {
        await pauseCampaign(db, campaignId);
        console.log(`campaign ${campaignId} paused`);
      });
    });

  program
    .command("resume")
    .description("continue a paused campaign (after a manual pause, or after the provider refused the credentials)")
    .argument("<campaignId>")
    .action(async (campaignId: string) => {
      await withServices(async ({ config, db }) => {
        const queued = await withQueue(config, (enqueue) => resumeCampaign(db, enqueue, campaignId));
        console.log(`campaign ${campaignId} resumed; ${queued} batch(es) queued`);
      });
    });

  program
    .command("worker")
    .description("run a send worker until SIGTERM/SIGINT")
    .action(async () => {
      const { runSendWorkerProcess } = await import("../../workers/send-worker.ts");
      await runSendWorkerProcess();
    });

  program
    .command("status")
    .description("show a campaign's state and its recipients and batches by state")
    .argument("<campaignId>")
    .option("--json", "print one JSON object")
    .action(async (campaignId: string, opts) => {
      await withServices(async ({ db }) => {
        const report = await getCampaignStatus(db, campaignId);
        console.log(opts.json ? JSON.stringify(report) : formatStatus(report));
      });
    });

  return program;
}

export async function runCli(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (error) {
    if (USER_ERRORS.some((type) => error instanceof type)) {
      console.error(`smsblast: ${(error as Error).message}`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await runCli(process.argv);
}
