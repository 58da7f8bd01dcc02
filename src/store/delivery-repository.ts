import type pg from "pg";
import {
  AWAITING_REPORT_STATES,
  DELIVERY_STATUS_TARGETS,
  isOptOutReply,
  RECIPIENT_STATE_RANKS,
} from "../model/delivery-status.ts";
import { setContactOptOut } from "./audience-repository.ts";
import { withTransaction, type Database } from "./database.ts";
import { findForgotten } from "./forgotten-number-repository.ts";
import type { PhoneHasher } from "../model/phone-hash.ts";

// Delivery reports: raw callback rows in, recipient states out. Every statement is set-based; the rank
// rule comes from src/model/delivery-status.ts as arrays, so it is written down once.

export type CallbackSource = "engagelab" | "smshook";

export type StoreCallbackResult = { kind: "stored"; rows: number } | { kind: "replay" };

/**
 * Stores a callback's rows and its nonce in ONE statement: either both exist afterwards or neither. A
 * retry of a stored callback (same nonce) inserts nothing and is answered 200; a retry of one whose
 * statement failed finds no nonce and is stored then. `rowsJson` is the JSON array of rows.
 */
export async function storeCallbackRows(
  db: Database,
  source: CallbackSource,
  nonce: string | null,
  rowsJson: string,
  rowCount: number,
): Promise<StoreCallbackResult> {
  const pool = db.pool;
  if (nonce === null) {
    const { rowCount: stored } = await pool.query(
      `INSERT INTO delivery_events (source, row, campaign_id) SELECT $1, r, ${CAMPAIGN_OF_ROW} FROM jsonb_array_elements($2::jsonb) r`,
      [source, rowsJson],
    );
    return { kind: "stored", rows: stored ?? 0 };
  }
  const { rows } = await pool.query<{ fresh: boolean; stored: number }>(
    `WITH nonce AS (
       INSERT INTO callback_nonces (nonce, row_count) VALUES ($1, $4) ON CONFLICT (nonce) DO NOTHING RETURNING nonce
     ), stored AS (
       INSERT INTO delivery_events (source, row, campaign_id)
       SELECT $2, r, ${CAMPAIGN_OF_ROW} FROM jsonb_array_elements($3::jsonb) r WHERE EXISTS (SELECT 1 FROM nonce)
       RETURNING 1
     )
     SELECT EXISTS (SELECT 1 FROM nonce) AS fresh, (SELECT count(*) FROM stored)::int AS stored`,
    [nonce, source, rowsJson, rowCount],
  );
  return rows[0]!.fresh ? { kind: "stored", rows: rows[0]!.stored } : { kind: "replay" };
}

const UUID_RE = `'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'`;
// A campaign id from custom_args, only when it is a UUID: a forged or foreign value must not fail the insert.
const CAMPAIGN_OF_ROW = `CASE WHEN r->'custom_args'->>'campaign_id' ~ ${UUID_RE} THEN (r->'custom_args'->>'campaign_id')::uuid END`;

export interface ApplyOptions {
  /** Events per statement. */
  limit: number;
  /** An event whose recipient's send is not recorded yet is retried after this long. */
  retryDelayMs: number;
  /** A waiting event older than this is given up as unmatched (kept and counted). */
  giveUpAfterMs: number;
}

export interface ApplyReport {
  /** Events taken from the work list by this call (0: nothing was ready). */
  picked: number;
  /** Matched their recipient (whether or not they moved it). */
  applied: number;
  /** Recipients whose state moved forward. */
  changed: number;
  /** Informational statuses (plan, target_valid) and statuses the rank table does not know. */
  ignored: number;
  /** Matched no recipient: kept with outcome `unmatched`. */
  unmatched: number;
  /** Recipient's send not recorded yet: retried later. */
  waiting: number;
  /** Opt-out replies that added a number to the suppression list. */
  optOuts: number;
  /** Applied events per provider status, for the reports metric. */
  byStatus: Record<string, number>;
  /** Seconds from receipt to applied, one per event that moved a recipient (report-delay histogram). */
  delaysSeconds: number[];
}

