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
import type { RecipientState } from "../model/states.ts";
import { batchOfRecipientSql, recipientStateIfSentSql, recipientStateSql } from "./recipient-state.ts";

// Delivery reports: raw callback rows in, recipient states out. Every statement is set-based; the rank
// rule comes from src/model/delivery-status.ts as CASE expressions built from its tables, so it is written down once.

export type CallbackSource = "engagelab" | "smshook";

export type StoreCallbackResult = { kind: "stored"; rows: number } | { kind: "replay" };

/**
 * Stores a callback and its nonce in ONE statement: either both exist afterwards or neither. A retry of a
 * stored callback (same nonce) inserts nothing and is answered 200; a retry of one whose statement failed
 * finds no nonce and is stored then. The status rows go in as ONE row (`row` the JSON array, `row_count`
 * events, outcome `received`): on the request path that is one small insert and one index entry per index,
 * not a hundred; the applier expands it. Replies (uplink rows) are rare and stay one row each (`pending`),
 * for the reply applier. `campaignId`: the campaign every status row names, when they all name the same one.
 */
export async function storeCallbackRows(
  db: Database,
  source: CallbackSource,
  nonce: string | null,
  rows: {
    /** The status rows as a JSON array; or, with statusJsonIsBody, the whole body `{"rows": [...]}` as received. */
    statusJson: string;
    statusJsonIsBody: boolean;
    statusCount: number;
    /** deliveryEventKeyColumns() of the status rows: one array per delivery_event_key field. */
    keys: (string | null)[][];
    uplinkJson: string;
    uplinkCount: number;
    campaignId: string | null;
  },
): Promise<StoreCallbackResult> {
  const { rows: result } = await db.pool.query<{ fresh: boolean }>({
    // Named: each connection parses and plans it once, not per callback (1 ms of the database's time each).
    name: "smsblast-store-callback",
    text: `WITH nonce AS (
       INSERT INTO callback_nonces (nonce, row_count) SELECT $1, $7 WHERE $1::text IS NOT NULL
       ON CONFLICT (nonce) DO NOTHING RETURNING nonce
     ), fresh AS (SELECT $1::text IS NULL OR EXISTS (SELECT 1 FROM nonce) AS fresh), stored AS (
       INSERT INTO delivery_events (source, row, row_count, outcome, campaign_id, events)
       SELECT $2, CASE WHEN $19 THEN $3::jsonb -> 'rows' ELSE $3::jsonb END, $4, 'received', $5::uuid, ARRAY(
         SELECT ROW(k.b, k.ct, k.c, k.p, k.s, to_timestamp(k.t / 1000.0), k.ec, k.em, k.co, k.cu, k.m)::delivery_event_key
         FROM unnest($8::uuid[], $9::text[], $10::uuid[], $11::text[], $12::text[], $13::bigint[], $14::text[],
                     $15::text[], $16::numeric[], $17::text[], $18::text[]) WITH ORDINALITY AS k(b, ct, c, p, s, t, ec, em, co, cu, m, o)
         ORDER BY k.o)
       FROM fresh WHERE fresh AND $4 > 0
       UNION ALL
       SELECT $2, u, 1, 'pending', NULL, NULL FROM fresh, jsonb_array_elements($6::jsonb) u WHERE fresh
       RETURNING 1
     )
     SELECT fresh FROM fresh`,
    values: [
      nonce,
      source,
      rows.statusJson,
      rows.statusCount,
      rows.campaignId,
      rows.uplinkJson,
      rows.statusCount + rows.uplinkCount,
      ...rows.keys,
      rows.statusJsonIsBody,
    ],
  });
  return result[0]!.fresh ? { kind: "stored", rows: rows.statusCount + rows.uplinkCount } : { kind: "replay" };
}

const UUID_RE = `'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'`;
/** The same rule in JS, for the receiver's campaign of a callback. */
export const UUID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
// A campaign id from custom_args, only when it is a UUID: a forged or foreign value must not fail anything.
const CAMPAIGN_OF_ROW = (r: string) =>
  `CASE WHEN ${r}->'custom_args'->>'campaign_id' ~ ${UUID_RE} THEN (${r}->'custom_args'->>'campaign_id')::uuid END`;

