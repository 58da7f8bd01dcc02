import { UserError } from "./errors.ts";
import type { CampaignStatus } from "./states.ts";

/**
 * The campaign state machine. `paused` is reachable from `scheduled` and `running`; the three final
 * states have no way out. Every status change in the store checks this table under a row lock.
 */
export const CAMPAIGN_TRANSITIONS: Readonly<Record<CampaignStatus, readonly CampaignStatus[]>> = {
  draft: ["scheduled", "running", "cancelled"],
  scheduled: ["running", "paused", "cancelled"],
  running: ["paused", "completed", "failed", "cancelled"],
  paused: ["running", "scheduled", "cancelled"],
  completed: [],
  failed: [],
  cancelled: [],
};

export class InvalidTransitionError extends UserError {
  override name = "InvalidTransitionError";
  constructor(
    readonly campaignId: string,
    readonly from: CampaignStatus,
    readonly to: CampaignStatus,
  ) {
    const allowed = CAMPAIGN_TRANSITIONS[from];
    super(
      "invalid_transition",
      `Campaign ${campaignId} is ${from}; it cannot become ${to}` +
        (allowed.length ? ` (from ${from} it can become: ${allowed.join(", ")})` : ` (${from} is final)`),
      { kind: "conflict" },
    );
  }
}

export function canTransition(from: CampaignStatus, to: CampaignStatus): boolean {
  return CAMPAIGN_TRANSITIONS[from].includes(to);
}

export function assertTransition(campaignId: string, from: CampaignStatus, to: CampaignStatus): void {
  if (!canTransition(from, to)) throw new InvalidTransitionError(campaignId, from, to);
}
