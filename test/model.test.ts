// The domain's value lists (src/model/states.ts) and the database's enums (prisma/schema.prisma) are one
// list each: this fails when one changes without the other.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  CAMPAIGN_TRANSITIONS,
  canTransition,
  assertTransition,
  InvalidTransitionError,
} from "../src/model/campaign-state.ts";
import { UserError } from "../src/model/errors.ts";
import * as states from "../src/model/states.ts";

const schema = readFileSync(new URL("../prisma/schema.prisma", import.meta.url), "utf8");

function prismaEnum(name: string): string[] {
  const body = new RegExp(`enum ${name} \\{([^}]*)\\}`).exec(schema)?.[1];
  if (body === undefined) throw new Error(`enum ${name} not in schema.prisma`);
  return body
    .split("\n")
    .map((line) => line.replace(/\/\/.*/, "").trim())
    .filter(Boolean);
}

describe("model value lists match the Prisma enums", () => {
  it.each([
    ["ProviderApi", states.PROVIDER_APIS],
    ["CampaignStatus", states.CAMPAIGN_STATUSES],
    ["UnknownOutcomePolicy", states.UNKNOWN_OUTCOME_POLICIES],
    ["BatchState", states.BATCH_STATES],
    ["RecipientState", states.RECIPIENT_STATES],
  ])("%s", (name, list) => {
    expect([...list]).toEqual(prismaEnum(name));
  });

  it("every batch state is exactly one of open or final", () => {
    const open = new Set<string>(states.OPEN_BATCH_STATES);
    const final = new Set<string>(states.FINAL_BATCH_STATES);
    for (const s of states.BATCH_STATES) expect(open.has(s) !== final.has(s)).toBe(true);
    for (const s of [...states.CLAIMABLE_BATCH_STATES, ...states.UNCLAIMED_OPEN_BATCH_STATES])
      expect(open.has(s)).toBe(true);
  });

  it("the transition table covers every status, and refusals are conflicts naming what is allowed", () => {
    expect(Object.keys(CAMPAIGN_TRANSITIONS).sort()).toEqual([...states.CAMPAIGN_STATUSES].sort());
    for (const from of states.CAMPAIGN_STATUSES) {
      for (const to of states.CAMPAIGN_STATUSES) {
        expect(canTransition(from, to)).toBe(CAMPAIGN_TRANSITIONS[from].includes(to));
      }
      expect(CAMPAIGN_TRANSITIONS[from].length === 0).toBe(states.isFinalStatus(from));
    }
    const refusal = (() => {
      try {
        assertTransition("c1", "completed", "running");
      } catch (error) {
        return error;
      }
    })();
    expect(refusal).toBeInstanceOf(InvalidTransitionError);
    expect(refusal).toBeInstanceOf(UserError);
    expect(refusal).toMatchObject({
      code: "invalid_transition",
      kind: "conflict",
      message: "Campaign c1 is completed; it cannot become running (completed is final)",
    });
  });

  // Written out here, not read from the table: a transition added or dropped there must be changed here too.
  const ALLOWED = new Set([
    "draft→scheduled",
    "draft→running",
    "draft→cancelled",
    "scheduled→running",
    "scheduled→paused",
    "scheduled→cancelled",
    "running→paused",
    "running→completed",
    "running→failed",
    "running→cancelled",
    "paused→running",
    "paused→scheduled",
    "paused→cancelled",
  ]);

  it.each(states.CAMPAIGN_STATUSES.flatMap((from) => states.CAMPAIGN_STATUSES.map((to) => [from, to] as const)))(
    "%s → %s is allowed exactly when the state machine says so",
    (from, to) => {
      const allowed = ALLOWED.has(`${from}→${to}`);
      expect(canTransition(from, to)).toBe(allowed);
      if (allowed) expect(() => assertTransition("c1", from, to)).not.toThrow();
      else expect(() => assertTransition("c1", from, to)).toThrow(InvalidTransitionError);
    },
  );

  it("a refusal from a state with a way out lists every status it may become", () => {
    const refusal = (() => {
      try {
        assertTransition("c7", "paused", "completed");
      } catch (error) {
        return error;
      }
    })();
    expect(refusal).toMatchObject({
      name: "InvalidTransitionError",
      code: "invalid_transition",
      kind: "conflict",
      campaignId: "c7",
      from: "paused",
      to: "completed",
      message:
        "Campaign c7 is paused; it cannot become completed (from paused it can become: running, scheduled, cancelled)",
    });
  });

  it("the stale-claim rule is the provider timeout plus the recording margin", () => {
    expect(states.staleClaimAfterMs(10_000)).toBe(15_000);
  });
});