export interface ApplyOptions {
  /** Events per statement. */
  limit: number;
  /** An event whose recipient's send is not recorded yet is retried after this long. */
  retryDelayMs: number;
  /** A waiting event older than this is given up as unmatched (kept and counted). */
  giveUpAfterMs: number;
  /**
   * Events per callback row seen so far (ApplyReport.picked / rows): how many work-list rows a statement
   * locks to gather `limit` events. Default 10; the drain passes what the previous statement saw.
   */
  eventsPerRow?: number;
}

export interface ApplyReport {
  /** Events taken from the work list by this call (0: nothing was ready). */
  picked: number;
  /** Work-list rows (callbacks) those events came in. */
  rows: number;
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
  /** Receipt → applied of the events that moved a recipient, to the 10 ms, with how many (report-delay histogram). */
  delays: { seconds: number; count: number }[];
}

const RANKED_STATES = Object.keys(RECIPIENT_STATE_RANKS);
const RANKS = RANKED_STATES.map((state) => RECIPIENT_STATE_RANKS[state as keyof typeof RECIPIENT_STATE_RANKS]);
// The provider statuses that move a recipient, each with its target state (the others are informational).
const REPORTED_STATUSES = Object.entries(DELIVERY_STATUS_TARGETS).filter(
  (entry): entry is [string, RecipientState] => entry[1] !== null,
);

// The target state of a provider status, and that state's rank, as CASE expressions built from the code's
// tables: joining a parameter list of them cost two hash joins over every event (~1 ms in 60 per statement).
const TARGET_OF = (status: string) =>
  `CASE ${status} ${REPORTED_STATUSES.map(([name, target]) => `WHEN '${name}' THEN '${target}'`).join(" ")} END`;
const TARGET_RANK_OF = (status: string) =>
  `CASE ${status} ${REPORTED_STATUSES.map(([name, target]) => `WHEN '${name}' THEN ${RECIPIENT_STATE_RANKS[target]}`).join(" ")} END`;
// The rank of a recipient state as a CASE over the enum, built from the same table: per updated row this
// is a few enum comparisons, where a lookup in the ranks list was a sub-plan per row.
const RANK_OF_STATE = (state: string) =>
  `CASE ${state} ${RANKED_STATES.map((name, i) => `WHEN '${name}' THEN ${RANKS[i]}`).join(" ")} END`;

// The number in E.164 whatever form the provider echoes it in ("+65…", "65…", "0065…"); e-mail targets
// of custom-messages are found by message_id instead.
const E164_OF = (text: string) => `'+' || regexp_replace(regexp_replace(${text}, '\\D', '', 'g'), '^00', '')`;
// Unix seconds or milliseconds, as text; anything else is NULL.
const TIME_OF = (text: string) =>
  `CASE WHEN (${text}) ~ '^\\d{9,13}$' THEN to_timestamp(CASE WHEN length(${text}) > 11 THEN (${text})::numeric / 1000 ELSE (${text})::numeric END) END`;

/**
 * The delivery_event_key of every event of a stored `row` (an event object or an array of them), read from
 * the JSON: for rows stored without `events` (receivers of the previous release). The receiver computes
 * the same with src/model/delivery-keys.ts; test/delivery-keys.test.ts checks that both agree.
 */
export const KEYS_OF_JSON = (row: string) => `ARRAY(
   SELECT ROW(
     CASE WHEN x.r->'custom_args'->>'batch_id' ~ ${UUID_RE} THEN (x.r->'custom_args'->>'batch_id')::uuid END,
     lower(x.r->'custom_args'->>'campaign_id'),
     ${CAMPAIGN_OF_ROW("x.r")},
     ${E164_OF("coalesce(x.r->>'to', '')")},
     x.r #>> '{status,message_status}',
     coalesce(${TIME_OF("x.r #>> '{status,status_data,msg_time}'")}, ${TIME_OF("x.r->>'itime'")}),
     x.r #>> '{status,error_code}',
     x.r #>> '{status,error_detail,message}',
     CASE WHEN x.r #>> '{status,billing,cost}' ~ '^-?\\d{1,6}(\\.\\d+)?$' THEN (x.r #>> '{status,billing,cost}')::numeric END,
     nullif(x.r #>> '{status,billing,currency}', ''),
     nullif(x.r->>'message_id', '')
   )::delivery_event_key
   FROM jsonb_array_elements(CASE WHEN jsonb_typeof(${row}) = 'array' THEN ${row} ELSE jsonb_build_array(${row}) END)
     WITH ORDINALITY AS x(r, o)
   ORDER BY x.o)`;

