import { withTransaction, type Database } from "./database.ts";
import { FORGOTTEN_PHONE_PREFIX, lockForErasure } from "./forgotten-number-repository.ts";
import { recipientStateSql } from "./recipient-state.ts";

// `smsblast forget`: one number out of every table that holds it, in one transaction, under the erasure lock
// (src/store/forgotten-number-repository.ts) so no launch in progress can add it back behind the erasure's back.

export interface ErasureInput {
  /** The number in E.164. */
  phone: string;
  /** Its digit forms (digitFormsOf): how it appears in raw cells (rejects, uploads). */
  digitForms: string[];
  /** Hex HMAC of `phone` and the id of its key. */
  phoneHmac: string;
  keyId: string;
  /** The reason kept when the number was not suppressed yet. */
  reason: string;
  /** Called once when launches in progress hold the lock, before waiting for them. */
  onWaiting?: () => void;
}

export interface ErasureCounts {
  /** Recipient rows whose number was replaced (`erased:<uuid>`), and in how many campaigns. */
  recipients: number;
  campaigns: number;
  /** Of those, pending ones (a running, paused or scheduled campaign) now cancelled. */
  cancelledPending: number;
  rejects: number;
  uploadRows: number;
  deliveryEvents: number;
  contacts: number;
  /** The suppression entry: an existing one now kept as its hash, a new one, or one forgotten before. */
  suppression: "hashed" | "added" | "already-forgotten";
  /** When the number was first suppressed (kept with the hash). */
  suppressedAt: Date;
  suppressionReason: string;
}

