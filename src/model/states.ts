/**
 * The domain's value lists, named once. prisma/schema.prisma declares the same enums for the database;
 * test/model.test.ts fails when the two drift apart.
 */

/** The three EngageLab send APIs (docs/engagelab-apis.md#platforms-and-credentials), chosen per campaign. */
export const PROVIDER_APIS = ["messages", "legacy", "custom"] as const;
export type ProviderApi = (typeof PROVIDER_APIS)[number];

export const CAMPAIGN_STATUSES = [
  "draft",
  "scheduled",
  "running",
  "paused",
  "completed",
  "failed",
  "cancelled",
] as const;
export type CampaignStatus = (typeof CAMPAIGN_STATUSES)[number];

export const FINAL_CAMPAIGN_STATUSES: readonly CampaignStatus[] = ["completed", "failed", "cancelled"];

export function isFinalStatus(status: string): boolean {
  return (FINAL_CAMPAIGN_STATUSES as readonly string[]).includes(status);
}

/** What to do with a batch whose HTTP outcome is unknown (its worker died mid-request). */
export const UNKNOWN_OUTCOME_POLICIES = ["at_most_once", "resend"] as const;
export type UnknownOutcomePolicy = (typeof UNKNOWN_OUTCOME_POLICIES)[number];

export const BATCH_STATES = [
  "pending",
  "queued",
  "sending",
  "retrying",
  "sent",
  "partial",
  "failed",
  "unknown",
  "cancelled",
] as const;
export type BatchState = (typeof BATCH_STATES)[number];

/** Batches a worker may claim: a job for any other state ends without sending. */
export const CLAIMABLE_BATCH_STATES = ["queued", "retrying"] as const satisfies readonly BatchState[];

/** Batches that still need a worker: the reconciler gives each a job, the campaign is not done while one exists. */
export const OPEN_BATCH_STATES = ["pending", "queued", "sending", "retrying"] as const satisfies readonly BatchState[];

/** Open batches no worker holds: a cancel ends them `cancelled` (a claimed one finishes and is recorded). */
export const UNCLAIMED_OPEN_BATCH_STATES = ["pending", "queued", "retrying"] as const satisfies readonly BatchState[];

/** Batches whose outcome is recorded; nothing changes them any more. */
export const FINAL_BATCH_STATES = [
  "sent",
  "partial",
  "failed",
  "unknown",
  "cancelled",
] as const satisfies readonly BatchState[];

export const RECIPIENT_STATES = [
  "pending",
  "accepted",
  "failed",
  "unknown",
  "cancelled",
  "sent",
  "delivered",
  "undelivered",
  "no_report",
] as const;
export type RecipientState = (typeof RECIPIENT_STATES)[number];

/**
 * A batch left in `sending` longer than the provider timeout plus this margin has no request in flight
 * any more: its worker died, and the unknown-outcome rule applies. The margin covers recording the answer.
 */
export const STALE_CLAIM_MARGIN_MS = 5_000;

export function staleClaimAfterMs(providerTimeoutMs: number): number {
  return providerTimeoutMs + STALE_CLAIM_MARGIN_MS;
}