/** A report of nothing applied yet, to add each statement's counts to. */
export function emptyApplyReport(): ApplyReport {
  return {
    picked: 0,
    rows: 0,
    applied: 0,
    changed: 0,
    ignored: 0,
    unmatched: 0,
    waiting: 0,
    optOuts: 0,
    byStatus: {},
    delays: [],
  };
}

/**
 * The applier's statement. Work list: callback rows (`received`, an array of events each) and single
 * events of older receivers (`pending`), oldest due first, whole rows up to `limit` events, locked SKIP
 * LOCKED as the work list is read, so a concurrent applier (DELIVERY_APPLY_PARALLEL) reads the next rows
 * instead of finding the same ones locked and stopping. Each event finds its recipient by primary key:
 * custom_args.batch_id → the batch's (campaign, sequence), checked against custom_args.campaign_id, plus
 * the number in E.164 (the UPDATE's primary-key probe; never a hash of all recipients); events
 * without custom_args (custom-messages) by message_id through the partial index. Of several events for one
 * recipient the highest rank wins; the UPDATE re-checks the rank under the row lock, so concurrent appliers
 * cannot move a state backwards. Each callback row then gets its outcome; a row whose events ended
 * differently (applied / waiting / unmatched / ignored, or several campaigns) is split into one row per
 * outcome and campaign, so every event is counted once and a waiting one is retried alone. Only counts
 * come back (one row per outcome and status, one per delay), never a row per event.
 */
