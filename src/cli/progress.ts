import cliProgress from "cli-progress";
import { getCampaignStatus, type CampaignStatusReport } from "../campaigns/campaign-status.ts";
import { isFinalStatus } from "../model/states.ts";
import type { Services } from "../runtime/services.ts";

/** Waiting ends here: a final status, or a pause (which needs a person: `resume`). */
function waitIsOver(report: CampaignStatusReport): boolean {
  return isFinalStatus(report.status) || report.status === "paused";
}

/**
 * Polls Postgres and draws a progress bar on stderr until the campaign ends or is paused (or `timeoutMs`
 * passes, or `signal` aborts). Without a TTY it prints one line every few seconds instead of redrawing.
 */
export async function waitForCampaign(
  db: Services["db"],
  campaignId: string,
  options: { timeoutMs?: number; pollMs?: number; stream?: NodeJS.WriteStream; signal?: AbortSignal } = {},
): Promise<CampaignStatusReport> {
  const stream = options.stream ?? process.stderr;
  const pollMs = options.pollMs ?? 500;
  const deadline = Date.now() + (options.timeoutMs ?? 24 * 3600 * 1000);
  let report = await getCampaignStatus(db, campaignId);
  const total = Math.max(report.recipients.total, 1);
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format:
        " {bar} {percentage}% | {done}/{total} | accepted {accepted} failed {failed} unknown {unknown} | {rate}/s | ETA {eta_formatted}",
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
    while (!waitIsOver(report) && Date.now() < deadline && !options.signal?.aborted) {
      await sleep(pollMs, options.signal);
      if (options.signal?.aborted) break;
      report = await getCampaignStatus(db, campaignId);
      bar.update(done(report), payload(report));
    }
  } finally {
    bar.stop();
  }
  return report;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
