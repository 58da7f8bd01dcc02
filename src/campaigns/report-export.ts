import type { Writable } from "node:stream";
import { assertCampaignDetailKept, readReportPages } from "../store/campaign-report-repository.ts";
import type { Database } from "../store/database.ts";
import { csvLine, writeLine } from "./csv-export.ts";

const HEADER = [
  "row",
  "phone",
  "state",
  "batch",
  "plan_id",
  "sms_id",
  "message_id",
  "send_channel",
  "failure_code",
  "failure_message",
  "delivered_at",
  "delivery_error",
];

/**
 * Every recipient's outcome as CSV, in the source file's row order, streamed page by page so a
 * million-recipient report stays in bounded memory. Cells are formula-injection safe; numbers stay numbers.
 */
export async function exportCampaignReport(db: Database, campaignId: string, out: Writable): Promise<number> {
  await assertCampaignDetailKept(db, campaignId, "there is no recipient left to report");
  await writeLine(out, csvLine(HEADER));
  let written = 0;
  for await (const page of readReportPages(db, campaignId)) {
    for (const r of page) {
      await writeLine(
        out,
        csvLine([
          r.rowNumber,
          r.phone,
          r.state,
          r.batchSequence,
          r.planId,
          r.smsId,
          r.messageId,
          r.sendChannel,
          r.failureCode,
          r.failureMessage,
          r.deliveredAt?.toISOString(),
          deliveryError(r.deliveryErrorCode, r.deliveryErrorMessage),
        ]),
      );
    }
    written += page.length;
  }
  return written;
}

function deliveryError(code: string | null, message: string | null): string | null {
  if (code === null) return message;
  return message === null ? code : `${code}: ${message}`;
}