const STATUS_NAMES = Object.keys(DELIVERY_STATUS_TARGETS);
const STATUS_TARGETS = STATUS_NAMES.map(
  (status) => DELIVERY_STATUS_TARGETS[status as keyof typeof DELIVERY_STATUS_TARGETS],
);
const RANKED_STATES = Object.keys(RECIPIENT_STATE_RANKS);
const RANKS = RANKED_STATES.map((state) => RECIPIENT_STATE_RANKS[state as keyof typeof RECIPIENT_STATE_RANKS]);

// The number in E.164 whatever form the provider echoes it in ("+65…", "65…", "0065…"); e-mail targets
// of custom-messages are found by message_id instead.
const E164_OF = (text: string) => `'+' || regexp_replace(regexp_replace(${text}, '\\D', '', 'g'), '^00', '')`;
// Unix seconds or milliseconds, as text; anything else is NULL.
const TIME_OF = (text: string) =>
  `CASE WHEN (${text}) ~ '^\\d{9,13}$' THEN to_timestamp(CASE WHEN length(${text}) > 11 THEN (${text})::numeric / 1000 ELSE (${text})::numeric END) END`;

/** A report of nothing applied yet, to add each statement's counts to. */
export function emptyApplyReport(): ApplyReport {
  return {
    picked: 0,
    applied: 0,
    changed: 0,
    ignored: 0,
    unmatched: 0,
    waiting: 0,
    optOuts: 0,
    byStatus: {},
    delaysSeconds: [],
  };
}

/**
 * Applies up to `limit` stored status events in one transaction of two statements. Each event finds its
 * recipient by primary key: custom_args.batch_id → the batch's (campaign, sequence), checked against
 * custom_args.campaign_id, plus the number in E.164; events without custom_args (custom-messages) by
 * message_id through the partial index. Of several events for one recipient the highest rank wins; the
 * UPDATE re-checks the rank under the row lock, so concurrent appliers cannot move a state backwards.
 */
