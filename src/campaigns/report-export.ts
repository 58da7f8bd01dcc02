import type { Writable } from "node:stream";
import type { Database } from "../store/database.ts";
import { CampaignNotFoundError } from "./campaign-status.ts";
import { csvLine, writeLine } from "./csv-export.ts";

const PAGE = 10_000;
const HEADER = ["row", "phone", "state", "batch", "plan_id", "sms_id", "message_id", "send_channel", "failure_code", "failure_message"];

interface ReportRow {
  row_number: number;
  phone: string;
  state: string;
  batch_sequence: number;
  plan_id: string | null;
  sms_id: string | null;
  message_id: string | null;
  send_channel: string | null;
  failure_code: number | null;
  failure_message: string | null;
}

/**
 * Every recipient's outcome as CSV, in batch order, paged by primary key (keyset) so a million-recipient
 * report streams in bounded memory. Cells are formula-injection safe.
 */
export async function exportCampaignReport(db: Database, campaignId: string, out: Writable): Promise<number> {
  const exists = await db.pool.query(`SELECT 1 FROM campaigns WHERE id::text = $1`, [campaignId]);
  if (exists.rowCount === 0) throw new CampaignNotFoundError(campaignId);
  await writeLine(out, csvLine(HEADER));
  let after = { sequence: -1, phone: "" };
  let written = 0;
  for (;;) {
    const { rows } = await db.pool.query<ReportRow>(
      `SELECT r.row_number, r.phone, r.state, r.batch_sequence, b.plan_id, r.sms_id, coalesce(r.message_id, b.message_id) AS message_id,
              r.send_channel, r.failure_code, r.failure_message
       FROM recipients r JOIN batches b ON b.campaign_id = r.campaign_id AND b.sequence = r.batch_sequence
       WHERE r.campaign_id = $1 AND (r.batch_sequence, r.phone) > ($2, $3)
       ORDER BY r.batch_sequence, r.phone LIMIT ${PAGE}`,
      [campaignId, after.sequence, after.phone],
    );
    for (const r of rows) {
      await writeLine(
        out,
        csvLine([r.row_number, r.phone, r.state, r.batch_sequence, r.plan_id, r.sms_id, r.message_id, r.send_channel, r.failure_code, r.failure_message]),
      );
    }
    written += rows.length;
    const last = rows[rows.length - 1];
    if (!last || rows.length < PAGE) return written;
    after = { sequence: last.batch_sequence, phone: last.phone };
  }
}
