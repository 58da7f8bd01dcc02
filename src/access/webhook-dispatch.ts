import type { Config } from "../config/config.ts";
import type { Logger } from "../config/logger.ts";
import { ANNOUNCED_STATUSES, webhookEventOf, type WebhookPayload } from "../model/webhook-events.ts";
import type { Database } from "../store/database.ts";
import {
  claimDueDeliveries,
  fanOutCampaignEvents,
  purgeWebhookHistory,
  recordDeliveryAttempt,
  type ClaimedDelivery,
  type DeliveryRecord,
} from "../store/webhook-repository.ts";
import type { WebhookAnswer } from "../webhooks/webhook-client.ts";
import { webhookSignature, webhookSigningKey, webhookUrlForDisplay } from "./webhooks.ts";

/** The HTTP side (WebhookClient): one POST with a hard deadline, no redirect followed, never throwing. */
export interface WebhookPoster {
  post(url: string, headers: Record<string, string>, body: string): Promise<WebhookAnswer>;
}

export interface WebhookDispatchDeps {
  db: Database;
  log: Logger;
  config: Pick<Config, "webhooks">;
  poster: WebhookPoster;
  nowMs?: () => number;
  random?: () => number;
}

/** Events fanned out per statement, and deliveries claimed (so POSTs in flight) per process at a time. */
const FAN_OUT_BATCH = 500;
export const DELIVERIES_IN_FLIGHT = 16;
/** A claimed attempt's lease beyond its POST deadline: time to record the answer before another process may retry it. */
const LEASE_MARGIN_MS = 10_000;
/** Fanned-out events with nothing left to deliver are deleted after this long (their deliveries with them). */
export const WEBHOOK_HISTORY_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * The delay before attempt `attempt + 1`: WEBHOOK_BACKOFF_MS doubled per failed attempt, ±20 % jitter (so the
 * deliveries of a receiver that was down do not all return at once), never above WEBHOOK_BACKOFF_MAX_MS.
 */
export function webhookRetryDelayMs(
  attempt: number,
  policy: Pick<Config["webhooks"], "backoffMs" | "backoffMaxMs">,
  random: () => number = Math.random,
): number {
  const exponential = policy.backoffMs * 2 ** Math.min(attempt - 1, 30);
  return Math.round(Math.min(policy.backoffMaxMs, exponential * (0.8 + 0.4 * random())));
}

/** What an attempt's answer means: a 2xx delivers; anything else is retried until WEBHOOK_MAX_ATTEMPTS. */
export function decideDelivery(
  attempt: number,
  answer: WebhookAnswer,
  policy: Pick<Config["webhooks"], "backoffMs" | "backoffMaxMs" | "maxAttempts">,
  random?: () => number,
): DeliveryRecord {
  const status = answer.kind === "answered" ? answer.status : null;
  if (status !== null && status >= 200 && status < 300) return { kind: "delivered", status };
  const error = answer.kind === "no-answer" ? answer.error : null;
  if (attempt >= policy.maxAttempts) return { kind: "given-up", status, error };
  return { kind: "retry", status, error, delayMs: webhookRetryDelayMs(attempt, policy, random) };
}

export function webhookPayload(event: ClaimedDelivery["event"]): WebhookPayload | undefined {
  const name = webhookEventOf(event.fromStatus, event.toStatus);
  if (!name) return undefined;
  return {
    id: event.id,
    event: name,
    campaignId: event.campaignId,
    status: event.toStatus,
    reason: event.reason,
    at: event.at.toISOString(),
  };
}

export interface WebhookRound {
  fannedOut: number;
  attempted: number;
  delivered: number;
}

/**
 * One pass of the dispatcher: new outbox events become deliveries, then due deliveries are claimed and POSTed
 * (DELIVERIES_IN_FLIGHT at a time, until none is due). Without WEBHOOK_SIGNING_SECRET nothing is sent: the
 * deliveries wait, and `unsigned` says when some were created in this round.
 */
export async function runWebhookRound(deps: WebhookDispatchDeps): Promise<WebhookRound & { unsigned: boolean }> {
  const { db, config } = deps;
  const round = { fannedOut: 0, attempted: 0, delivered: 0, unsigned: false };
  let created = 0;
  for (;;) {
    const { events, deliveries } = await fanOutCampaignEvents(db, ANNOUNCED_STATUSES, FAN_OUT_BATCH);
    round.fannedOut += events;
    created += deliveries;
    if (events < FAN_OUT_BATCH) break;
  }
  const secret = config.webhooks.signingSecret;
  // Webhooks set while the secret was configured still get their deliveries; they wait for it to return.
  if (secret === undefined) return { ...round, unsigned: created > 0 };
  const leaseMs = config.webhooks.timeoutMs + LEASE_MARGIN_MS;
  for (;;) {
    const claimed = await claimDueDeliveries(db, DELIVERIES_IN_FLIGHT, leaseMs);
    let delivered = 0;
    await Promise.all(
      claimed.map(async (delivery) => {
        if ((await attemptDelivery(deps, secret, delivery)).kind === "delivered") delivered++;
      }),
    );
    round.attempted += claimed.length;
    round.delivered += delivered;
    // A delivered event may let its campaign's next one go (they are sent in order): look again at once.
    if (claimed.length === 0 || (claimed.length < DELIVERIES_IN_FLIGHT && delivered === 0)) break;
  }
  return round;
}

async function attemptDelivery(
  deps: WebhookDispatchDeps,
  secret: string,
  delivery: ClaimedDelivery,
): Promise<DeliveryRecord> {
  const { db, log, config, poster } = deps;
  const payload = webhookPayload(delivery.event);
  // The fan-out only creates deliveries for announced statuses; one that is not (a table changed between
  // releases) is settled without a POST rather than retried for ever.
  if (!payload) {
    const record: DeliveryRecord = { kind: "given-up", status: null, error: "event not announced" };
    await recordDeliveryAttempt(db, delivery, record);
    return record;
  }
  const body = JSON.stringify(payload);
  const timestamp = String(Math.floor((deps.nowMs?.() ?? Date.now()) / 1000));
  const key = webhookSigningKey(secret, delivery.tokenId, delivery.keyVersion);
  const answer = await poster.post(
    delivery.url,
    {
      "content-type": "application/json",
      "user-agent": "smsblast-webhooks",
      "x-smsblast-event": payload.event,
      "x-smsblast-event-id": payload.id,
      "x-smsblast-timestamp": timestamp,
      "x-smsblast-signature": webhookSignature(key, timestamp, body),
    },
    body,
  );
  const record = decideDelivery(delivery.attempt, answer, config.webhooks, deps.random);
  const recorded = await recordDeliveryAttempt(db, delivery, record);
  // The line names the receiver by host and path only: its URL may carry a secret of the receiver's.
  const line = {
    deliveryId: delivery.id,
    eventId: payload.id,
    event: payload.event,
    campaignId: payload.campaignId,
    receiver: webhookUrlForDisplay(delivery.url),
    attempt: delivery.attempt,
    status: record.status,
    ...(record.kind !== "delivered" && record.error ? { error: record.error } : {}),
    ...(record.kind === "retry" ? { retryInMs: record.delayMs } : {}),
    ...(recorded ? {} : { superseded: true }),
  };
  if (record.kind === "delivered") log.debug(line, "webhook delivered");
  else if (record.kind === "retry") log.info(line, "webhook attempt failed; retrying later");
  else log.warn(line, "webhook given up after its last attempt");
  return record;
}

export function purgeOldWebhookHistory(db: Database): Promise<number> {
  return purgeWebhookHistory(db, WEBHOOK_HISTORY_MS);
}