export async function applyStoredEvents(db: Database, options: ApplyOptions): Promise<ApplyReport> {
  return withTransaction(db.pool, async (client) => {
    const report = emptyApplyReport();
    await applyReplies(client, options.limit, report, db.phoneHasher);
    const { rows } = await client.query<{
      outcome: string;
      status: string | null;
      changed: boolean;
      delay_s: number | null;
    }>(
      `WITH picked AS (
         SELECT id, row, received_at FROM delivery_events
         WHERE outcome = 'pending' AND next_attempt_at <= now() AND row->>'type' IS DISTINCT FROM 'uplink'
         ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED
       ),
       targets AS (SELECT * FROM unnest($2::text[], $3::text[]) AS t(status, target)),
       ranks AS (SELECT * FROM unnest($4::text[], $5::int[]) AS k(state, rank)),
       ev AS (
         SELECT p.id, p.received_at,
           p.row #>> '{status,message_status}' AS status,
           p.row->'custom_args'->>'campaign_id' AS campaign_text,
           CASE WHEN p.row->'custom_args'->>'batch_id' ~ ${UUID_RE} THEN (p.row->'custom_args'->>'batch_id')::uuid END AS batch_id,
           ${E164_OF("coalesce(p.row->>'to', '')")} AS phone,
           nullif(p.row->>'message_id', '') AS message_id,
           coalesce(${TIME_OF("p.row #>> '{status,status_data,msg_time}'")}, ${TIME_OF("p.row->>'itime'")}, p.received_at) AS event_time,
           p.row #>> '{status,error_code}' AS error_code,
           p.row #>> '{status,error_detail,message}' AS error_message,
           CASE WHEN p.row #>> '{status,billing,cost}' ~ '^-?\\d{1,6}(\\.\\d+)?$' THEN (p.row #>> '{status,billing,cost}')::numeric END AS cost,
           nullif(p.row #>> '{status,billing,currency}', '') AS currency
         FROM picked p
       ),
       keyed AS (
         SELECT ev.*, t.target, tr.rank AS target_rank, b.id IS NOT NULL AS batch_found,
           coalesce(b.campaign_id, rm.campaign_id) AS campaign_id,
           coalesce(b.sequence, rm.batch_sequence) AS seq,
           CASE WHEN b.id IS NOT NULL THEN ev.phone ELSE rm.phone END AS key_phone
         FROM ev
         LEFT JOIN targets t ON t.status = ev.status AND t.target IS NOT NULL
         LEFT JOIN ranks tr ON tr.state = t.target
         LEFT JOIN batches b ON b.id = ev.batch_id AND b.campaign_id::text = lower(ev.campaign_text)
         LEFT JOIN LATERAL (
           SELECT r.campaign_id, r.batch_sequence, r.phone FROM recipients r
           WHERE b.id IS NULL AND ev.message_id IS NOT NULL AND r.message_id = ev.message_id LIMIT 1
         ) rm ON true
       ),
       matched AS (
         SELECT k.*, r.state::text AS current_state, cr.rank AS current_rank
         FROM keyed k
         LEFT JOIN recipients r ON r.campaign_id = k.campaign_id AND r.batch_sequence = k.seq AND r.phone = k.key_phone
         LEFT JOIN ranks cr ON cr.state = r.state::text
       ),
       best AS (
         SELECT DISTINCT ON (campaign_id, seq, key_phone) *,
           -- the price may come on any of the recipient's events, not only on the one that wins
           max(cost) OVER (PARTITION BY campaign_id, seq, key_phone) AS any_cost,
           max(currency) OVER (PARTITION BY campaign_id, seq, key_phone) AS any_currency
         FROM matched
         WHERE target IS NOT NULL AND current_state IS NOT NULL AND current_state <> 'pending' AND target_rank > current_rank
         ORDER BY campaign_id, seq, key_phone, target_rank DESC, event_time DESC
       ),
       moved AS (
         UPDATE recipients r SET state = best.target::"RecipientState",
           delivered_at = CASE WHEN best.target = 'delivered' THEN best.event_time ELSE r.delivered_at END,
           reported_at = best.event_time,
           delivery_error_code = CASE WHEN best.target IN ('failed', 'undelivered') THEN best.error_code ELSE r.delivery_error_code END,
           delivery_error_message = CASE WHEN best.target IN ('failed', 'undelivered') THEN best.error_message ELSE r.delivery_error_message END,
           failure_message = CASE WHEN best.target = 'failed' THEN coalesce(best.error_message, 'refused by the provider') ELSE r.failure_message END,
           cost = coalesce(best.cost, best.any_cost, r.cost), currency = coalesce(best.currency, best.any_currency, r.currency), updated_at = now()
         FROM best
         WHERE r.campaign_id = best.campaign_id AND r.batch_sequence = best.seq AND r.phone = best.key_phone
           AND (SELECT rank FROM ranks WHERE state = r.state::text) < best.target_rank
         RETURNING best.id AS event_id
       ),
       classified AS (
         SELECT m.id, m.status, m.campaign_id, m.received_at, moved.event_id IS NOT NULL AS changed,
           CASE
             WHEN m.target IS NULL THEN 'ignored'
             WHEN m.current_state = 'pending' OR (m.current_state IS NULL AND NOT m.batch_found AND m.campaign_text IS NULL AND m.message_id IS NOT NULL)
               THEN CASE WHEN m.received_at < now() - make_interval(secs => $7::double precision / 1000) THEN 'unmatched' ELSE 'pending' END
             WHEN m.current_state IS NULL THEN 'unmatched'
             ELSE 'applied'
           END AS outcome
         FROM matched m LEFT JOIN moved ON moved.event_id = m.id
       )
       UPDATE delivery_events e SET outcome = c.outcome, attempts = e.attempts + 1,
         applied_at = CASE WHEN c.outcome <> 'pending' THEN now() END,
         next_attempt_at = CASE WHEN c.outcome = 'pending' THEN now() + make_interval(secs => $6::double precision / 1000) ELSE e.next_attempt_at END,
         campaign_id = coalesce(e.campaign_id, c.campaign_id)
       FROM classified c WHERE e.id = c.id
       RETURNING c.outcome, c.status, c.changed,
         CASE WHEN c.changed THEN extract(epoch FROM now() - c.received_at)::float8 END AS delay_s`,
      [options.limit, STATUS_NAMES, STATUS_TARGETS, RANKED_STATES, RANKS, options.retryDelayMs, options.giveUpAfterMs],
    );
    for (const row of rows) {
      report.picked += 1;
      if (row.changed) {
        report.changed += 1;
        if (row.delay_s !== null) report.delaysSeconds.push(row.delay_s);
      }
      switch (row.outcome) {
        case "applied":
          report.applied += 1;
          report.byStatus[row.status ?? "none"] = (report.byStatus[row.status ?? "none"] ?? 0) + 1;
          break;
        case "ignored":
          report.ignored += 1;
          break;
        case "unmatched":
          report.unmatched += 1;
          break;
        default:
          report.waiting += 1;
      }
    }
    return report;
  });
}

