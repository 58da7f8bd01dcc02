import stringWidth from "string-width";
import type { CampaignStatusReport } from "../campaigns/campaign-status.ts";

// C0 and C1 controls (ESC starts ANSI sequences; CR and LF forge lines), DEL, and the bidi overrides and
// isolates that make a terminal show text in another order than it is (Trojan Source).
// eslint-disable-next-line no-control-regex
const UNSAFE_IN_TERMINAL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * User text (campaign names, reasons, template text) made harmless for a terminal: every control or
 * direction-changing character is shown as a visible escape (\x1b, \n, \u202e) instead of being obeyed.
 */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE_IN_TERMINAL, (ch) => {
    if (ch === "\n") return "\\n";
    if (ch === "\r") return "\\r";
    if (ch === "\t") return "\\t";
    const code = ch.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** A plain aligned table, readable in CI logs; widths are display columns (emoji and CJK take two). */
export function formatTable(rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const text = rows.map((row) => row.map((cell) => (typeof cell === "number" ? String(cell) : terminalSafe(cell))));
  const widths: number[] = [];
  for (const row of text) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, stringWidth(cell))));
  return text
    .map((row, r) =>
      row
        .map((cell, i) => {
          const pad = " ".repeat(widths[i]! - stringWidth(cell));
          return typeof rows[r]![i] === "number" ? pad + cell : cell + pad;
        })
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export function formatStatus(report: CampaignStatusReport): string {
  const r = report.recipients;
  const batchStates = Object.entries(report.batches).filter(([state]) => state !== "total");
  return [
    `Campaign ${report.id} "${terminalSafe(report.name)}"`,
    `  status     ${report.status}${report.statusReason ? ` (${terminalSafe(report.statusReason)})` : ""}`,
    `  provider   ${report.provider}, template ${report.templateId}`,
    `  created    ${report.createdAt}${report.startedAt ? `, started ${report.startedAt}` : ""}${report.finishedAt ? `, finished ${report.finishedAt}` : ""}`,
    `  rows       ${report.rows.total} read, ${report.rows.rejected} rejected, ${report.rows.duplicates} duplicates`,
    ...(report.purgedAt
      ? [`  purged     ${report.purgedAt}: recipient detail deleted (smsblast purge); the counts below are kept`]
      : []),
    ...(report.readingList
      ? [`  reading    the list is still being read (send --stream): the totals grow and more batches will come`]
      : []),
    "",
    formatTable([
      ["recipients", "total", "accepted", "failed", "unknown", "pending", "cancelled"],
      ["", r.total, r.accepted, r.failed, r.unknown, r.pending, r.cancelled],
    ]),
    "",
    formatTable([
      ["delivery", "sent", "delivered", "undelivered", "no-report", "awaiting report", "delivery rate"],
      [
        "",
        r.sent,
        r.delivered,
        r.undelivered,
        r.no_report,
        report.delivery.awaitingReport,
        report.delivery.rate === null ? "-" : `${(report.delivery.rate * 100).toFixed(1)} %`,
      ],
    ]),
    "",
    formatTable([
      ["batches", "total", ...batchStates.map(([state]) => state)],
      ["", report.batches.total, ...batchStates.map(([, count]) => count)],
    ]),
  ].join("\n");
}
