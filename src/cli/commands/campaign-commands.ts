import { Command, InvalidArgumentError, Option } from "commander";
import type { Config } from "../../config/config.ts";
import { cancelCampaign, pauseCampaign, resumeCampaign } from "../../campaigns/campaign-control.ts";
import { listCampaigns } from "../../campaigns/campaign-list.ts";
import { reconcile } from "../../campaigns/reconciler.ts";
import { exportCampaignReport } from "../../campaigns/report-export.ts";
import { CAMPAIGN_TRANSITIONS } from "../../model/campaign-state.ts";
import { formatTable } from "../format.ts";
import { getCampaignStatus } from "../../campaigns/campaign-status.ts";
import {
  launchAudienceCampaign,
  launchCsvCampaign,
  launchRetryOfFailed,
  RETRYABLE_FAILURE_CODES,
  type CampaignLaunchInput,
  type LaunchDeps,
  type LaunchedCampaign,
} from "../../campaigns/launch-campaign.ts";
import { delayedStartOf, parseRate, sendOptionsOf } from "../../campaigns/launch-request.ts";
import { exportRejects } from "../../campaigns/rejects-export.ts";
import { sendOneMessage } from "../../campaigns/send-one.ts";
import { cliActor, recordAudit } from "../../access/audit-log.ts";
import { startSendWorker, type RunningSendWorker } from "../../runtime/send-worker-runtime.ts";
import type { Services } from "../../runtime/services.ts";
import { isFinalStatus } from "../../model/states.ts";
import { EXIT, exitCodeForCampaign } from "../exit-codes.ts";
import { onInterrupt } from "../interrupt.ts";
import { StreamedLaunchStoppedError } from "../../model/errors.ts";
import { formatStatus } from "../format.ts";
import { waitForCampaign } from "../progress.ts";
import { openProviders, openTemplates, withQueue, withSendRateGate, withServices } from "../../runtime/services.ts";
import { collectKeyValue, collectList, exportToStdout, isoTime, regionCode, wholeNumber } from "../shared.ts";
import { PROVIDER_APIS, type ProviderApi } from "../../model/states.ts";

interface SendOptions {
  audience?: string;
  template: string;
  name?: string;
  param: Record<string, string>;
  map: Record<string, string>;
  allowEmpty: string[];
  phoneColumn: string;
  countryColumn?: string;
  provider: ProviderApi;
  onUnknown: "mark-unknown" | "resend";
  region?: string;
  from?: string;
  msgType?: number;
  labelId?: number;
  customArg: Record<string, string>;
  optOutKeyword: string[];
  rate?: number;
  at?: Date;
  providerSchedule?: boolean;
  dryRun?: boolean;
  templateCheck: boolean;
  templateContent?: string;
  allowRepeat?: boolean;
  stream?: boolean;
  wait?: boolean;
  worker?: boolean;
}

/** `--rate`: a bad value is a usage error naming the forms it takes. */
function rateOption(value: string): number {
  try {
    return parseRate(value);
  } catch (error) {
    throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
  }
}

/** The provider options of `send`, in the words both front doors share. */
function launchOptionsOf(opts: SendOptions) {
  return {
    from: opts.from,
    msgType: opts.msgType,
    labelId: opts.labelId,
    customArgs: opts.customArg,
    startAt: opts.at,
    providerSchedule: opts.providerSchedule,
    optOutKeywords: opts.optOutKeyword,
    ratePerSecond: opts.rate,
  };
}

function launchInput(opts: SendOptions, config: Config, defaultName: string): CampaignLaunchInput {
  return {
    name: opts.name ?? `${defaultName} ${new Date().toISOString()}`,
    templateId: opts.template,
    params: opts.param,
    paramColumns: opts.map,
    provider: opts.provider,
    onUnknown: opts.onUnknown === "resend" ? "resend" : "at_most_once",
    batchSize: config.send.batchSize,
    legacyVarMaxChars: config.send.legacyVarMaxChars,
    sendOptions: sendOptionsOf(launchOptionsOf(opts)),
    dryRun: opts.dryRun,
    templateCheck: opts.templateCheck,
    templateContent: opts.templateContent,
    allowRepeat: opts.allowRepeat,
    startAt: delayedStartOf(launchOptionsOf(opts)),
    onProgress: (rows) => process.stderr.write(`\r  read ${rows} rows`),
  };
}

