/**
 * A campaign's provider-specific options, stored as JSON in `campaigns.send_options` and handed to the
 * adapter with every batch. Which API takes which: docs/engagelab-apis.md; launch-campaign.ts refuses an
 * option the chosen API does not take before anything is stored.
 */
export interface SendOptions {
  /** legacy v1/send: sender name, 3-11 letters or digits. */
  from?: string;
  /** legacy v1/send: `msg_type` (2 = international). */
  msgType?: number;
  /** legacy v1/send: SMS label id. */
  labelId?: number;
  /** v1/messages and legacy v1/send: `custom_args`, returned with delivery reports. */
  customArgs?: Record<string, string>;
  /** v1/messages: `schedule_time`, Unix seconds (up to 30 days ahead; see decideScheduleTime). */
  scheduleTime?: number;
  /**
   * Not sent to the provider: replies that are exactly one of these words (besides STOP, UNSUBSCRIBE, …)
   * opt the replying recipient out (`send --opt-out-keyword`).
   */
  optOutKeywords?: string[];
  /**
   * Not sent to the provider: this campaign's own send rate, in messages per second (`send --rate`), paced
   * across every worker by src/queue/rate-gate.ts beside the global and per-platform limits.
   */
  ratePerSecond?: number;
}

/** The highest `--rate` taken: far above any provider account's rate, so only a typo is refused. */
export const MAX_CAMPAIGN_RATE_PER_SECOND = 100_000;
