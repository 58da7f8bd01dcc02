import cliProgress from "cli-progress";
import { getCampaignStatus, type CampaignStatusReport } from "../campaigns/campaign-status.ts";
import { isFinalStatus } from "../model/states.ts";
import type { Services } from "../runtime/services.ts";

/**
 * Polls Postgres and draws a progress bar on stderr until the campaign ends (or `timeoutMs` passes).
 * Without a TTY it prints one line every few seconds instead of redrawing.
 */
export async function waitForCampaign(
  db: Services["db"],
  campaignId: string,
  options: { timeoutMs?: number; pollMs?: number; stream?: NodeJS.WriteStream } = {},
): Promise<CampaignStatusReport> {
  const stream = options.stream ?? process.stderr;
  const pollMs = options.pollMs ?? 500;
  const deadline = Date.now() + (options.timeoutMs ?? 24 * 3600 * 1000);
  let report = await getCampaignStatus(db, campaignId);
  const total = Math.max(report.recipients.total, 1);
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: " {bar} {percentage}% | {done}/{total} | accepted {accepted} failed {failed} unknown {unknown} | {rate}/s | ETA {eta_formatted}",
      noTTYOutput: true,
      notTTYSchedule: 3_000,
      hideCursor: true,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  const done = (r: CampaignStatusReport) => r.recipients.total - r.recipients.pending;
  const payload = (r: CampaignStatusReport) => ({
    done: done(r),
    accepted: r.recipients.accepted,
    failed: r.recipients.failed,
    unknown: r.recipients.unknown,
    rate: Math.round(done(r) / Math.max((Date.now() - started) / 1000, 0.001)),
  });
  bar.start(total, done(report), payload(report));
  try {
    while (!isFinalStatus(report.status) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, pollMs));
      report = await getCampaignStatus(db, campaignId);
      bar.update(done(report), payload(report));
    }
  } finally {
    bar.stop();
  }
  return report;
}
