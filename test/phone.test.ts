import { describe, expect, it } from "vitest";
import { normalisePhone } from "../src/recipients/phone.ts";

describe("normalisePhone", () => {
  it.each([
    ["+65 8123 4567", undefined, "+6581234567"],
    ["0065 8123 4567", undefined, "+6581234567"],
    ["6581234567", undefined, "+6581234567"],
    ["8123 4567", "SG", "+6581234567"],
    ["(415) 555-2671", "US", "+14155552671"],
    ["923700056581", undefined, "+923700056581"],
  ])("%s (region %s) → %s", (raw, region, e164) => {
    expect(normalisePhone(raw, region)).toEqual({ ok: true, e164 });
  });

  it.each([
    ["", "empty phone number"],
    ["   ", "empty phone number"],
    ["call me", "phone number contains letters or symbols"],
    ["=cmd()", "phone number contains letters or symbols"],
    ["123", "phone number has too few or too many digits"],
    ["+999 1234 5678", "not a phone number"],
    ["+65 1234 5678", "invalid phone number for its country"],
  ])("rejects %j: %s", (raw, reason) => {
    expect(normalisePhone(raw)).toEqual({ ok: false, reason });
  });
});
