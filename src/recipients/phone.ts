import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js";

export type PhoneResult = { ok: true; e164: string } | { ok: false; reason: string };

/**
 * Normalises one raw cell to E.164. Numbers with a leading `+` or `00` are international; others use the
 * default region when one is configured, and are otherwise read as international digits without the `+`
 * (the form EngageLab's own examples use, e.g. 923700056581).
 */
export function normalisePhone(raw: string, defaultRegion?: string): PhoneResult {
  const trimmed = raw.trim();
  if (trimmed === "") return { ok: false, reason: "empty phone number" };
  if (!/^[+\d\s().\-/]+$/.test(trimmed)) return { ok: false, reason: "phone number contains letters or symbols" };
  const digits = trimmed.replace(/\D/g, "");
  if (digits.length < 6 || digits.length > 17) return { ok: false, reason: "phone number has too few or too many digits" };

  let candidate: string;
  let region: CountryCode | undefined;
  if (trimmed.startsWith("+")) candidate = `+${digits}`;
  else if (digits.startsWith("00")) candidate = `+${digits.slice(2)}`;
  else if (defaultRegion) {
    candidate = digits;
    region = defaultRegion as CountryCode;
  } else candidate = `+${digits}`;

  const parsed = parsePhoneNumberFromString(candidate, region);
  if (!parsed) return { ok: false, reason: "not a phone number" };
  if (!parsed.isValid()) return { ok: false, reason: "invalid phone number for its country" };
  return { ok: true, e164: parsed.number };
}
