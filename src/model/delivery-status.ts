import type { RecipientState } from "./states.ts";

/**
 * Delivery reports only move a recipient forward: `accepted → sent → delivered | undelivered`, and
 * `target_invalid` / `sent_failed` end it `failed`. Callbacks are re-sent and arrive out of order
 * (docs/engagelab-apis.md#callback-handling-notes), so an event applies only when the state it leads to
 * ranks strictly higher than the recipient's state now; a repeated or older event changes nothing.
 *
 * One table, two halves: what each provider status leads to, and the rank of every recipient state.
 * src/store/delivery-repository.ts hands both to SQL as arrays, so the rule lives here only.
 */

/** `status.message_status` of EngageLab's message-status callback (docs/engagelab-apis.md#current-platform-callback). */
export const PROVIDER_MESSAGE_STATUSES = [
  "plan",
  "target_valid",
  "target_invalid",
  "sent",
  "sent_failed",
  "delivered",
  "delivered_failed",
] as const;
export type ProviderMessageStatus = (typeof PROVIDER_MESSAGE_STATUSES)[number];

/** The recipient state a provider status leads to; `null`: informational, changes no state. */
export const DELIVERY_STATUS_TARGETS: Readonly<Record<ProviderMessageStatus, RecipientState | null>> = {
  plan: null, // the plan was created: nothing new beyond `accepted`
  target_valid: null, // the number passed the provider's check: still only accepted
  target_invalid: "failed", // refused before sending: the provider's code and message are kept
  sent: "sent", // handed to the carrier
  sent_failed: "failed", // the carrier refused it
  delivered: "delivered", // the handset got it
  delivered_failed: "undelivered", // the carrier could not deliver it
};

/**
 * Rank of each recipient state. A report applies only to a higher rank. `pending` is -1: its send is not
 * recorded yet, so the event waits and is retried (DESIGN "Delivery reports"). `unknown` ranks with
 * `accepted`: a report settles an unanswered request. `no_report` ranks below the report states so a
 * very late report still lands. `cancelled` was never sent and no report moves it.
 */
export const RECIPIENT_STATE_RANKS: Readonly<Record<RecipientState, number>> = {
  pending: -1,
  accepted: 1,
  unknown: 1,
  sent: 2,
  no_report: 3,
  delivered: 4,
  undelivered: 4,
  failed: 4,
  cancelled: 9,
};

/** States that still wait for a report: after the no-report timeout they become `no_report`. */
export const AWAITING_REPORT_STATES = ["accepted", "sent"] as const satisfies readonly RecipientState[];

export type DeliveryDecision =
  | { kind: "apply"; state: RecipientState }
  | { kind: "ignore"; reason: "informational" | "not-forward" | "unknown-status" }
  | { kind: "wait" };

/** What one event does to a recipient in `current` (the SQL applier implements the same rule in bulk). */
export function decideDeliveryEvent(current: RecipientState, status: string): DeliveryDecision {
  if (!(PROVIDER_MESSAGE_STATUSES as readonly string[]).includes(status))
    return { kind: "ignore", reason: "unknown-status" };
  const target = DELIVERY_STATUS_TARGETS[status as ProviderMessageStatus];
  if (target === null) return { kind: "ignore", reason: "informational" };
  if (current === "pending") return { kind: "wait" };
  return RECIPIENT_STATE_RANKS[target] > RECIPIENT_STATE_RANKS[current]
    ? { kind: "apply", state: target }
    : { kind: "ignore", reason: "not-forward" };
}

/**
 * Whole-reply opt-out words (case-insensitive, trimmed): a reply that is exactly one of these adds the
 * number to the suppression list. "stop please" is not an opt-out: carriers' STOP rules match the whole reply.
 */
export const OPT_OUT_KEYWORDS = ["STOP", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"] as const;

export function isOptOutReply(content: string, extraKeywords: readonly string[] = []): boolean {
  const reply = content.trim().toUpperCase();
  return (
    OPT_OUT_KEYWORDS.includes(reply as (typeof OPT_OUT_KEYWORDS)[number]) ||
    extraKeywords.some((k) => k.trim().toUpperCase() === reply)
  );
}