const APPLY_SQL = `WITH received AS (
   SELECT id, row_count, next_attempt_at FROM delivery_events
   WHERE outcome = 'received' AND next_attempt_at <= now() ORDER BY next_attempt_at, id LIMIT $4
   FOR UPDATE SKIP LOCKED
 ),
 pending AS (
   SELECT id, row_count, next_attempt_at FROM delivery_events
   WHERE outcome = 'pending' AND next_attempt_at <= now() AND row->>'type' IS DISTINCT FROM 'uplink'
   ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED
 ),
 candidates AS (
   SELECT id, row_count, sum(row_count) OVER (ORDER BY next_attempt_at, id) AS upto FROM (
     SELECT * FROM received UNION ALL SELECT * FROM pending
   ) c
 ),
 picked AS MATERIALIZED (
   SELECT e.id, e.source, e.row, e.events, e.received_at, e.attempts FROM delivery_events e
   WHERE e.id = ANY (ARRAY(SELECT id FROM candidates WHERE upto - row_count < $1))
     AND e.outcome IN ('received', 'pending') AND e.next_attempt_at <= now()
   FOR UPDATE SKIP LOCKED
 ),
 ev AS (
   SELECT p.id AS row_id, k.ord, p.received_at, k.status, k.campaign_text, k.campaign_id AS args_campaign,
     k.batch_id, k.phone, k.message_id, coalesce(k.event_time, p.received_at) AS event_time,
     k.error_code, k.error_message, k.cost, k.currency
   FROM picked p
   CROSS JOIN LATERAL unnest(coalesce(p.events, ${KEYS_OF_JSON("p.row")}))
     WITH ORDINALITY AS k(batch_id, campaign_text, campaign_id, phone, status, event_time, error_code, error_message, cost, currency, message_id, ord)
 ),
 -- The few batches the events name, each by its primary key: joining batches itself hashed the whole
 -- table (every campaign's batches) per statement whenever the planner's estimate of ev was off.
 named_batches AS MATERIALIZED (
   SELECT b.id, b.campaign_id, b.sequence, b.state FROM batches b
   WHERE b.id = ANY (ARRAY(SELECT DISTINCT batch_id FROM ev WHERE batch_id IS NOT NULL))
 ),
 keyed AS MATERIALIZED (
   SELECT ev.row_id, ev.ord, ev.received_at, ev.status, ev.campaign_text, ev.args_campaign, ev.message_id,
     ev.event_time, ev.error_code, ev.error_message, ev.cost, ev.currency,
     ${TARGET_OF("ev.status")} AS target, ${TARGET_RANK_OF("ev.status")} AS target_rank, b.id IS NOT NULL AS batch_found,
     -- a pending recipient of a sent batch was accepted with it (recipient-state.ts); message_id matches
     -- are custom-messages recipients, whose rows always have their own state
     coalesce(b.state = 'sent', false) AS batch_sent,
     coalesce(b.campaign_id, rm.campaign_id) AS campaign_id,
     coalesce(b.sequence, rm.batch_sequence) AS seq,
     CASE WHEN b.id IS NOT NULL THEN ev.phone ELSE rm.phone END AS key_phone
   FROM ev
   LEFT JOIN named_batches b ON b.id = ev.batch_id AND b.campaign_id = ev.args_campaign
   LEFT JOIN LATERAL (
     SELECT r.campaign_id, r.batch_sequence, r.phone FROM recipients r
     WHERE b.id IS NULL AND ev.message_id IS NOT NULL AND r.message_id = ev.message_id LIMIT 1
   ) rm ON true
 ),
 -- Per recipient, the event to apply: the highest rank, the latest of equals. Sorted in byte order
 -- (COLLATE "C"): the database's linguistic collation made this sort a sixth of the statement. Whether it moves the
 -- recipient is the UPDATE's own rank check under the row lock, so recipients are not read beforehand.
 best AS MATERIALIZED (
   SELECT DISTINCT ON (campaign_id, seq, key_phone COLLATE "C") campaign_id, seq, key_phone, batch_sent, target, target_rank, event_time,
     error_code, error_message, cost, currency, status, received_at
   FROM keyed
   WHERE target IS NOT NULL AND campaign_id IS NOT NULL
   ORDER BY campaign_id, seq, key_phone COLLATE "C", target_rank DESC, event_time DESC
 ),
 -- The price may come on any of the recipient's events, not only on the one that wins: for the few winners
 -- without a cost or a currency, the recipient's others. (A window over best's sort did this for every
 -- recipient: ~3 ms of a 60 ms statement, where this costs nothing when every winner is priced.)
 priced AS MATERIALIZED (
   SELECT k.campaign_id, k.seq, k.key_phone, max(k.cost) AS any_cost, max(k.currency) AS any_currency FROM keyed k
   WHERE (k.cost IS NOT NULL OR k.currency IS NOT NULL) AND k.target IS NOT NULL
     AND (k.campaign_id, k.seq, k.key_phone) IN (SELECT campaign_id, seq, key_phone FROM best WHERE cost IS NULL OR currency IS NULL)
   GROUP BY k.campaign_id, k.seq, k.key_phone
 ),
 moved AS (
   UPDATE recipients r SET state = best.target::"RecipientState",
     delivered_at = CASE WHEN best.target = 'delivered' THEN best.event_time ELSE r.delivered_at END,
     reported_at = best.event_time,
     delivery_error_code = CASE WHEN best.target IN ('failed', 'undelivered') THEN best.error_code ELSE r.delivery_error_code END,
     delivery_error_message = CASE WHEN best.target IN ('failed', 'undelivered') THEN best.error_message ELSE r.delivery_error_message END,
     failure_message = CASE WHEN best.target = 'failed' THEN coalesce(best.error_message, 'refused by the provider') ELSE r.failure_message END,
     cost = coalesce(best.cost, pr.any_cost, r.cost), currency = coalesce(best.currency, pr.any_currency, r.currency), updated_at = now()
   FROM best LEFT JOIN priced pr ON pr.campaign_id = best.campaign_id AND pr.seq = best.seq AND pr.key_phone = best.key_phone
   WHERE r.campaign_id = best.campaign_id AND r.batch_sequence = best.seq AND r.phone = best.key_phone
     -- a recipient whose send is not recorded yet (pending, its batch not sent) waits; otherwise only forward
     AND (r.state <> 'pending' OR best.batch_sent)
     AND ${RANK_OF_STATE(recipientStateIfSentSql("r", "best.batch_sent"))} < best.target_rank
   RETURNING best.received_at
 ),
 -- Each event's outcome. When every recipient with an event moved (the usual case), each of their events
 -- is applied and no recipient is read again; otherwise the recipient is looked up (pending: the event
 -- waits; missing: unmatched; any other state: applied, changing nothing).
 classified AS MATERIALIZED (
   SELECT m.row_id, m.ord, m.status, coalesce(m.campaign_id, m.args_campaign) AS campaign_id,
     CASE
       WHEN m.target IS NULL THEN 'ignored'
       WHEN m.campaign_id IS NOT NULL AND (SELECT count(*) FROM moved) = (SELECT count(*) FROM best) THEN 'applied'
       ELSE (
         SELECT CASE
           WHEN (cur.state = 'pending' AND NOT m.batch_sent) OR (cur.state IS NULL AND NOT m.batch_found AND m.campaign_text IS NULL AND m.message_id IS NOT NULL)
             THEN CASE WHEN m.received_at < now() - make_interval(secs => $3::double precision / 1000) THEN 'unmatched' ELSE 'waiting' END
           WHEN cur.state IS NULL THEN 'unmatched'
           ELSE 'applied'
         END
         FROM (SELECT (SELECT r.state::text FROM recipients r
                       WHERE r.campaign_id = m.campaign_id AND r.batch_sequence = m.seq AND r.phone = m.key_phone) AS state) cur)
     END AS outcome
   FROM keyed m
 ),
 grouped AS (
   SELECT row_id, outcome, campaign_id, count(*)::int AS n, min(ord) AS first_ord FROM classified
   GROUP BY row_id, outcome, campaign_id
 ),
 placed AS MATERIALIZED (
   SELECT g.*, row_number() OVER (PARTITION BY g.row_id ORDER BY g.first_ord) = 1 AS keeps_row,
     count(*) OVER (PARTITION BY g.row_id) > 1 AS split
   FROM grouped g
 ),
 -- Only split rows rebuild their arrays: most callbacks end all applied, and keep their row as stored.
 split_rows AS (
   SELECT c.row_id, c.outcome, c.campaign_id, jsonb_agg(p.row -> (c.ord::int - 1) ORDER BY c.ord) AS rows,
     CASE WHEN bool_and(p.events IS NOT NULL) THEN array_agg(p.events[c.ord::int] ORDER BY c.ord) END AS events
   FROM classified c JOIN picked p ON p.id = c.row_id
   WHERE c.row_id IN (SELECT row_id FROM placed WHERE split)
   GROUP BY c.row_id, c.outcome, c.campaign_id
 ),
 outcomes AS (
   SELECT g.row_id, g.outcome, g.campaign_id, g.n, g.keeps_row, g.split, s.rows, s.events, p.source, p.received_at, p.attempts
   FROM placed g JOIN picked p ON p.id = g.row_id
   LEFT JOIN split_rows s ON g.split AND s.row_id = g.row_id AND s.outcome = g.outcome
     AND s.campaign_id IS NOT DISTINCT FROM g.campaign_id
 ),
 kept AS (
   UPDATE delivery_events e SET
     outcome = CASE WHEN o.outcome = 'waiting' THEN 'received' ELSE o.outcome END,
     row = CASE WHEN o.split THEN o.rows ELSE e.row END,
     events = CASE WHEN o.split THEN o.events ELSE e.events END,
     row_count = o.n, attempts = e.attempts + 1,
     applied_at = CASE WHEN o.outcome <> 'waiting' THEN now() END,
     next_attempt_at = CASE WHEN o.outcome = 'waiting' THEN now() + make_interval(secs => $2::double precision / 1000) ELSE e.next_attempt_at END,
     campaign_id = coalesce(o.campaign_id, e.campaign_id)
   FROM outcomes o WHERE e.id = o.row_id AND o.keeps_row
   RETURNING 1
 ),
 added AS (
   INSERT INTO delivery_events (source, row, events, row_count, received_at, outcome, attempts, next_attempt_at, applied_at, campaign_id)
   SELECT o.source, o.rows, o.events, o.n, o.received_at, CASE WHEN o.outcome = 'waiting' THEN 'received' ELSE o.outcome END, o.attempts + 1,
     CASE WHEN o.outcome = 'waiting' THEN now() + make_interval(secs => $2::double precision / 1000) ELSE now() END,
     CASE WHEN o.outcome <> 'waiting' THEN now() END, o.campaign_id
   FROM outcomes o WHERE NOT o.keeps_row
   RETURNING 1
 )
 SELECT 'event' AS kind, outcome, status, count(*)::int AS n, NULL::float8 AS delay_s FROM classified GROUP BY outcome, status
 UNION ALL
 SELECT 'moved', NULL, NULL, count(*)::int, round(extract(epoch FROM now() - received_at)::numeric, 2)::float8 FROM moved GROUP BY 5
 UNION ALL
 SELECT 'rows', NULL, NULL, count(*)::int, NULL FROM picked`;