export async function eraseNumber(db: Database, input: ErasureInput): Promise<ErasureCounts> {
  return withTransaction(db.pool, async (client) => {
    if (!(await lockForErasure(client, false))) {
      input.onWaiting?.();
      await lockForErasure(client, true);
    }
    // The recipients table is keyed (campaign, batch, number): one primary-key probe per batch finds the
    // number in every campaign without a scan. The row stays (so every campaign's counts stay right), its
    // number becomes a placeholder no provider accepts, and a pending one will never be sent.
    const recipients = await client.query<{ campaign_id: string; was_pending: boolean }>(
      `WITH hit AS (
         SELECT r.campaign_id, r.batch_sequence, r.phone, ${recipientStateSql("r", "b")} = 'pending' AS was_pending
         FROM batches b JOIN recipients r ON r.campaign_id = b.campaign_id AND r.batch_sequence = b.sequence AND r.phone = $1
         FOR UPDATE OF r
       )
       UPDATE recipients r SET phone = 'erased:' || gen_random_uuid(), params = NULL, sms_id = NULL, message_id = NULL,
         state = CASE WHEN hit.was_pending THEN 'cancelled'::"RecipientState" ELSE r.state END,
         failure_message = CASE WHEN hit.was_pending THEN 'number erased on request before it was sent' ELSE r.failure_message END,
         updated_at = now()
       FROM hit WHERE r.campaign_id = hit.campaign_id AND r.batch_sequence = hit.batch_sequence AND r.phone = hit.phone
       RETURNING r.campaign_id, hit.was_pending`,
      [input.phone],
    );
    // Raw cells: any text whose digits, leading zeros dropped, are the number's international or national form.
    const rejects = await client.query(
      `DELETE FROM rejects WHERE ltrim(regexp_replace(raw_value, '\\D', '', 'g'), '0') = ANY($1::text[])`,
      [input.digitForms],
    );
    const uploads = await client.query(
      `WITH hit AS (
         SELECT upload_id, row FROM upload_judgements WHERE phone = $1
         UNION
         SELECT upload_id, row FROM upload_rows r
         WHERE EXISTS (SELECT 1 FROM unnest(r.cells) c WHERE ltrim(regexp_replace(c, '\\D', '', 'g'), '0') = ANY($2::text[]))
       ), judged AS (
         DELETE FROM upload_judgements j USING hit WHERE j.upload_id = hit.upload_id AND j.row = hit.row
       )
       DELETE FROM upload_rows r USING hit WHERE r.upload_id = hit.upload_id AND r.row = hit.row`,
      [input.phone, input.digitForms],
    );
    // Callback rows as received: the number as a whole JSON string ("+6591234567", "6591234567", "0065…").
    // A row is one event, or a whole callback (an array of events with their keys, `events`): from those
    // only the number's events go, with their keys; the other people's events in the callback stay.
    const international = input.phone.replace(/\D/g, "");
    const { rows: erasedEvents } = await client.query<{ n: number }>(
      `WITH hit AS (
         SELECT id, row, events FROM delivery_events WHERE row::text ~ ('"(\\+|00)?' || $1 || '"') FOR UPDATE
       ), single AS (
         DELETE FROM delivery_events e USING hit WHERE e.id = hit.id AND jsonb_typeof(hit.row) <> 'array' RETURNING 1
       ), kept AS (
         SELECT hit.id,
           count(*) FILTER (WHERE x.r::text ~ ('"(\\+|00)?' || $1 || '"'))::int AS removed,
           count(*) FILTER (WHERE NOT x.r::text ~ ('"(\\+|00)?' || $1 || '"'))::int AS n,
           coalesce(jsonb_agg(x.r ORDER BY x.o) FILTER (WHERE NOT x.r::text ~ ('"(\\+|00)?' || $1 || '"')), '[]') AS row,
           CASE WHEN bool_and(hit.events IS NOT NULL) THEN
             array_agg(hit.events[x.o] ORDER BY x.o) FILTER (WHERE NOT x.r::text ~ ('"(\\+|00)?' || $1 || '"')) END AS events
         FROM hit CROSS JOIN LATERAL jsonb_array_elements(hit.row) WITH ORDINALITY AS x(r, o)
         WHERE jsonb_typeof(hit.row) = 'array'
         GROUP BY hit.id
       ), rewritten AS (
         UPDATE delivery_events e SET row = kept.row, events = kept.events, row_count = kept.n
         FROM kept WHERE e.id = kept.id AND kept.n > 0 RETURNING kept.removed
       ), emptied AS (
         DELETE FROM delivery_events e USING kept WHERE e.id = kept.id AND kept.n = 0 RETURNING kept.removed
       )
       SELECT ((SELECT count(*) FROM single) + coalesce((SELECT sum(removed) FROM rewritten), 0)
         + coalesce((SELECT sum(removed) FROM emptied), 0))::int AS n`,
      [international],
    );
    const contacts = await client.query(`DELETE FROM contacts WHERE phone = $1`, [input.phone]);

    const forgottenPhone = FORGOTTEN_PHONE_PREFIX + input.phoneHmac;
    let suppression: ErasureCounts["suppression"];
    let entry: { created_at: Date; reason: string } | undefined;
    const before = await client.query<{ created_at: Date; reason: string }>(
      `SELECT created_at, reason FROM suppressions WHERE phone_hmac = $1`,
      [input.phoneHmac],
    );
    if (before.rows[0]) {
      suppression = "already-forgotten";
      entry = before.rows[0];
      // A plain entry added since (suppress add without the secret) goes; the hashed one has its time.
      await client.query(`DELETE FROM suppressions WHERE phone = $1`, [input.phone]);
    } else {
      const hashed = await client.query<{ created_at: Date; reason: string }>(
        `UPDATE suppressions SET phone = $2, phone_hmac = $3, hmac_key_id = $4, forgotten_at = now()
         WHERE phone = $1 RETURNING created_at, reason`,
        [input.phone, forgottenPhone, input.phoneHmac, input.keyId],
      );
      if (hashed.rows[0]) {
        suppression = "hashed";
        entry = hashed.rows[0];
      } else {
        suppression = "added";
        const added = await client.query<{ created_at: Date; reason: string }>(
          `INSERT INTO suppressions (phone, reason, source, phone_hmac, hmac_key_id, forgotten_at)
           VALUES ($1, $2, 'forget', $3, $4, now()) RETURNING created_at, reason`,
          [forgottenPhone, input.reason, input.phoneHmac, input.keyId],
        );
        entry = added.rows[0]!;
      }
    }
    return {
      recipients: recipients.rowCount ?? 0,
      campaigns: new Set(recipients.rows.map((r) => r.campaign_id)).size,
      cancelledPending: recipients.rows.filter((r) => r.was_pending).length,
      rejects: rejects.rowCount ?? 0,
      uploadRows: uploads.rowCount ?? 0,
      deliveryEvents: erasedEvents[0]!.n,
      contacts: contacts.rowCount ?? 0,
      suppression,
      suppressedAt: entry.created_at,
      suppressionReason: entry.reason,
    };
  });
}
