import type { CampaignStatusReport } from "../campaigns/campaign-status.ts";

/** A plain aligned table: no dependency, readable in CI logs. */
export function formatTable(rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, String(cell).length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) =>
          typeof cell === "number" ? String(cell).padStart(widths[i]!) : String(cell).padEnd(widths[i]!),
        )
        .join("  "),
    )
    .join("\n");
}

export function formatStatus(report: CampaignStatusReport): string {
  const r = report.recipients;
  const batchStates = Object.entries(report.batches).filter(([state]) => state !== "total");
  return [
    `Campaign ${report.id} "${report.name}"`,
    `  status     ${report.status}${report.statusReason ? ` (${report.statusReason})` : ""}`,
    `  provider   ${report.provider}, template ${report.templateId}`,
    `  created    ${report.createdAt}${report.startedAt ? `, started ${report.startedAt}` : ""}${report.finishedAt ? `, finished ${report.finishedAt}` : ""}`,
    `  rows       ${report.rows.total} read, ${report.rows.rejected} rejected, ${report.rows.duplicates} duplicates`,
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
