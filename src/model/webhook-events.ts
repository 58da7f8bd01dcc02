import type { CampaignStatus } from "./states.ts";

/**
 * What a webhook receives for a campaign status change: one row per status that is announced, naming the
 * event (a `running` campaign was started, or resumed when it comes back from `paused`). Statuses not in the
 * table (`draft`, `scheduled`) are not announced; their changes stay in the outbox and are skipped.
 */
export const WEBHOOK_EVENT_NAMES = ["started", "paused", "resumed", "completed", "failed", "cancelled"] as const;
export type WebhookEventName = (typeof WEBHOOK_EVENT_NAMES)[number];

const EVENT_OF_STATUS: Readonly<Partial<Record<CampaignStatus, (from: CampaignStatus | null) => WebhookEventName>>> = {
  running: (from) => (from === "paused" ? "resumed" : "started"),
  paused: () => "paused",
  completed: () => "completed",
  failed: () => "failed",
  cancelled: () => "cancelled",
};

/** The statuses whose changes are announced (the fan-out skips the others). */
export const ANNOUNCED_STATUSES = Object.keys(EVENT_OF_STATUS) as CampaignStatus[];

export function webhookEventOf(from: CampaignStatus | null, to: CampaignStatus): WebhookEventName | undefined {
  return EVENT_OF_STATUS[to]?.(from);
}

/** The JSON body POSTed to a webhook. `id` is the event's, the same on every attempt: receivers de-duplicate by it. */
export interface WebhookPayload {
  id: string;
  event: WebhookEventName;
  campaignId: string;
  status: CampaignStatus;
  /** Why it was paused, cancelled or failed, when the code that changed the status said so; else null. */
  reason: string | null;
  /** When the status changed (ISO 8601). */
  at: string;
}
