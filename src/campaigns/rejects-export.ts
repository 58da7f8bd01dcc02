import type { Writable } from "node:stream";
import type { Database } from "../store/database.ts";
import { CampaignNotFoundError } from "./campaign-status.ts";
import { csvLine, writeLine } from "./csv-export.ts";

const PAGE = 10_000;

/** Writes a campaign's rejects as CSV (row, value, reason), page by page so a huge list stays flat in memory. */
export async function exportRejects(db: Database, campaignId: string, out: Writable): Promise<number> {
  const campaign = await db.pool.query(`SELECT 1 FROM campaigns WHERE id::text = $1`, [campaignId]);
  if (campaign.rowCount === 0) throw new CampaignNotFoundError(campaignId);
  await writeLine(out, csvLine(["row", "value", "reason"]));
  let after = { row: -1, id: "0" };
  let written = 0;
  for (;;) {
    const { rows } = await db.pool.query<{ id: string; row_number: number; raw_value: string; reason: string }>(
      `SELECT id, row_number, raw_value, reason FROM rejects WHERE campaign_id = $1 AND (row_number, id) > ($2, $3::bigint)
       ORDER BY row_number, id LIMIT ${PAGE}`,
      [campaignId, after.row, after.id],
    );
    for (const r of rows) await writeLine(out, csvLine([r.row_number, r.raw_value, r.reason]));
    written += rows.length;
    const last = rows[rows.length - 1];
    if (!last || rows.length < PAGE) return written;
    after = { row: last.row_number, id: last.id };
  }
}
