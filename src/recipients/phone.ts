import {
  isSupportedCountry,
  parsePhoneNumberFromString,
  type CountryCode,
  type PhoneNumberType,
} from "libphonenumber-js/max";
import { fastInternationalNumber, fastNationalNumber } from "./phone-fast-path.ts";

export type PhoneResult = { ok: true; e164: string } | { ok: false; reason: string };

export interface NormaliseOptions {
  /** SMS only reaches mobiles: by default a valid number of any other type is a reject. */
  requireMobile?: boolean;
}

/** A parsed number: its E.164 form and its type, or no type when it is invalid for its country. */
export interface JudgedNumber {
  e164: string;
  type: PhoneNumberType | undefined;
}

const TYPE_IN_WORDS: Record<PhoneNumberType, string> = {
  FIXED_LINE: "fixed line",
  MOBILE: "mobile",
  FIXED_LINE_OR_MOBILE: "fixed line or mobile",
  TOLL_FREE: "toll-free",
  PREMIUM_RATE: "premium rate",
  SHARED_COST: "shared cost",
  VOIP: "VoIP",
  PERSONAL_NUMBER: "personal number",
  PAGER: "pager",
  UAN: "universal access number",
  VOICEMAIL: "voicemail",
};

const ALLOWED_CHARS = /^[+\d\s().\-/]+$/;
const NON_DIGITS = /\D/g;
// 6.59123E+09: a spreadsheet that read the column as numbers, and kept only a few digits.
const SCIENTIFIC = /^\d+([.,]\d+)?e\+?\d+$/i;

/** The reason of a number written without a country code when no region applies (the launch summary counts it). */
export const NO_COUNTRY_CODE_REASON =
  "no country code and no region: write the number with + and its country code, or set --region or a country column";

/**
 * Normalises one raw cell to E.164. Numbers with a leading `+` or `00` are international; others use the
 * default region when one is configured, and are otherwise read as international digits without the `+`
 * (the form EngageLab's own examples use, e.g. 923700056581).
 */
export function normalisePhone(raw: string, defaultRegion?: string, options?: NormaliseOptions): PhoneResult {
  let trimmed = raw.trim();
  // A leading apostrophe is a spreadsheet's "keep this as text" mark, not part of the number.
  if (trimmed.charCodeAt(0) === 39 /* ' */) trimmed = trimmed.slice(1).trim();
  if (trimmed === "") return { ok: false, reason: "empty phone number" };
  if (SCIENTIFIC.test(trimmed))
    return {
      ok: false,
      reason: `number in scientific notation (${trimmed}): the spreadsheet stored it as a number and lost digits; format the phone column as Text and export again`,
    };
  if (!ALLOWED_CHARS.test(trimmed)) return { ok: false, reason: "phone number contains letters or symbols" };
  const digits = trimmed.replace(NON_DIGITS, "");
  if (digits.length < 6 || digits.length > 17)
    return { ok: false, reason: "phone number has too few or too many digits" };

  let candidate: string;
  let region: CountryCode | undefined;
  // Digits without + or 00 and no region: read as international digits without the + (EngageLab's own form);
  // if that is no valid number, it was most likely a national number, and the reason says how to fix it.
  let guessedInternational = false;
  if (trimmed.charCodeAt(0) === 43 /* + */) candidate = `+${digits}`;
  else if (digits.startsWith("00")) candidate = `+${digits.slice(2)}`;
  else if (defaultRegion) {
    candidate = digits;
    region = defaultRegion as CountryCode;
  } else {
    candidate = `+${digits}`;
    guessedInternational = true;
  }

  const judged = judgePhoneNumber(candidate, region);
  if (!judged) return { ok: false, reason: guessedInternational ? NO_COUNTRY_CODE_REASON : "not a phone number" };
  const type = judged.type;
  if (type === undefined)
    return {
      ok: false,
      reason: guessedInternational ? NO_COUNTRY_CODE_REASON : "invalid phone number for its country",
    };
  if (options?.requireMobile !== false && type !== "MOBILE" && type !== "FIXED_LINE_OR_MOBILE") {
    return { ok: false, reason: `not a mobile number (${TYPE_IN_WORDS[type]})` };
  }
  return { ok: true, e164: judged.e164 };
}

/**
 * Parses a cleaned candidate (`+digits`, or national digits with a region) with the full ("max") metadata,
 * the only set that knows number types. Undefined when it is not a phone number at all.
 * `useFastPath: false` forces the library's own parser; the tests compare both.
 */
export function judgePhoneNumber(
  candidate: string,
  region?: CountryCode,
  useFastPath = true,
): JudgedNumber | undefined {
  if (useFastPath) {
    const fast = region === undefined ? fastInternationalNumber(candidate) : fastNationalNumber(candidate, region);
    if (fast !== null) return fast;
  }
  const parsed = parsePhoneNumberFromString(candidate, region);
  if (!parsed) return undefined;
  // With types in the metadata, isValid() is getType() !== undefined, so one call answers both.
  return { e164: parsed.number, type: parsed.getType() };
}

/** An ISO 3166 alpha-2 code (any case, surrounding spaces ignored) the phone metadata knows, upper-cased. */
export function toRegion(code: string): CountryCode | undefined {
  const upper = code.trim().toUpperCase();
  return /^[A-Z]{2}$/.test(upper) && isSupportedCountry(upper) ? upper : undefined;
}

/**
 * The digit strings a raw cell holding this number reduces to once its non-digits and leading zeros are
 * dropped: the international form (6591234567 from +65 9123 4567 or 0065…) and the national significant
 * number (91234567, 7911123456 from 07911 123456). `forget` finds a number's rejects and upload cells by them.
 */
export function digitFormsOf(e164: string): string[] {
  const international = e164.replace(NON_DIGITS, "").replace(/^0+/, "");
  const national = parsePhoneNumberFromString(e164)?.nationalNumber.replace(/^0+/, "");
  return [...new Set([international, ...(national ? [national] : [])])];
}