/**
 * Uplink rows (a recipient's reply; docs/engagelab-apis.md#current-platform-callback): an opt-out reply
 * adds the number to the suppression list. Rare, so they are read into JS and checked by the one keyword
 * rule of src/model/delivery-status.ts.
 */
async function applyReplies(
  client: pg.PoolClient,
  limit: number,
  report: ApplyReport,
  hasher: PhoneHasher | undefined,
): Promise<void> {
  const { rows } = await client.query<{ id: string; phone: string; content: string | null }>(
    `SELECT id, ${E164_OF("coalesce(row->>'from', '')")} AS phone, row->>'content' AS content FROM delivery_events
     WHERE outcome = 'pending' AND row->>'type' = 'uplink' ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`,
    [limit],
  );
  if (rows.length === 0) return;
  const standard = rows.filter((r) => r.content !== null && r.phone.length > 1 && isOptOutReply(r.content));
  const optOuts = [
    ...standard,
    ...(await campaignKeywordOptOuts(
      client,
      rows.filter((r) => !standard.includes(r)),
    )),
  ];
  const phones = [...new Set(optOuts.map((r) => r.phone))];
  if (phones.length > 0) {
    // A forgotten number (kept as its keyed hash) is suppressed already: never written in plain text again.
    const forgotten = hasher
      ? await findForgotten(
          client,
          phones.map((p) => hasher.hash(p)),
        )
      : new Map();
    const fresh = forgotten.size > 0 ? phones.filter((p) => !forgotten.has(hasher!.hash(p))) : phones;
    const { rowCount } = await client.query(
      `INSERT INTO suppressions (phone, reason, source) SELECT unnest($1::text[]), 'stop-reply', 'delivery-callback' ON CONFLICT (phone) DO NOTHING`,
      [fresh],
    );
    report.optOuts += rowCount ?? 0;
    await setContactOptOut(client, phones);
  }
  const optOutIds = new Set(optOuts.map((r) => r.id));
  await client.query(
    `UPDATE delivery_events SET outcome = CASE WHEN id = ANY($2::bigint[]) THEN 'applied' ELSE 'ignored' END, attempts = attempts + 1, applied_at = now()
     WHERE id = ANY($1::bigint[])`,
    [rows.map((r) => r.id), [...optOutIds]],
  );
  report.picked += rows.length;
  report.applied += optOutIds.size;
  report.ignored += rows.length - optOutIds.size;
}

