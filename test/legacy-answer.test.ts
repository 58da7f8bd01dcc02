// How a legacy v1/send answer is read (issue 12.6): numbers matched whatever form the provider echoes,
// each failed item recorded with its own reason, and an answer that does not account for every number.
import { describe, expect, it } from "vitest";
import {
  echoedNumberMatcher,
  legacyResult,
  legacyVarProblem,
  validateLegacyParams,
} from "../src/engagelab/legacy-send-api.ts";

const batch = ["+6581000001", "+6581000002", "+447700900123"];

describe("echoedNumberMatcher", () => {
  const match = echoedNumberMatcher(batch);
  it.each([
    ["as sent", "+6581000001", "+6581000001"],
    ["without the +", "6581000002", "+6581000002"],
    ["with spaces and dashes", "+65 8100-0001", "+6581000001"],
    ["with an international 00", "006581000002", "+6581000002"],
    ["national, with a trunk 0", "07700900123", "+447700900123"],
    ["national, without one", "81000001", "+6581000001"],
  ])("%s: %s → %s", (_name, echoed, expected) => {
    expect(match(echoed)).toBe(expected);
  });

  it.each([
    ["not one of the batch", "+6581999999"],
    ["too short to be sure", "0001"],
    ["empty", ""],
    ["letters only", "invalid"],
  ])("%s: %s → none", (_name, echoed) => {
    expect(match(echoed)).toBeUndefined();
  });

  it("a national form two of the batch's numbers end with names neither", () => {
    expect(echoedNumberMatcher(["+6581000001", "+8581000001"])("81000001")).toBeUndefined();
  });
});

describe("legacyResult", () => {
  it("a 41031 answer echoed without +: each failed item its own message, no code; the rest accepted with sms_ids", () => {
    const result = legacyResult(batch, {
      code: 41031,
      success_count: 2,
      sms_ids: ["1_15_3_11_a$6581000001", "1_15_3_11_b$447700900123"],
      failed_count: 1,
      failed_items: [{ phone: "6581000002", message: "Invalid phone number format" }],
    });
    expect(result).toEqual({
      totalCount: 3,
      acceptedCount: 2,
      accepted: [
        { phone: "+6581000001", smsId: "1_15_3_11_a$6581000001" },
        { phone: "+447700900123", smsId: "1_15_3_11_b$447700900123" },
      ],
      failed: [{ phone: "+6581000002", message: "Invalid phone number format" }],
      unaccountedFor: 0,
    });
  });

  it("a failed item that is none of ours: only sms_id-proven numbers accepted, the others unaccounted for", () => {
    const result = legacyResult(batch, {
      code: 41031,
      success_count: 2,
      sms_ids: ["x$+6581000001"],
      failed_items: [{ phone: "123", message: "Invalid phone number format" }],
    });
    expect(result.accepted).toEqual([{ phone: "+6581000001", smsId: "x$+6581000001" }]);
    expect(result.failed).toEqual([]);
    expect(result.unaccountedFor).toBe(2);
  });

  it("a success_count short of the numbers not refused: the unproven ones are unaccounted for", () => {
    const result = legacyResult(batch, { success_count: 1, sms_ids: ["x$+6581000002"] });
    expect(result).toMatchObject({ acceptedCount: 1, accepted: [{ phone: "+6581000002" }], unaccountedFor: 2 });
  });

  it("a full success without success_count (the seed's example) accepts every number", () => {
    const result = legacyResult(batch, { sms_ids: [] });
    expect(result).toMatchObject({ acceptedCount: 3, unaccountedFor: 0 });
    expect(result.accepted.map((a) => a.phone)).toEqual(batch);
  });

  it("a failed item without a message still says why", () => {
    const result = legacyResult(batch.slice(0, 2), {
      code: 41031,
      success_count: 1,
      failed_items: [{ phone: "+6581000001" }],
    });
    expect(result.failed).toEqual([{ phone: "+6581000001", message: "refused by the provider (no reason given)" }]);
  });
});

describe("legacy vars rules (seed 001)", () => {
  it.each([
    ["16 characters", "x".repeat(16), 16, undefined],
    ["17 characters", "x".repeat(17), 16, /17 characters; legacy v1\/send takes at most 16/],
    ["17 characters, no limit", "x".repeat(17), 0, undefined],
    ["emoji counted as characters", "🎉".repeat(16), 16, undefined],
    ["an http link", "http://a.io", 16, /contains a link/],
    ["an HTTPS link in capitals", "HTTPS://A.IO", 0, /contains a link/],
    ["a www. address", "www.shop.sg", 16, /contains a link/],
    ["a plain word", "Tuesday", 16, undefined],
  ])("%s", (_name, value, max, expected) => {
    const problem = legacyVarProblem(value, max);
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(expected);
  });

  it("a fixed param the provider would refuse names the variable and stores nothing", () => {
    expect(() => validateLegacyParams({ week: "Tuesday", promo: "see https://x.sg" }, 16)).toThrow(
      /template variable "promo": contains a link; .*nothing was stored/,
    );
    expect(() => validateLegacyParams({ week: "Tuesday" }, 16)).not.toThrow();
  });
});
