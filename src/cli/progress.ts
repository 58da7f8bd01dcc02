import cliProgress from "cli-progress";
import { getCampaignStatus, type CampaignStatusReport } from "../campaigns/campaign-status.ts";
import { setTerminalLineSink } from "../config/logger.ts";
import { isFinalStatus } from "../model/states.ts";
import { terminalSafe } from "./format.ts";
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
        " {bar} {percentage}% | {done}/{total} | accepted {accepted} failed {failed} unknown {unknown} | {rate}/s | {outlook}",
      noTTYOutput: true,
      notTTYSchedule: 3_000,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  const done = (r: CampaignStatusReport) => r.recipients.total - r.recipients.pending;
  const payload = (r: CampaignStatusReport) => {
    const rate = done(r) / Math.max((Date.now() - started) / 1000, 0.001);
    return {
      done: done(r),
      accepted: r.recipients.accepted,
      failed: r.recipients.failed,
      unknown: r.recipients.unknown,
      rate: Math.round(rate),
      outlook: outlookOf(r, rate),
    };
  };
  bar.start(total, done(report), payload(report));
  // Log lines (a worker of this process warning) print above the bar, which is then drawn again below them.
  if (stream.isTTY)
    setTerminalLineSink((line) => {
      stream.write(`\r\x1b[2K${line}`);
      bar.render();
    });
  try {
    while (!waitIsOver(report) && Date.now() < deadline && !options.signal?.aborted) {
      await sleep(pollMs, options.signal);
      if (options.signal?.aborted) break;
      report = await getCampaignStatus(db, campaignId);
      bar.update(done(report), payload(report));
    }
  } finally {
    setTerminalLineSink(undefined);
    bar.stop();
  }
  return report;
}

/**
 * What the end of the bar says: the status when the campaign is not sending (paused, with its reason), else
 * the time left from the rate so far, or "ETA -" before there is a rate (never "ETA NaN" or "ETA ∞").
 */
export function outlookOf(report: CampaignStatusReport, ratePerSecond: number): string {
  if (report.status === "paused") return `paused${report.statusReason ? `: ${terminalSafe(report.statusReason)}` : ""}`;
  if (report.status !== "running") return report.status;
  const left = report.recipients.pending;
  if (left === 0) return "ETA 0s";
  if (!Number.isFinite(ratePerSecond) || ratePerSecond <= 0) return "ETA -";
  return `ETA ${formatDuration(left / ratePerSecond)}`;
}

function formatDuration(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
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