/** How far back a campaign's own opt-out keyword (`send --opt-out-keyword`) is honoured for its recipients' replies. */
const CAMPAIGN_KEYWORD_WINDOW_DAYS = 90;

/**
 * Replies that are exactly a recent campaign's own opt-out keyword, from a number that campaign texted.
 * Rare: the campaigns with keywords are few, and each candidate is checked against that campaign alone.
 */
async function campaignKeywordOptOuts<R extends { phone: string; content: string | null }>(
  client: pg.PoolClient,
  replies: R[],
): Promise<R[]> {
  const candidates = replies.filter((r) => r.content !== null && r.phone.length > 1);
  if (candidates.length === 0) return [];
  const { rows: campaigns } = await client.query<{ id: string; keywords: string[] }>(
    `SELECT id, send_options->'optOutKeywords' AS keywords FROM campaigns
     WHERE send_options ? 'optOutKeywords' AND created_at > now() - make_interval(days => $1)`,
    [CAMPAIGN_KEYWORD_WINDOW_DAYS],
  );
  const matched: R[] = [];
  for (const reply of candidates) {
    for (const campaign of campaigns) {
      if (!isOptOutReply(reply.content!, campaign.keywords) || isOptOutReply(reply.content!)) continue;
      const { rowCount } = await client.query(
        `SELECT 1 FROM recipients WHERE campaign_id = $1 AND phone = $2 LIMIT 1`,
        [campaign.id, reply.phone],
      );
      if (rowCount) {
        matched.push(reply);
        break;
      }
    }
  }
  return matched;
}

/** Recipients still awaiting a report after `afterMs` become `no_report` (a late report still lands). */
export async function markNoReport(db: Database, afterMs: number): Promise<number> {
  const { rowCount } = await db.pool.query(
    `UPDATE recipients SET state = 'no_report', updated_at = now()
     WHERE state = ANY($1::"RecipientState"[]) AND updated_at < now() - make_interval(secs => $2::double precision / 1000)`,
    [AWAITING_REPORT_STATES, afterMs],
  );
  return rowCount ?? 0;
}

/** Nonces older than the timestamp window can never be replayed into it; applied rows past their age hold phone numbers for nothing. */
export async function purgeDeliveryRows(
  db: Database,
  nonceMaxAgeMs: number,
  appliedMaxAgeMs: number,
): Promise<{ nonces: number; events: number }> {
  const pool = db.pool;
  const nonces = await pool.query(
    `DELETE FROM callback_nonces WHERE received_at < now() - make_interval(secs => $1::double precision / 1000)`,
    [nonceMaxAgeMs],
  );
  const events = await pool.query(
    `DELETE FROM delivery_events WHERE outcome <> 'pending' AND applied_at < now() - make_interval(secs => $1::double precision / 1000)`,
    [appliedMaxAgeMs],
  );
  return { nonces: nonces.rowCount ?? 0, events: events.rowCount ?? 0 };
}

export interface DeliveryEventCounts {
  pending: number;
  applied: number;
  ignored: number;
  unmatched: number;
}

/** Stored events by outcome, optionally for one campaign (unmatched ones are kept and counted, never dropped). */
export async function countDeliveryEvents(pool: pg.Pool, campaignId?: string): Promise<DeliveryEventCounts> {
  const { rows } = await pool.query<{ outcome: keyof DeliveryEventCounts; n: number }>(
    `SELECT outcome, count(*)::int AS n FROM delivery_events WHERE $1::uuid IS NULL OR campaign_id = $1::uuid GROUP BY outcome`,
    [campaignId ?? null],
  );
  const counts: DeliveryEventCounts = { pending: 0, applied: 0, ignored: 0, unmatched: 0 };
  for (const row of rows) counts[row.outcome] = row.n;
  return counts;
}
