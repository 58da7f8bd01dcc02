import type { CampaignStatus } from "../model/states.ts";
import { withTransaction, type Database } from "./database.ts";

// Outgoing webhooks (docs/webhooks.md): a token's webhook, the campaign_events outbox its trigger fills,
// and the webhook_deliveries the dispatcher works through.

/** Sets a live token's webhook and bumps its key version (a new signing key); null when no live token has that name. */
export async function setTokenWebhook(
  db: Database,
  name: string,
  url: string,
): Promise<{ id: string; name: string; keyVersion: number } | null> {
  const { rows } = await db.pool.query<{ id: string; name: string; webhook_key_version: number }>(
    `UPDATE api_tokens SET webhook_url = $2, webhook_set_at = now(), webhook_key_version = webhook_key_version + 1
     WHERE name = $1 AND revoked_at IS NULL RETURNING id, name, webhook_key_version`,
    [name, url],
  );
  const row = rows[0];
  return row ? { id: row.id, name: row.name, keyVersion: row.webhook_key_version } : null;
}

/**
 * Removes a live token's webhook and gives up its open deliveries (they would otherwise go to whatever URL
 * is set next, however old); null when no live token has that name.
 */
export async function clearTokenWebhook(db: Database, name: string): Promise<{ abandoned: number } | null> {
  const { rows } = await db.pool.query<{ found: boolean; abandoned: number }>(
    `WITH token AS (
       UPDATE api_tokens SET webhook_url = NULL, webhook_set_at = NULL WHERE name = $1 AND revoked_at IS NULL RETURNING id
     ), abandoned AS (
       UPDATE webhook_deliveries d SET given_up_at = now(), last_error = 'webhook cleared'
       FROM token WHERE d.token_id = token.id AND d.delivered_at IS NULL AND d.given_up_at IS NULL RETURNING 1
     )
     SELECT EXISTS (SELECT 1 FROM token) AS found, (SELECT count(*) FROM abandoned)::int AS abandoned`,
    [name],
  );
  return rows[0]?.found ? { abandoned: rows[0].abandoned } : null;
}

export interface WebhookDeliveryCounts {
  /** Not delivered yet and still being tried. */
  open: number;
  delivered: number;
  givenUp: number;
  /** The most recent failed attempt's answer (HTTP status or error), if any. */
  lastFailure: { at: Date; status: number | null; error: string | null } | null;
}

export async function webhookDeliveryCounts(db: Database, tokenId: string): Promise<WebhookDeliveryCounts> {
  const { rows } = await db.pool.query<{
    open: number;
    delivered: number;
    given_up: number;
    failed_at: Date | null;
    last_status: number | null;
    last_error: string | null;
  }>(
    `SELECT c.open, c.delivered, c.given_up, f.last_attempt_at AS failed_at, f.last_status, f.last_error
     FROM (
       SELECT count(*) FILTER (WHERE delivered_at IS NULL AND given_up_at IS NULL)::int AS open,
              count(*) FILTER (WHERE delivered_at IS NOT NULL)::int AS delivered,
              count(*) FILTER (WHERE given_up_at IS NOT NULL)::int AS given_up
       FROM webhook_deliveries WHERE token_id = $1
     ) c
     LEFT JOIN LATERAL (
       SELECT last_attempt_at, last_status, last_error FROM webhook_deliveries
       WHERE token_id = $1 AND last_attempt_at IS NOT NULL AND (last_status IS NULL OR last_status NOT BETWEEN 200 AND 299)
       ORDER BY last_attempt_at DESC LIMIT 1
     ) f ON true`,
    [tokenId],
  );
  const row = rows[0]!;
  return {
    open: row.open,
    delivered: row.delivered,
    givenUp: row.given_up,
    lastFailure: row.failed_at ? { at: row.failed_at, status: row.last_status, error: row.last_error } : null,
  };
}

/** Keys of the transaction-level advisory lock that lets one process at a time fan events out. */
const FAN_OUT_LOCK = [0x736d7362, 0x77686b31] as const; // "smsb", "whk1"

/**
 * Gives up to `limit` events not fanned out yet, oldest first, a delivery for every live webhook that was set
 * before the event happened, and marks them fanned out; events of a status in `announced` only get the mark.
 * One process at a time (an advisory lock; the others skip the round): one campaign's events are then fanned
 * out in id order, which the in-order claim below relies on. The unique (event, token) index makes a
 * repeated fan-out harmless anyway.
 */
export async function fanOutCampaignEvents(
  db: Database,
  announced: readonly CampaignStatus[],
  limit: number,
): Promise<{ events: number; deliveries: number }> {
  return withTransaction(db.pool, async (client) => {
    const { rows: lock } = await client.query<{ locked: boolean }>(
      `SELECT pg_try_advisory_xact_lock($1, $2) AS locked`,
      [...FAN_OUT_LOCK],
    );
    if (!lock[0]?.locked) return { events: 0, deliveries: 0 };
    const { rows } = await client.query<{ events: number; deliveries: number }>(
      `WITH batch AS (
         SELECT id, campaign_id, to_status, created_at FROM campaign_events
         WHERE fanned_out_at IS NULL ORDER BY id LIMIT $2
       ), marked AS (
         UPDATE campaign_events e SET fanned_out_at = now() FROM batch WHERE e.id = batch.id RETURNING 1
       ), created AS (
         INSERT INTO webhook_deliveries (event_id, token_id, campaign_id)
         SELECT b.id, t.id, b.campaign_id FROM batch b
         JOIN api_tokens t ON t.webhook_url IS NOT NULL AND t.revoked_at IS NULL AND t.webhook_set_at <= b.created_at
         WHERE b.to_status = ANY($1::"CampaignStatus"[])
         ORDER BY b.id
         ON CONFLICT (event_id, token_id) DO NOTHING
         RETURNING 1
       )
       SELECT (SELECT count(*) FROM marked)::int AS events, (SELECT count(*) FROM created)::int AS deliveries`,
      [announced, limit],
    );
    return rows[0] ?? { events: 0, deliveries: 0 };
  });
}