/**
 * `send --wait` and `watch`: the progress bar until the campaign ends or is paused, then its summary; the
 * exit code says how it ended (README "Exit codes"). Ctrl-C stops waiting: a worker of this process is shut
 * down like `smsblast worker` (in-flight batches finish within the grace period; a second Ctrl-C forces);
 * without one, the campaign keeps sending in the workers.
 */
async function waitAndReport(
  db: Services["db"],
  campaignId: string,
  options: { started?: number; startWorker?: () => Promise<RunningSendWorker> },
): Promise<number> {
  const interrupted = new AbortController();
  const removeHandler = onInterrupt(() => interrupted.abort());
  try {
    const worker = options.startWorker ? await options.startWorker() : undefined;
    let report;
    try {
      report = await waitForCampaign(db, campaignId, { signal: interrupted.signal });
      if (interrupted.signal.aborted && worker) {
        console.error("\nstopping the worker: in-flight batches finish and are recorded (Ctrl-C again to force)");
      }
    } finally {
      await worker?.stop();
    }
    if (interrupted.signal.aborted) {
      const status = await getCampaignStatus(db, campaignId);
      console.error(
        isFinalStatus(status.status)
          ? `\ninterrupted; campaign ${campaignId} is ${status.status}`
          : `\ninterrupted: campaign ${campaignId} is ${status.status} and keeps sending in the running workers` +
              (worker ? " (start one with `smsblast worker`)" : "") +
              `; watch it with \`smsblast watch ${campaignId}\``,
      );
      return EXIT.interrupted;
    }
    const wall =
      options.started === undefined ? "" : `\n\nwall time ${((Date.now() - options.started) / 1000).toFixed(1)} s`;
    console.error(`\n${formatStatus(report)}${wall}`);
    if (report.status === "paused")
      console.error(`campaign ${campaignId} is paused; \`smsblast resume ${campaignId}\` continues it`);
    return exitCodeForCampaign(report);
  } finally {
    removeHandler();
  }
}

/** What the template pre-flight did not check, said plainly (a messages template's approval never is). */
function templateCheckLines(check: LaunchedCampaign["templateCheck"]): string[] {
  if (check === null) return ["template not checked (--no-template-check)"];
  const lines = check.notChecked.map((what) => `template ${check.templateId}: NOT checked: ${what}`);
  if (!check.variablesChecked) lines.push(`  give --template-content <text> to check its variables`);
  return lines;
}

