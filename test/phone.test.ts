import fc from "fast-check";
import { getCountryCallingCode, type CountryCode } from "libphonenumber-js/max";
import mobileExamples from "libphonenumber-js/mobile/examples";
import { describe, expect, it } from "vitest";
import { judgePhoneNumber, normalisePhone, toRegion } from "../src/recipients/phone.ts";

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
    ["' ", "empty phone number"], // a spreadsheet's text mark on an empty cell
    ["call me", "phone number contains letters or symbols"],
    ["=cmd()", "phone number contains letters or symbols"],
    ["123", "phone number has too few or too many digits"],
    ["12345", "phone number has too few or too many digits"],
    // Six and seventeen digits are inside the bounds: the numbering plan judges them.
    ["+123456", "invalid phone number for its country"],
    ["+12345678901234567", "invalid phone number for its country"],
    ["+123456789012345678", "phone number has too few or too many digits"],
    ["+65 8123 4567x", "phone number contains letters or symbols"],
    ["x+65 8123 4567", "phone number contains letters or symbols"],
    ["+999 1234 5678", "not a phone number"],
    ["+65 1234 5678", "invalid phone number for its country"],
  ])("rejects %j: %s", (raw, reason) => {
    expect(normalisePhone(raw)).toEqual({ ok: false, reason });
  });
});

describe("normalisePhone: what spreadsheets do to numbers", () => {
  it.each([
    ["'+65 8123 4567", undefined],
    ["' +65 8123 4567", "US"], // the mark, a space, then an international number: still international
    ["'8123 4567", "SG"],
  ])("drops the leading apostrophe that marks a cell as text: %j (region %s)", (raw, region) => {
    expect(normalisePhone(raw, region)).toEqual({ ok: true, e164: "+6581234567" });
  });

  const scientific = (cell: string) =>
    `number in scientific notation (${cell}): the spreadsheet stored it as a number and lost digits; format the phone column as Text and export again`;
  it.each(["6.59123E+09", "6,59e9", "65E+09", "65.12e+10", "'6.59123E+09"])(
    "refuses %j as a number a spreadsheet turned into scientific notation",
    (raw) => {
      expect(normalisePhone(raw, "SG")).toEqual({ ok: false, reason: scientific(raw.replace("'", "")) });
    },
  );

  it.each(["+6.59E+09", "6.59E+09x", "6.E+09", "E+09"])(
    "takes only a whole cell for scientific notation: %j",
    (raw) => {
      expect(normalisePhone(raw, "SG")).toEqual({ ok: false, reason: "phone number contains letters or symbols" });
    },
  );

  it("says how to fix digits without a country code when no region applies", () => {
    expect(normalisePhone("8123 4567")).toEqual({
      ok: false,
      reason:
        "no country code and no region: write the number with + and its country code, or set --region or a country column",
    });
    // With a region the same digits are a national number; an impossible one is just not a phone number.
    expect(normalisePhone("8123 4567", "SG")).toEqual({ ok: true, e164: "+6581234567" });
    expect(normalisePhone("+999 1234 5678")).toEqual({ ok: false, reason: "not a phone number" });
  });
});

describe("normalisePhone: mobiles only (SMS reaches nothing else)", () => {
  it.each([
    ["+65 6123 4567", "not a mobile number (fixed line)"],
    ["+65 1800 123 4567", "not a mobile number (toll-free)"],
    ["+65 3123 4567", "not a mobile number (VoIP)"],
    ["+44 20 7946 0958", "not a mobile number (fixed line)"],
    ["+44 9090 901234", "not a mobile number (premium rate)"],
    ["+44 70 2462 4220", "not a mobile number (personal number)"],
    ["+44 76 9332 2613", "not a mobile number (pager)"],
    ["+44 55 9649 8100", "not a mobile number (universal access number)"],
    ["+39 847 367", "not a mobile number (shared cost)"],
    ["+39 336 8179 2404", "not a mobile number (voicemail)"],
    ["+800 1234 5678", "not a mobile number (toll-free)"],
    // Singapore mobiles start 801-809, 81-89 or 90-98: +65 8000 xxxx is not allocated.
    ["+65 8000 0001", "invalid phone number for its country"],
  ])("rejects %j: %s", (raw, reason) => {
    expect(normalisePhone(raw)).toEqual({ ok: false, reason });
  });

  it("accepts numbers that may be mobiles (the US does not tell them apart)", () => {
    expect(normalisePhone("+1 415 555 2671")).toEqual({ ok: true, e164: "+14155552671" });
  });

  it("accepts any valid type when mobiles are not required", () => {
    expect(normalisePhone("6123 4567", "SG", { requireMobile: false })).toEqual({ ok: true, e164: "+6561234567" });
    expect(normalisePhone("+65 8000 0001", undefined, { requireMobile: false })).toEqual({
      ok: false,
      reason: "invalid phone number for its country",
    });
  });

  it("reads country codes in any case and refuses unknown ones", () => {
    expect(toRegion(" sg ")).toBe("SG");
    expect(toRegion("XX")).toBeUndefined();
    expect(toRegion("Singapore")).toBeUndefined();
    expect(toRegion("")).toBeUndefined();
  });
});

describe("the compiled-pattern fast path agrees with libphonenumber-js", () => {
  const countries = Object.entries(mobileExamples) as Array<[CountryCode, string]>;

  // Numbers near each country's example mobile: same start, random rest, sometimes another length or a
  // leading 0 or the calling code repeated, so every type, invalid numbers and the library-only cases all occur.
  const nearExample = fc
    .record({
      country: fc.integer({ min: 0, max: countries.length - 1 }),
      keep: fc.nat(),
      tail: fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 16 }),
      lengthChange: fc.integer({ min: -2, max: 2 }),
      prefix: fc.constantFrom("", "", "", "0", "00", "calling code"),
    })
    .map(({ country, keep, tail, lengthChange, prefix }) => {
      const [code, example] = countries[country] as [CountryCode, string];
      const length = Math.max(2, example.length + lengthChange);
      const start = example.slice(0, keep % (example.length + 1));
      const digits = (start + tail.join("")).padEnd(length, "5").slice(0, length);
      const callingCode = getCountryCallingCode(code);
      return { code, national: (prefix === "calling code" ? callingCode : prefix) + digits, callingCode };
    });

  it("in international and national form, for numbers of every country", () => {
    fc.assert(
      fc.property(nearExample, ({ code, national, callingCode }) => {
        expect(judgePhoneNumber(`+${callingCode}${national}`, undefined, true)).toEqual(
          judgePhoneNumber(`+${callingCode}${national}`, undefined, false),
        );
        expect(judgePhoneNumber(national, code, true)).toEqual(judgePhoneNumber(national, code, false));
      }),
      { numRuns: 20_000 },
    );
  });

  it("for every country's example mobile", () => {
    for (const [code, example] of countries) {
      const international = `+${getCountryCallingCode(code)}${example}`;
      expect(judgePhoneNumber(international, undefined, true), international).toEqual(
        judgePhoneNumber(international, undefined, false),
      );
      expect(judgePhoneNumber(example, code, true), `${example} in ${code}`).toEqual(
        judgePhoneNumber(example, code, false),
      );
    }
  });
});

describe("normalisePhone on arbitrary input", () => {
  it("never throws, whatever the text or its length", async () => {
    const fc = (await import("fast-check")).default;
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 200 }), fc.stringMatching(/^\+?[\d ()-]{0,60}$/)),
        fc.constantFrom(undefined, "SG", "US"),
        (raw, region) => {
          const result = normalisePhone(raw, region);
          expect(typeof result.ok).toBe("boolean");
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