/** A delivery a dispatcher holds for one attempt, with what it needs to send it. */
export interface ClaimedDelivery {
  id: string;
  /** This attempt's number (1 = first): recording the outcome checks it, so a stale attempt records nothing. */
  attempt: number;
  tokenId: string;
  keyVersion: number;
  url: string;
  event: {
    id: string;
    campaignId: string;
    fromStatus: CampaignStatus | null;
    toStatus: CampaignStatus;
    reason: string | null;
    at: Date;
  };
}

/**
 * Claims up to `limit` due deliveries for one attempt each: counted, and leased for `leaseMs` (their
 * next_attempt_at moves past the attempt's deadline, so a process that dies mid-POST leaves a delivery that is
 * tried again after the lease, never one that is stuck). FOR UPDATE SKIP LOCKED: processes claiming at the
 * same moment take different rows, and none takes a row another has claimed, since the lease is committed.
 * In order per (token, campaign): a delivery waits while an earlier event of its campaign is still open for its
 * token. Deliveries of revoked tokens and of tokens whose webhook is gone are never claimed.
 */
export async function claimDueDeliveries(db: Database, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
  const { rows } = await db.pool.query<{
    id: string;
    attempts: number;
    token_id: string;
    webhook_key_version: number;
    webhook_url: string;
    event_id: string;
    campaign_id: string;
    from_status: CampaignStatus | null;
    to_status: CampaignStatus;
    reason: string | null;
    created_at: Date;
  }>(
    `WITH due AS (
       SELECT d.id FROM webhook_deliveries d
       JOIN api_tokens t ON t.id = d.token_id AND t.revoked_at IS NULL AND t.webhook_url IS NOT NULL
       WHERE d.delivered_at IS NULL AND d.given_up_at IS NULL AND d.next_attempt_at <= now()
         AND NOT EXISTS (
           SELECT 1 FROM webhook_deliveries p
           WHERE p.token_id = d.token_id AND p.campaign_id = d.campaign_id AND p.event_id < d.event_id
             AND p.delivered_at IS NULL AND p.given_up_at IS NULL
         )
       ORDER BY d.next_attempt_at, d.id
       LIMIT $1
       FOR UPDATE OF d SKIP LOCKED
     )
     UPDATE webhook_deliveries d
     SET attempts = d.attempts + 1, next_attempt_at = now() + $2 * interval '1 millisecond'
     FROM due, api_tokens t, campaign_events e
     WHERE d.id = due.id AND t.id = d.token_id AND e.id = d.event_id
     RETURNING d.id, d.attempts, d.token_id, t.webhook_key_version, t.webhook_url, e.id AS event_id, e.campaign_id,
               e.from_status, e.to_status, e.reason, e.created_at`,
    [limit, leaseMs],
  );
  return rows.map((r) => ({
    id: r.id,
    attempt: r.attempts,
    tokenId: r.token_id,
    keyVersion: r.webhook_key_version,
    url: r.webhook_url,
    event: {
      id: r.event_id,
      campaignId: r.campaign_id,
      fromStatus: r.from_status,
      toStatus: r.to_status,
      reason: r.reason,
      at: r.created_at,
    },
  }));
}

/** How one attempt ended, as the dispatcher decided it. */
export type DeliveryRecord =
  | { kind: "delivered"; status: number }
  | { kind: "retry"; status: number | null; error: string | null; delayMs: number }
  | { kind: "given-up"; status: number | null; error: string | null };

/**
 * Records an attempt's outcome, if the attempt still holds the delivery (same attempt number, still open);
 * false when a later attempt or a webhook change took it over.
 */
export async function recordDeliveryAttempt(
  db: Database,
  delivery: Pick<ClaimedDelivery, "id" | "attempt">,
  record: DeliveryRecord,
): Promise<boolean> {
  const status = record.status;
  const error = record.kind === "delivered" ? null : record.error;
  const { rowCount } = await db.pool.query(
    `UPDATE webhook_deliveries SET last_status = $3, last_error = $4, last_attempt_at = now(),
       delivered_at = CASE WHEN $5 = 'delivered' THEN now() END,
       given_up_at = CASE WHEN $5 = 'given-up' THEN now() END,
       next_attempt_at = CASE WHEN $5 = 'retry' THEN now() + $6 * interval '1 millisecond' ELSE next_attempt_at END
     WHERE id = $1 AND attempts = $2 AND delivered_at IS NULL AND given_up_at IS NULL`,
    [delivery.id, delivery.attempt, status, error, record.kind, record.kind === "retry" ? record.delayMs : 0],
  );
  return rowCount === 1;
}

/**
 * Deletes fanned-out events older than `olderThanMs` with nothing left to deliver (their deliveries go with
 * them): delivered, given up, or for a token that is revoked or has no webhook any more.
 */
export async function purgeWebhookHistory(db: Database, olderThanMs: number): Promise<number> {
  const { rowCount } = await db.pool.query(
    `DELETE FROM campaign_events e
     WHERE e.fanned_out_at < now() - $1 * interval '1 millisecond'
       AND NOT EXISTS (
         SELECT 1 FROM webhook_deliveries d JOIN api_tokens t ON t.id = d.token_id
         WHERE d.event_id = e.id AND d.delivered_at IS NULL AND d.given_up_at IS NULL
           AND t.revoked_at IS NULL AND t.webhook_url IS NOT NULL
       )`,
    [olderThanMs],
  );
  return rowCount ?? 0;
}
