import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseProviderJson, ResponseParseError, readId } from "../src/engagelab/json-body.ts";
import { parseRetryAfter } from "../src/engagelab/http-client.ts";

describe("parseProviderJson", () => {
  it("keeps 64-bit ids exact where JSON.parse rounds them", () => {
    const text =
      '{"plan_id":"1972492618659033088","total_count":1,"accepted_count":1,"schedule_info":{"task_id":1972492621368553472}}';
    expect(String((JSON.parse(text) as { schedule_info: { task_id: number } }).schedule_info.task_id)).not.toBe(
      "1972492621368553472",
    );
    const body = parseProviderJson(text) as { schedule_info: { task_id: unknown }; total_count: unknown };
    expect(readId(body.schedule_info.task_id)).toBe("1972492621368553472");
    expect(body.total_count).toBe(1);
  });

  it("says what is wrong with a body that is not JSON", () => {
    expect(() => parseProviderJson("<html>502 Bad Gateway</html>")).toThrow(ResponseParseError);
    expect(() => parseProviderJson("<html>502 Bad Gateway</html>")).toThrow(/not valid JSON.*<html>/);
  });

  it("refuses deep nesting with a clear error instead of overflowing the stack", () => {
    const deep = "[".repeat(200_000) + "]".repeat(200_000);
    expect(() => parseProviderJson(deep)).toThrow(ResponseParseError);
  });

  it("never throws anything but ResponseParseError on arbitrary input", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.stringMatching(/^-?\d{1,40}(\.\d{1,30})?$/)), (text) => {
        try {
          parseProviderJson(text);
        } catch (error) {
          expect(error).toBeInstanceOf(ResponseParseError);
        }
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("parseRetryAfter", () => {
  it("reads seconds and HTTP dates", () => {
    expect(parseRetryAfter("2")).toBe(2_000);
    expect(parseRetryAfter("Thu, 26 Nov 2026 00:00:10 GMT", Date.parse("Thu, 26 Nov 2026 00:00:00 GMT"))).toBe(10_000);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});
