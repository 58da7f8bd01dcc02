import cliProgress from "cli-progress";
import { InvalidArgumentError, type Command } from "commander";
import { cliActor, recordAudit } from "../../access/audit-log.ts";
import {
  purgedTableSizes,
  purgeFinishedCampaigns,
  vacuumPurgedTables,
  type PurgeReport,
} from "../../campaigns/retention.ts";
import { DURATION_EXAMPLES, parseDuration } from "../../model/duration.ts";
import { UserError } from "../../model/errors.ts";
import { forgetNumber } from "../../recipients/forget-number.ts";
import { withServices } from "../../runtime/services.ts";
import { EXIT } from "../exit-codes.ts";
import { onInterrupt } from "../interrupt.ts";
import { numberBetween } from "../shared.ts";

function duration(flag: string) {
  return (value: string) => {
    const ms = parseDuration(value);
    if (ms === null)
      throw new InvalidArgumentError(
        `${flag} must be a duration above zero such as ${DURATION_EXAMPLES}, got "${value}"`,
      );
    return ms;
  };
}

/** `smsblast purge` and `smsblast forget`: retention and erasure (README "Retention and erasure"). */
export function registerRetentionCommands(program: Command): void {
  program
    .command("purge")
    .description(
      "delete the recipients, rejects, uploads and raw delivery events of campaigns finished (completed, failed, cancelled) longer ago than --older-than; campaign rows and counts stay",
    )
    .option(
      "--older-than <duration>",
      `e.g. 90d (default PURGE_OLDER_THAN); ${DURATION_EXAMPLES}`,
      duration("--older-than"),
    )
    .option("--dry-run", "list what would be purged; delete nothing")
    .option(
      "--chunk-rows <n>",
      "rows per delete statement (default PURGE_CHUNK_ROWS, 20000)",
      numberBetween("--chunk-rows", 100, 1_000_000),
    )
    .option("--vacuum", "then VACUUM (ANALYZE) the emptied tables, so new campaigns reuse the space at once")
    .action(async (opts: { olderThan?: number; dryRun?: boolean; chunkRows?: number; vacuum?: boolean }) => {
      await withServices(async ({ config, db }) => {
        const olderThanMs = opts.olderThan ?? config.retention.purgeOlderThanMs;
        if (olderThanMs === undefined)
          throw new UserError("missing_duration", "give --older-than <duration> (e.g. 90d), or set PURGE_OLDER_THAN");
        const stop = new AbortController();
        const removeHandler = onInterrupt(() => stop.abort());
        const bar = new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format:
              " {bar} {percentage}% | {value}/{total} rows | campaign {campaign}/{campaigns} | {duration_formatted}",
            noTTYOutput: true,
            notTTYSchedule: 5_000,
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        );
        let started = false;
        let report: PurgeReport | null;
        try {
          report = await purgeFinishedCampaigns(db, {
            olderThanMs,
            chunkRows: opts.chunkRows ?? config.retention.purgeChunkRows,
            dryRun: opts.dryRun,
            signal: stop.signal,
            onProgress: (p) => {
              const payload = { campaign: p.campaign, campaigns: p.campaigns };
              if (!started) {
                started = true;
                bar.start(Math.max(p.rowsTotal, 1), p.rowsDeleted, payload);
              }
              // Forgotten numbers and late reports make the launch-time total a little off: never past 100 %.
              bar.setTotal(Math.max(p.rowsTotal, p.rowsDeleted, 1));
              bar.update(p.rowsDeleted, payload);
            },
          });
        } finally {
          if (started) bar.stop();
          removeHandler();
        }
        if (report === null)
          throw new UserError(
            "purge_running",
            "another purge is running (a scheduler's PURGE_OLDER_THAN, or another `smsblast purge`); nothing was deleted",
            {
              kind: "conflict",
            },
          );
        if (report.dryRun) {
          console.log(
            `dry run: ${report.campaigns} campaign(s) finished before ${report.cutoff.toISOString()} (older than ${report.olderThan}) ` +
              `would lose their recipient detail: about ${report.rowsAtLaunch} recipient and reject rows; nothing was deleted`,
          );
          return;
        }
        await recordAudit(db, cliActor(), "retention.purge", {
          details: { olderThan: report.olderThan, ...countsOf(report) },
        });
        console.log(
          `purged ${report.campaigns} campaign(s) finished before ${report.cutoff.toISOString()} (older than ${report.olderThan}): ` +
            `${report.recipients} recipients, ${report.rejects} rejects, ${report.deliveryEvents} delivery events, ` +
            `${report.uploadRows} upload rows deleted in ${(report.ms / 1000).toFixed(1)} s; their counts are kept`,
        );
        if (report.stopped) {
          console.error("interrupted: the purge stopped between two chunks; run it again to finish");
          process.exitCode = EXIT.interrupted;
          return;
        }
        if (opts.vacuum) {
          const vacuumStarted = performance.now();
          await vacuumPurgedTables(db);
          const sizes = await purgedTableSizes(db);
          console.log(
            `vacuumed in ${((performance.now() - vacuumStarted) / 1000).toFixed(1)} s: ` +
              sizes.map((s) => `${s.table} ${formatBytes(s.bytes)} (${s.rows} rows)`).join(", "),
          );
        }
      });
    });

  program
    .command("forget")
    .description(
      "a person's erasure request: erase a number from every campaign's recipients, rejects, uploads, raw delivery events and contacts; it stays suppressed as a keyed hash (needs SUPPRESSION_HASH_SECRET)",
    )
    .argument("<phone>")
    .option("--region <code>", "default country for a number without a country code")
    .option(
      "--reason <reason>",
      "kept with the suppression entry when the number was not suppressed yet",
      "erasure request",
    )
    .action(async (phone: string, opts: { region?: string; reason: string }) => {
      await withServices(async ({ config, db }) => {
        const report = await forgetNumber(db, {
          phone,
          defaultRegion: opts.region ?? config.defaultRegion,
          reason: opts.reason,
          onWaiting: () => console.error("waiting for the campaign launches in progress to commit…"),
        });
        // The audit log says what was done, never to which number.
        await recordAudit(db, cliActor(), "phone.forget", {
          details: {
            recipients: report.recipients,
            campaigns: report.campaigns,
            cancelledPending: report.cancelledPending,
            rejects: report.rejects,
            uploadRows: report.uploadRows,
            deliveryEvents: report.deliveryEvents,
            contacts: report.contacts,
            suppression: report.suppression,
            suppressedAt: report.suppressedAt.toISOString(),
          },
        });
        console.log(
          `the number was erased: ${report.recipients} recipient row(s) in ${report.campaigns} campaign(s)` +
            (report.cancelledPending ? ` (${report.cancelledPending} not sent yet, now cancelled)` : "") +
            `, ${report.rejects} reject(s), ${report.uploadRows} upload row(s), ${report.deliveryEvents} delivery event(s), ` +
            `${report.contacts} contact(s)`,
        );
        console.log(
          report.suppression === "already-forgotten"
            ? `it was forgotten before and stays suppressed as a keyed hash (suppressed since ${report.suppressedAt.toISOString()}, ${report.suppressionReason})`
            : report.suppression === "hashed"
              ? `it stays suppressed, now as a keyed hash only (suppressed since ${report.suppressedAt.toISOString()}, ${report.suppressionReason})`
              : `it is suppressed from now on, as a keyed hash only (${report.suppressionReason})`,
        );
      });
    });
}

function countsOf(report: PurgeReport) {
  return {
    campaigns: report.campaigns,
    recipients: report.recipients,
    rejects: report.rejects,
    deliveryEvents: report.deliveryEvents,
    uploadRows: report.uploadRows,
    stopped: report.stopped,
  };
}

function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${Math.round(bytes / 1024)} KiB`;
}
