// src/recipients/phone-fast-path.ts on its own: that it answers by itself for plain numbers (what it is for)
// and hands every other number to the library. test/phone.test.ts checks that its answers match the library's.
// Its own file, so its per-calling-code caches start empty here: the first test builds every plan it checks,
// which is what a mutation run (vitest.mutation.config.ts, per-test coverage) needs to see.
import { getCountryCallingCode, type CountryCode } from "libphonenumber-js/max";
import mobileExamples from "libphonenumber-js/mobile/examples";
import { describe, expect, it } from "vitest";
import { fastInternationalNumber, fastNationalNumber } from "../src/recipients/phone-fast-path.ts";
import { judgePhoneNumber } from "../src/recipients/phone.ts";

const countries = Object.entries(mobileExamples) as Array<[CountryCode, string]>;

describe("the compiled-pattern fast path", () => {
  // The fast path is there to answer by itself: a number it hands back to the library costs the ~4 µs it saves.
  // Its module comment lists when it must defer; every country's example mobile is a plain number except these.
  const DEFERS_INTERNATIONAL = ["AR"]; // a mobile's "9" after +54 is a national-prefix transform
  const DEFERS_NATIONAL = ["AR", "KZ"]; // AR as above; KZ's example starts with its calling code 7
  it("answers by itself, as the library does, for every country's example mobile but the listed few", () => {
    for (const [code, example] of countries) {
      const international = `+${getCountryCallingCode(code)}${example}`;
      const fast = fastInternationalNumber(international);
      if (DEFERS_INTERNATIONAL.includes(code)) expect(fast, international).toBeNull();
      else expect(fast, international).toEqual(judgePhoneNumber(international, undefined, false));
      const national = fastNationalNumber(example, code);
      if (DEFERS_NATIONAL.includes(code)) expect(national, `${example} in ${code}`).toBeNull();
      else expect(national, `${example} in ${code}`).toEqual(judgePhoneNumber(example, code, false));
    }
  });

  it.each<[string, CountryCode | undefined]>([
    ["+80012345678", undefined], // non-geographic calling codes have no country plan
    ["+87012345678", undefined],
    ["+88213456789", undefined],
    ["+0123456789", undefined],
    ["+651", undefined], // national part shorter than any plan
    ["+6", undefined],
    [`+65${"8".repeat(18)}`, undefined], // longer than any plan
    [`+1${"2".repeat(18)}`, undefined],
    ["+9991234567", undefined], // no such calling code, any length of prefix
    ["+6581234567", "SG"], // already international
    ["07400123456", "GB"], // national prefix
    ["011447400123456", "US"], // international dialling prefix
    ["6581234567", "SG"], // the calling code repeated
    ["7", "SG"],
    ["8".repeat(18), "SG"],
  ])("defers %s (region %s) to the library, which judges it", (candidate, region) => {
    const fast = region === undefined ? fastInternationalNumber(candidate) : fastNationalNumber(candidate, region);
    expect(fast).toBeNull();
    expect(judgePhoneNumber(candidate, region, true)).toEqual(judgePhoneNumber(candidate, region, false));
  });

  it.each(["XX", "sg", "001"])(
    "defers national digits in a region it has no plan for (%s) to the library",
    (region) => {
      // normalisePhone hands its defaultRegion on as it was given; the library then finds no such country.
      expect(fastNationalNumber("81234567", region as CountryCode)).toBeNull();
      expect(judgePhoneNumber("81234567", region as CountryCode, true)).toBeUndefined();
    },
  );

  it("reads only `+` numbers as international", () => {
    // "65 81234567" without the plus would otherwise start like +58 (Venezuela).
    expect(fastInternationalNumber("6581234567")).toBeNull();
    expect(fastInternationalNumber("006581234567")).toBeNull();
  });

  it.each([
    "+6512", // the shortest national number the library reads
    `+1${"2".repeat(17)}`, // the longest
    "+2901234", // a four-digit plan
    "+8613812345678", // a two-digit calling code
    "+97150123456", // a three-digit calling code
    "+4420794609580", // one digit too many for the plan
  ])("answers %s by itself, exactly as the library does", (candidate) => {
    const fast = fastInternationalNumber(candidate);
    expect(fast).not.toBeNull();
    expect(fast).toEqual(judgePhoneNumber(candidate, undefined, false));
  });
});
