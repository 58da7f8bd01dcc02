// The forward-only delivery rule (src/model/delivery-status.ts), as a table of cases.
import { describe, expect, it } from "vitest";
import {
  decideDeliveryEvent,
  DELIVERY_STATUS_TARGETS,
  isOptOutReply,
  PROVIDER_MESSAGE_STATUSES,
  RECIPIENT_STATE_RANKS,
} from "../src/model/delivery-status.ts";
import { RECIPIENT_STATES, type RecipientState } from "../src/model/states.ts";

describe("delivery status ranks", () => {
  it("rank every recipient state and map every provider status", () => {
    expect(Object.keys(RECIPIENT_STATE_RANKS).sort()).toEqual([...RECIPIENT_STATES].sort());
    expect(Object.keys(DELIVERY_STATUS_TARGETS).sort()).toEqual([...PROVIDER_MESSAGE_STATUSES].sort());
  });

  it.each<[RecipientState, string, ReturnType<typeof decideDeliveryEvent>]>([
    ["accepted", "sent", { kind: "apply", state: "sent" }],
    ["accepted", "delivered", { kind: "apply", state: "delivered" }],
    ["sent", "delivered", { kind: "apply", state: "delivered" }],
    ["sent", "delivered_failed", { kind: "apply", state: "undelivered" }],
    ["accepted", "target_invalid", { kind: "apply", state: "failed" }],
    ["accepted", "sent_failed", { kind: "apply", state: "failed" }],
    // a report settles an unanswered request
    ["unknown", "delivered", { kind: "apply", state: "delivered" }],
    ["unknown", "sent", { kind: "apply", state: "sent" }],
    // a late report still lands after the no-report timeout
    ["no_report", "delivered", { kind: "apply", state: "delivered" }],
    // out of order: `sent` after `delivered` changes nothing
    ["delivered", "sent", { kind: "ignore", reason: "not-forward" }],
    // repeated
    ["delivered", "delivered", { kind: "ignore", reason: "not-forward" }],
    ["sent", "sent", { kind: "ignore", reason: "not-forward" }],
    // finals never move to another final
    ["undelivered", "delivered", { kind: "ignore", reason: "not-forward" }],
    ["delivered", "delivered_failed", { kind: "ignore", reason: "not-forward" }],
    ["failed", "delivered", { kind: "ignore", reason: "not-forward" }],
    ["cancelled", "delivered", { kind: "ignore", reason: "not-forward" }],
    ["no_report", "sent", { kind: "ignore", reason: "not-forward" }],
    // the send is not recorded yet: wait and retry
    ["pending", "delivered", { kind: "wait" }],
    ["accepted", "plan", { kind: "ignore", reason: "informational" }],
    ["accepted", "target_valid", { kind: "ignore", reason: "informational" }],
    ["accepted", "read", { kind: "ignore", reason: "unknown-status" }],
  ])("%s + %s", (current, status, expected) => {
    expect(decideDeliveryEvent(current, status)).toEqual(expected);
  });

  it("opt-out replies are the whole reply, case-insensitive", () => {
    for (const reply of ["STOP", "stop", " Stop\n", "unsubscribe", "Cancel", "END", "quit"])
      expect(isOptOutReply(reply)).toBe(true);
    for (const reply of ["stop please", "STOPP", "", "yes"]) expect(isOptOutReply(reply)).toBe(false);
    expect(isOptOutReply("arrêt", ["ARRÊT"])).toBe(true);
  });
});