/**
 * How many work-list rows a statement locks to gather `limit` events. Callbacks carry up to 100 events
 * (often exactly 100), so locking `limit` rows would lock a hundred times too many (each lock is a WAL
 * record), and a LIMIT far above the planner's estimate of ready rows turned the ordered index scan into
 * a scan and sort of the whole work list. So: what the previous statements saw per row, with a quarter
 * more as a margin; a provider sending one event per callback gets `limit` rows and that margin.
 */
export function candidateRows(limit: number, eventsPerRow = 10): number {
  const perRow = Math.min(100, Math.max(1, eventsPerRow));
  return Math.max(2, Math.ceil((limit / perRow) * 1.25));
}

/**
 * Applies up to `limit` stored status events (whole callback rows) in one transaction: replies first, then
 * APPLY_SQL. Returns what happened, counted per event.
 */
export async function applyStoredEvents(db: Database, options: ApplyOptions): Promise<ApplyReport> {
  return withTransaction(db.pool, async (client) => {
    const report = emptyApplyReport();
    await applyReplies(client, options.limit, report, db.phoneHasher);
    const { rows } = await client.query<{
      kind: "event" | "moved" | "rows";
      outcome: string | null;
      status: string | null;
      n: number;
      delay_s: number | null;
    }>(APPLY_SQL, [
      options.limit,
      options.retryDelayMs,
      options.giveUpAfterMs,
      candidateRows(options.limit, options.eventsPerRow),
    ]);
    for (const row of rows) {
      if (row.kind === "rows") {
        report.rows += row.n;
        continue;
      }
      if (row.kind === "moved") {
        report.changed += row.n;
        if (row.delay_s !== null) report.delays.push({ seconds: row.delay_s, count: row.n });
        continue;
      }
      report.picked += row.n;
      switch (row.outcome) {
        case "applied":
          report.applied += row.n;
          report.byStatus[row.status ?? "none"] = (report.byStatus[row.status ?? "none"] ?? 0) + row.n;
          break;
        case "ignored":
          report.ignored += row.n;
          break;
        case "unmatched":
          report.unmatched += row.n;
          break;
        default:
          report.waiting += row.n;
      }
    }
    return report;
  });
}