export function registerCampaignCommands(program: Command): void {
  program
    .command("send")
    .description("create a campaign from a CSV file (or a database audience) and queue it for the workers")
    .argument("[file]", "CSV file with a header row")
    .option(
      "--audience <tag-or-segment>",
      "send to the contacts with this tag, or matching this saved segment, instead of a file",
    )
    .requiredOption("-t, --template <id>", "EngageLab template id")
    .option("-n, --name <name>", "campaign name (default: the file or audience and the time)")
    .option("-p, --param <key=value>", "template parameter for every recipient (repeatable)", collectKeyValue, {})
    .option(
      "-m, --map <variable=column>",
      "template variable from a CSV column or contact attribute (repeatable)",
      collectKeyValue,
      {},
    )
    .option(
      "--allow-empty <variable>",
      "a mapped variable whose cell may be empty (repeatable); otherwise an empty cell rejects its row",
      collectList,
      [],
    )
    .option("--phone-column <column>", "header of the phone number column", "phone")
    .option("--country-column <column>", "header of a per-row country code column (e.g. SG)")
    .addOption(new Option("--provider <api>", "EngageLab send API").choices(PROVIDER_APIS).default("messages"))
    .addOption(
      new Option("--on-unknown <policy>", "a batch whose outcome is unknown after a crash: mark unknown, or resend")
        .choices(["mark-unknown", "resend"])
        .default("mark-unknown"),
    )
    .option("--region <code>", "default country for numbers without a country code (e.g. SG)", regionCode("--region"))
    .option("--from <sender>", "legacy: sender name, 3-11 letters or digits")
    .option("--msg-type <n>", "legacy: msg_type (2 = international)", wholeNumber("--msg-type"))
    .option("--label-id <n>", "legacy: SMS label id", wholeNumber("--label-id"))
    .option(
      "--custom-arg <key=value>",
      "custom_args entry (messages and legacy; 1 KB in all on legacy; repeatable)",
      collectKeyValue,
      {},
    )
    .option(
      "--at <iso-time>",
      "start the campaign at this time (a delayed launch; the campaign is `scheduled` until then)",
      isoTime,
    )
    .option(
      "--provider-schedule",
      "with --at: hand the time to EngageLab instead (schedule_time, up to 30 days ahead; under 3 min + PROVIDER_SCHEDULE_MARGIN_S, smsblast holds the batches until then)",
    )
    .option(
      "--opt-out-keyword <word>",
      "a reply that is exactly this word opts the recipient out, besides STOP, UNSUBSCRIBE, CANCEL, END, QUIT (repeatable)",
      collectList,
      [],
    )
    .option(
      "--rate <n/s>",
      "this campaign's own send rate in messages (50/s, 600/min, 1000/h), across every worker, besides SEND_RATE_LIMIT",
      rateOption,
    )
    .option("--dry-run", "validate, plan and print the request count; store and send nothing")
    .option("--no-template-check", "skip the template pre-flight (approved, every variable has a value)")
    .option(
      "--template-content <text>",
      "messages/custom: the template's text, to check that every {{variable}} has a value (approval cannot be checked)",
    )
    .option(
      "--allow-repeat",
      "send even if the same list with the same template and params was launched in the last 24 hours",
    )
    .option(
      "--stream",
      "start sending while the file is still being read (big lists go out sooner; a launch that fails part-way is cancelled, with what it sent recorded, instead of storing nothing)",
    )
    .option("--wait", "show a progress bar until the campaign completes")
    .option("--worker", "with --wait: also run a send worker in this process")
    .action(async (file: string | undefined, opts: SendOptions, command: Command) => {
      if (opts.audience !== undefined) {
        const fileOnly = ["phoneColumn", "countryColumn", "region", "stream"].filter(
          (o) => command.getOptionValueSource(o) === "cli",
        );
        if (fileOnly.length > 0) {
          throw new InvalidArgumentError(
            `${fileOnly.map((o) => "--" + o.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())).join(", ")} apply to CSV files, not to --audience`,
          );
        }
      }
      if ((file === undefined) === (opts.audience === undefined)) {
        throw new InvalidArgumentError(
          "give either a CSV file or --audience <tag-or-segment>, not both and not neither",
        );
      }
      if (opts.worker && !opts.wait)
        throw new InvalidArgumentError("--worker runs a worker while waiting: use it with --wait");
      await withServices(async ({ config, log, db }) => {
        const templates = openTemplates(config);
        const started = Date.now();
        // --stream sends while it reads: Ctrl-C then stops the reading and cancels the rest, rather than
        // leaving queued batches to go out until the reconciler finds the launch gone.
        const interrupted = new AbortController();
        const removeInterrupt = opts.stream ? onInterrupt(() => interrupted.abort()) : () => {};
        try {
          const campaign = await withQueue({ config, db }, async (queue) => {
            const deps: LaunchDeps = {
              db,
              log,
              enqueue: queue.enqueue,
              scheduleStart: queue.scheduleStart,
              templates: templates.api,
            };
            return file !== undefined
              ? launchCsvCampaign(deps, {
                  ...launchInput(opts, config, file.split("/").pop() ?? file),
                  file,
                  phoneColumn: opts.phoneColumn,
                  countryColumn: opts.countryColumn,
                  defaultRegion: opts.region ?? config.defaultRegion,
                  maxBytes: config.csvMaxBytes,
                  allowEmpty: opts.allowEmpty,
                  sendWhileReading: opts.stream,
                  signal: interrupted.signal,
                })
              : launchAudienceCampaign(deps, {
                  ...launchInput(opts, config, `audience ${opts.audience}`),
                  audience: opts.audience!,
                });
          }).finally(() => {
            removeInterrupt();
            process.stderr.write("\n"); // ends the "read N rows" line, also before a refusal
          });
          console.error(
            `${campaign.dryRun ? "dry run: would store" : "campaign stored:"} ${campaign.recipientCount} recipients in ` +
              `${campaign.batchIds.length} requests (${campaign.totalRows} rows, ${campaign.rejectedCount} rejected of which ` +
              `${campaign.suppressedCount} suppressed, ${campaign.duplicateCount} duplicates)`,
          );
          for (const line of templateCheckLines(campaign.templateCheck)) console.error(line);
          for (const note of campaign.notes) console.error(`note: ${note}`);
          if (campaign.dryRun) return;
          await recordAudit(db, cliActor(), "campaign.create", {
            campaignId: campaign.campaignId,
            details: {
              source: file !== undefined ? "csv" : "audience",
              recipients: campaign.recipientCount,
              provider: opts.provider,
            },
          });
          console.log(campaign.campaignId);
          if (!campaign.enqueued) {
            // Stored in full, so nothing is lost; only the queue jobs are missing, and reconcile re-creates them.
            console.error(
              `smsblast: campaign ${campaign.campaignId} is stored but NOT queued (Redis failed after the campaign was stored); ` +
                `once Redis is back, run \`smsblast reconcile ${campaign.campaignId}\` to send it`,
            );
            process.exitCode = EXIT.internal;
            return;
          }
          if (opts.at && !opts.providerSchedule) console.error(`scheduled to start at ${opts.at.toISOString()}`);
          if (!opts.wait) return;
          process.exitCode = await waitAndReport(db, campaign.campaignId, {
            started,
            startWorker: opts.worker ? () => startSendWorker(config, log) : undefined,
          });
        } catch (error) {
          // A --stream launch that stopped part-way may have sent messages: it is a campaign like any other.
          if (error instanceof StreamedLaunchStoppedError && !error.stopped.deleted) {
            await recordAudit(db, cliActor(), "campaign.create", {
              campaignId: error.campaignId,
              details: {
                source: "csv",
                stopped: error.code,
                recipients: error.stopped.recipients,
                provider: opts.provider,
              },
            }).catch(() => {});
          }
          throw error;
        } finally {
          await templates.close();
        }
      });
    });

  program
    .command("send-one")
    .description("send one message through v1/custom-messages (OTP or notification) and print its message_id")
    .argument("<to>", "phone number or e-mail address")
    .requiredOption("-t, --template <id>", "EngageLab template id")
    .option("-p, --param <key=value>", "template parameter (repeatable)", collectKeyValue, {})
    .option("--region <code>", "default country for a number without a country code", regionCode("--region"))
    .action(async (to: string, opts: { template: string; param: Record<string, string>; region?: string }) => {
      await withServices(async ({ config, log, db }) => {
        const registry = openProviders(config);
        try {
          // The priority lane: sent inline, never queued behind bulk batches, within the shared rates.
          const result = await withSendRateGate({ config, db }, (gate) =>
            sendOneMessage(
              { db, log, providers: registry.providers, providerTimeoutMs: config.engagelab.timeoutMs, gate },
              { to, templateId: opts.template, params: opts.param, defaultRegion: opts.region ?? config.defaultRegion },
            ),
          );
          console.log(JSON.stringify(result));
          if (result.state !== "accepted") process.exitCode = 1;
        } finally {
          await registry.close();
        }
      });
    });

  program
    .command("status")
    .description("show a campaign's state and its recipients and batches by state")
    .argument("<campaignId>")
    .option("--json", "print one JSON object")
    .action(async (campaignId: string, opts: { json?: boolean }) => {
      await withServices(async ({ db }) => {
        const report = await getCampaignStatus(db, campaignId);
        console.log(opts.json ? JSON.stringify(report) : formatStatus(report));
      });
    });

  program
    .command("rejects")
    .description("write a campaign's rejected rows (row, value, reason) as CSV, formula-injection safe")
    .argument("<campaignId>")
    .action(async (campaignId: string) => {
      await withServices(async ({ db }) => {
        const count = await exportToStdout((out) => exportRejects(db, campaignId, out));
        if (count !== undefined) console.error(`${count} reject(s)`);
      });
    });

  program
    .command("cancel")
    .description("cancel a campaign: batches not yet claimed are never sent and their recipients end cancelled")
    .argument("<campaignId>")
    .action(async (campaignId: string) => {
      await withServices(async ({ db }) => {
        const result = await cancelCampaign(db, campaignId);
        await recordAudit(db, cliActor(), "campaign.cancel", { campaignId });
        console.log(
          `campaign ${campaignId} cancelled: ${result.cancelledBatches} batch(es) and ${result.cancelledRecipients} recipient(s) will not be sent` +
            (result.inFlightBatches
              ? `; ${result.inFlightBatches} batch(es) already in flight finish and are recorded`
              : ""),
        );
      });
    });

  program
    .command("watch")
    .description("live progress bar (sent / failed / pending, rate, ETA) until the campaign ends")
    .argument("<campaignId>")
    .action(async (campaignId: string) => {
      await withServices(async ({ db }) => {
        await getCampaignStatus(db, campaignId); // an unknown id is refused before the bar is drawn
        process.exitCode = await waitAndReport(db, campaignId, {});
      });
    });

  program
    .command("campaigns")
    .description("list recent campaigns")
    .option("--limit <n>", "how many", wholeNumber("--limit"), 20)
    .addOption(
      new Option("--status <status>", "only campaigns in this status").choices(Object.keys(CAMPAIGN_TRANSITIONS)),
    )
    .option("--json", "print JSON")
    .action(async (opts: { limit: number; status?: keyof typeof CAMPAIGN_TRANSITIONS; json?: boolean }) => {
      await withServices(async ({ db }) => {
        const campaigns = await listCampaigns(db, opts);
        if (opts.json) {
          console.log(JSON.stringify(campaigns));
          return;
        }
        console.log(
          formatTable([
            ["id", "name", "status", "provider", "recipients", "accepted", "failed", "unknown", "created"],
            ...campaigns.map((c) => [
              c.id,
              c.name.length > 32 ? `${c.name.slice(0, 31)}…` : c.name,
              c.status + (c.status === "scheduled" && c.scheduledAt ? ` (${c.scheduledAt.toISOString()})` : ""),
              c.provider,
              c.recipients,
              c.accepted,
              c.failed,
              c.unknown,
              c.createdAt.toISOString(),
            ]),
          ]),
        );
      });
    });

  program
    .command("report")
    .description(
      "write every recipient's outcome as CSV in file row order (row, phone, state, batch, plan_id, sms_id, message_id, failure, delivered_at, delivery_error)",
    )
    .argument("<campaignId>")
    .option("--csv", "CSV output (the only format; kept for clarity)")
    .action(async (campaignId: string) => {
      await withServices(async ({ db }) => {
        const count = await exportToStdout((out) => exportCampaignReport(db, campaignId, out));
        if (count !== undefined) console.error(`${count} recipient(s)`);
      });
    });

  program
    .command("reconcile")
    .description("give every unfinished batch (and scheduled start) its queue job back from Postgres; safe to repeat")
    .argument("[campaignId]", "only this campaign")
    .action(async (campaignId: string | undefined) => {
      await withServices(async ({ config, log, db }) => {
        const report = await withQueue({ config, db }, (queue) =>
          reconcile({ db, queue, log, providerTimeoutMs: config.engagelab.timeoutMs }, campaignId),
        );
        console.log(
          `${report.batchesRequeued} batch job(s) ensured across ${report.campaigns} running campaign(s) ` +
            `(${report.staleBatches} stuck in sending go through the unknown-outcome rule); ${report.startsScheduled} scheduled start(s) ensured` +
            (report.staleReadingsCancelled > 0
              ? `; ${report.staleReadingsCancelled} campaign(s) whose --stream launch stopped part-way cancelled`
              : ""),
        );
      });
    });

  program
    .command("pause")
    .description("stop sending a campaign between batches (in-flight batches finish)")
    .argument("<campaignId>")
    .action(async (campaignId: string) => {
      await withServices(async ({ db }) => {
        await pauseCampaign(db, campaignId);
        await recordAudit(db, cliActor(), "campaign.pause", { campaignId });
        console.log(`campaign ${campaignId} paused`);
      });
    });

  program
    .command("retry-failed")
    .description(
      "a new campaign of the recipients that ended failed with a retryable code (never accepted or unknown ones), linked to the original",
    )
    .argument("<campaignId>")
    .option(
      "--codes <codes>",
      `failure codes to send again, comma-separated (default ${RETRYABLE_FAILURE_CODES.join(",")})`,
      codeList,
    )
    .option("-n, --name <name>", "name of the new campaign")
    .option("--dry-run", "plan and print the request count; store and send nothing")
    .option("--allow-repeat", "retry the same failures again within 24 h")
    .option("--wait", "show a progress bar until the new campaign completes")
    .option("--worker", "with --wait: also run a send worker in this process")
    .action(
      async (
        campaignId: string,
        opts: {
          codes?: number[];
          name?: string;
          dryRun?: boolean;
          allowRepeat?: boolean;
          wait?: boolean;
          worker?: boolean;
        },
      ) => {
        if (opts.worker && !opts.wait)
          throw new InvalidArgumentError("--worker runs a worker while waiting: use it with --wait");
        await withServices(async ({ config, log, db }) => {
          const started = Date.now();
          const campaign = await withQueue({ config, db }, (queue) =>
            launchRetryOfFailed(
              { db, log, enqueue: queue.enqueue, scheduleStart: queue.scheduleStart },
              {
                campaignId,
                codes: opts.codes,
                batchSize: config.send.batchSize,
                name: opts.name,
                dryRun: opts.dryRun,
                allowRepeat: opts.allowRepeat,
              },
            ),
          );
          console.error(
            `${campaign.dryRun ? "dry run: would store" : "campaign stored:"} ${campaign.recipientCount} recipients in ` +
              `${campaign.batchIds.length} requests (retry of ${campaignId}; ${campaign.suppressedCount} suppressed since)`,
          );
          if (campaign.dryRun) return;
          await recordAudit(db, cliActor(), "campaign.create", {
            campaignId: campaign.campaignId,
            details: { source: "retry-failed", retryOf: campaignId, recipients: campaign.recipientCount },
          });
          console.log(campaign.campaignId);
          if (!opts.wait) return;
          process.exitCode = await waitAndReport(db, campaign.campaignId, {
            started,
            startWorker: opts.worker ? () => startSendWorker(config, log) : undefined,
          });
        });
      },
    );

  program
    .command("resume")
    .description("continue a paused campaign (after a manual pause, or after the provider refused the credentials)")
    .argument("<campaignId>")
    .action(async (campaignId: string) => {
      await withServices(async ({ config, db }) => {
        const result = await withQueue({ config, db }, (queue) => resumeCampaign(db, queue, campaignId));
        await recordAudit(db, cliActor(), "campaign.resume", { campaignId });
        console.log(
          result.status === "running"
            ? `campaign ${campaignId} resumed; ${result.batchIds.length} batch(es) queued`
            : `campaign ${campaignId} is scheduled again for ${result.scheduledAt?.toISOString()}`,
        );
      });
    });
}

function codeList(value: string): number[] {
  const codes = value.split(",").map((c) => c.trim());
  const bad = codes.find((c) => !/^\d+$/.test(c));
  if (bad !== undefined) throw new InvalidArgumentError(`expected failure codes such as 1000,5001, got "${bad}"`);
  return codes.map(Number);
}
