// A recipient's state as SQL. A batch the provider accepted whole is one fact for up to 1000 recipients, so
// recording it no longer rewrites their rows: a recipient of a batch recorded `sent` whose row still says
// `pending` was accepted with the rest of its batch. A row is written only for an outcome of its own (a
// refusal, an sms_id or message_id, a delivery report, a cancellation). Rewriting every row was most of
// Postgres's work in a 1M send (2.9 ms of its ~6 ms per batch, pg_stat_statements) and left a dead version
// of each recipient behind. Every query that shows or judges a state reads it through these fragments.

/** The state of recipient row `r` whose batch row is `b` (batch may be missing: a LEFT JOIN). */
export function recipientStateSql(r: string, b: string): string {
  return recipientStateIfSentSql(r, `${b}.state = 'sent'`);
}

/** The same, where whether the batch is `sent` is already known as the boolean expression `batchSent`. */
export function recipientStateIfSentSql(r: string, batchSent: string): string {
  return `(CASE WHEN ${r}.state = 'pending' AND ${batchSent} THEN 'accepted'::"RecipientState" ELSE ${r}.state END)`;
}

/** `b` joined to recipient row `r` (the batch the recipient belongs to). */
export function batchOfRecipientSql(r: string, b: string): string {
  return `${b}.campaign_id = ${r}.campaign_id AND ${b}.sequence = ${r}.batch_sequence`;
}

/**
 * Rows (campaign_id, state, n) of the recipients matching `where` (over the bare table, no alias), counted
 * by state. Counted per batch first, then joined to the batches: never a batch probe per recipient.
 */
export function recipientStateCountsSql(where: string): string {
  return `SELECT g.campaign_id, ${recipientStateSql("g", "b")} AS state, sum(g.n)::int AS n
    FROM (SELECT campaign_id, batch_sequence, state, count(*) AS n FROM recipients WHERE ${where} GROUP BY 1, 2, 3) g
    LEFT JOIN batches b ON ${batchOfRecipientSql("g", "b")}
    GROUP BY 1, 2`;
}
