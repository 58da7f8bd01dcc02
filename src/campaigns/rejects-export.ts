import type { Writable } from "node:stream";
import { assertCampaignDetailKept, readRejectPages } from "../store/campaign-report-repository.ts";
import type { Database } from "../store/database.ts";
import { csvLine, writeLine } from "./csv-export.ts";

/** Writes a campaign's rejects as CSV (row, value, reason), page by page so a huge list stays flat in memory. */
export async function exportRejects(db: Database, campaignId: string, out: Writable): Promise<number> {
  await assertCampaignDetailKept(db, campaignId, "its rejected rows are gone");
  await writeLine(out, csvLine(["row", "value", "reason"]));
  let written = 0;
  for await (const page of readRejectPages(db, campaignId)) {
    for (const r of page) await writeLine(out, csvLine([r.rowNumber, r.rawValue, r.reason]));
    written += page.length;
  }
  return written;
}