/**
 * ANALYZE of the work list when PostgreSQL has never gathered its statistics (a new database, a TRUNCATE,
 * autovacuum off or not come round yet): without them the planner guesses a few hundred rows and may
 * scan and sort the whole work list per statement instead of reading its index in order (1.6× slower at
 * 10,000 stored callbacks). Checked at start and on every sweep; a no-op once autovacuum has run.
 */
export async function ensureWorkListStatistics(db: Database): Promise<boolean> {
  const { rows } = await db.pool.query<{ unknown: boolean }>(
    `SELECT reltuples < 0 AS unknown FROM pg_class WHERE oid = 'delivery_events'::regclass`,
  );
  if (!rows[0]?.unknown) return false;
  // Only the columns the work-list queries filter and sort on: the whole table's ANALYZE also decompresses
  // and measures the raw rows and keys, 3.4 s instead of 0.4 s with 10,000 callbacks stored.
  await db.pool.query(`ANALYZE delivery_events (outcome, next_attempt_at, id, campaign_id)`);
  return true;
}

/** In how many ms the next waiting event comes due, by the database's clock (null: none waits). */
export async function nextDeliveryAttemptInMs(db: Database): Promise<number | null> {
  const { rows } = await db.pool.query<{ ms: number | null }>(
    `SELECT (extract(epoch FROM least(
       (SELECT min(next_attempt_at) FROM delivery_events WHERE outcome = 'received'),
       (SELECT min(next_attempt_at) FROM delivery_events WHERE outcome = 'pending' AND row->>'type' IS DISTINCT FROM 'uplink')
     ) - now()) * 1000)::float8 AS ms`,
  );
  return rows[0]?.ms ?? null;
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
  report.rows += rows.length;
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

/**
 * Recipients still awaiting a report after `afterMs` become `no_report` (a late report still lands). Only
 * campaigns started before the cut-off and not yet settled are read, each through its primary-key prefix;
 * a finished campaign with nobody left awaiting is then marked settled and never read again, so the sweep
 * costs the campaigns of the last few days, not the whole history.
 */
export async function markNoReport(db: Database, afterMs: number): Promise<number> {
  const window = `make_interval(secs => $2::double precision / 1000)`;
  const { rows } = await db.pool.query<{ n: number }>(
    `WITH due AS (
       SELECT id FROM campaigns WHERE reports_settled_at IS NULL AND started_at < now() - ${window}
     ), marked AS (
       UPDATE recipients r SET state = 'no_report', updated_at = now() FROM due, batches b
       WHERE r.campaign_id = due.id AND ${batchOfRecipientSql("r", "b")}
         AND ${recipientStateSql("r", "b")} = ANY($1::"RecipientState"[])
         -- a recipient accepted with its batch has no time of its own: the batch's send is its time
         AND (CASE WHEN r.state = 'pending' THEN b.sent_at ELSE coalesce(r.updated_at, b.sent_at) END) < now() - ${window}
       RETURNING 1
     )
     SELECT count(*)::int AS n FROM marked`,
    [AWAITING_REPORT_STATES, afterMs],
  );
  // A separate statement: it must see the rows the one above has just marked.
  await db.pool.query(
    `UPDATE campaigns c SET reports_settled_at = now()
     WHERE c.reports_settled_at IS NULL AND c.finished_at < now() - ${window}
       AND NOT EXISTS (SELECT 1 FROM recipients r JOIN batches b ON ${batchOfRecipientSql("r", "b")}
                       WHERE r.campaign_id = c.id AND ${recipientStateSql("r", "b")} = ANY($1::"RecipientState"[]))`,
    [AWAITING_REPORT_STATES, afterMs],
  );
  return rows[0]?.n ?? 0;
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
    `DELETE FROM delivery_events WHERE outcome NOT IN ('pending', 'received') AND applied_at < now() - make_interval(secs => $1::double precision / 1000)`,
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

/** Stored events by outcome (a callback row counts its row_count events; `received` ones are pending), optionally for one campaign (unmatched ones are kept and counted, never dropped). */
export async function countDeliveryEvents(pool: pg.Pool, campaignId?: string): Promise<DeliveryEventCounts> {
  const { rows } = await pool.query<{ outcome: keyof DeliveryEventCounts; n: number }>(
    `SELECT CASE WHEN outcome = 'received' THEN 'pending' ELSE outcome END AS outcome, sum(row_count)::int AS n
     FROM delivery_events WHERE $1::uuid IS NULL OR campaign_id = $1::uuid GROUP BY 1`,
    [campaignId ?? null],
  );
  const counts: DeliveryEventCounts = { pending: 0, applied: 0, ignored: 0, unmatched: 0 };
  for (const row of rows) counts[row.outcome] = row.n;
  return counts;
}
