import { Metadata, type CountryCode, type PhoneNumberType } from "libphonenumber-js/core";
import maxMetadata from "libphonenumber-js/max/metadata";

/*
 * libphonenumber-js rebuilds a RegExp from the metadata text on every check, so parse + getType with the "max"
 * metadata (the only set that knows number types) costs ~4 µs per number: most of a million-row ingest.
 * For plain digits the library's steps reduce to: split off the calling code (or take the default region's),
 * take the rest as the national number, pick the country among those sharing the calling code, test the
 * country's type patterns. This module does exactly that with patterns compiled once per calling code,
 * mirroring parse.js, getCountryByNationalNumber.js and getNumberType.js, and answers null whenever the library
 * would do more (a possible national or international prefix, the calling code repeated after a region,
 * odd lengths, non-geographic codes) so the caller asks the library. test/phone.test.ts checks that both
 * give the same answer for numbers of every country.
 */

/** The parts of the library's numbering-plan object used here (its typings do not declare them). */
interface PlanView {
  IDDPrefix(): string | undefined;
  nationalNumberPattern(): string;
  nationalPrefixForParsing(): string | undefined;
  leadingDigits(): string | undefined;
  hasTypes(): boolean;
  type(type: PhoneNumberType): { pattern(): string; possibleLengths(): number[] | undefined } | undefined;
}

interface TypeRule {
  type: PhoneNumberType;
  pattern: RegExp;
  lengths: readonly number[] | undefined;
}

interface CountryPlan {
  country: CountryCode;
  iddPrefix: RegExp;
  nationalPrefix: RegExp | null;
  leadingDigits: RegExp | null;
  general: RegExp;
  fixedLine: TypeRule | null;
  /** getNumberType calls a fixed-line match FIXED_LINE_OR_MOBILE when the mobile type is absent or deduplicated into it. */
  fixedLineMayBeMobile: boolean;
  mobile: TypeRule | null;
  /** The non-fixed-line types in the library's order, mobile first. */
  others: TypeRule[];
}

/** The countries sharing one calling code, in metadata order: the first is the library's default for the code. */
interface CallingCodePlan {
  callingCode: string;
  countries: CountryPlan[];
}

export interface FastJudgement {
  e164: string;
  type: PhoneNumberType | undefined;
}

// Same order as NON_FIXED_LINE_PHONE_TYPES in libphonenumber-js/source/helpers/getNumberType.js.
const OTHER_TYPES: readonly PhoneNumberType[] = [
  "MOBILE",
  "PREMIUM_RATE",
  "TOLL_FREE",
  "SHARED_COST",
  "VOIP",
  "PERSONAL_NUMBER",
  "PAGER",
  "UAN",
  "VOICEMAIL",
];
const MIN_NATIONAL_LENGTH = 2;
const MAX_NATIONAL_LENGTH = 17;
const MAX_CALLING_CODE_LENGTH = 3;

const callingCodes: Record<string, readonly string[] | undefined> = maxMetadata.country_calling_codes;
/** false: numbers of this calling code always go through the library. */
const plansByCallingCode = new Map<string, CallingCodePlan | false>();

function entirely(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`);
}

function atStart(pattern: string | undefined): RegExp | null {
  return pattern ? new RegExp(`^(?:${pattern})`) : null;
}

function typeRule(plan: PlanView, type: PhoneNumberType): TypeRule | null {
  const definition = plan.type(type);
  const pattern = definition?.pattern();
  if (!definition || !pattern) return null;
  return { type, pattern: entirely(pattern), lengths: definition.possibleLengths() };
}

function countryPlan(country: string): CountryPlan | null {
  const metadata = new Metadata(maxMetadata);
  // Stryker disable next-line all: guards against other metadata; every country the bundled set lists has a plan
  if (country.length !== 2 || !(metadata as unknown as { hasCountry(c: string): boolean }).hasCountry(country))
    return null;
  metadata.selectNumberingPlan(country as CountryCode);
  const plan = metadata.numberingPlan as unknown as PlanView;
  const idd = plan.IDDPrefix();
  // Stryker disable next-line all: guards against other metadata; every bundled country has types and an IDD prefix
  if (!plan.hasTypes() || !idd) return null;
  const mobileDefinition = plan.type("MOBILE");
  return {
    country: country as CountryCode,
    iddPrefix: new RegExp(`^(?:${idd})`),
    nationalPrefix: atStart(plan.nationalPrefixForParsing()),
    leadingDigits: atStart(plan.leadingDigits()),
    general: entirely(plan.nationalNumberPattern()),
    fixedLine: typeRule(plan, "FIXED_LINE"),
    fixedLineMayBeMobile: !mobileDefinition || mobileDefinition.pattern() === "",
    mobile: typeRule(plan, "MOBILE"),
    others: OTHER_TYPES.map((type) => typeRule(plan, type)).filter((rule): rule is TypeRule => rule !== null),
  };
}

function callingCodePlan(callingCode: string): CallingCodePlan | false {
  let plan = plansByCallingCode.get(callingCode);
  // Stryker disable all: a cache (rebuilding it changes only the cost) and a check every bundled calling code passes
  // (test/phone-fast-path.test.ts fails if one does not: that country's example mobile would go to the library)
  if (plan === undefined) {
    plan = false;
    const countries = callingCodes[callingCode]?.map(countryPlan);
    if (countries && countries.length > 0 && countries.every((c) => c !== null)) plan = { callingCode, countries };
    plansByCallingCode.set(callingCode, plan);
  }
  // Stryker restore all
  return plan;
}

function matches(rule: TypeRule | null, nationalNumber: string): boolean {
  if (rule === null) return false;
  if (rule.lengths && !rule.lengths.includes(nationalNumber.length)) return false;
  return rule.pattern.test(nationalNumber);
}

function numberType(plan: CountryPlan, nationalNumber: string): PhoneNumberType | undefined {
  if (!plan.general.test(nationalNumber)) return undefined;
  if (matches(plan.fixedLine, nationalNumber)) {
    return plan.fixedLineMayBeMobile || matches(plan.mobile, nationalNumber) ? "FIXED_LINE_OR_MOBILE" : "FIXED_LINE";
  }
  for (const rule of plan.others) if (matches(rule, nationalNumber)) return rule.type;
  return undefined;
}

/** The library's choice among countries sharing a calling code: leading digits if the country has them, else any valid type. */
function countryOf(plan: CallingCodePlan, nationalNumber: string): CountryPlan | undefined {
  if (plan.countries.length === 1) return plan.countries[0];
  for (const country of plan.countries) {
    if (
      country.leadingDigits !== null
        ? country.leadingDigits.test(nationalNumber)
        : numberType(country, nationalNumber) !== undefined
    ) {
      return country;
    }
  }
  return undefined;
}

function lengthIsPlain(nationalNumber: string): boolean {
  return nationalNumber.length >= MIN_NATIONAL_LENGTH && nationalNumber.length <= MAX_NATIONAL_LENGTH;
}

/** `+digits` → E.164 and type (undefined: invalid), or null when the library must decide. */
export function fastInternationalNumber(candidate: string): FastJudgement | null {
  if (candidate.charCodeAt(0) !== 43 /* + */ || candidate.charCodeAt(1) === 48 /* 0 */) return null;
  for (let end = 2; end <= MAX_CALLING_CODE_LENGTH + 1 && end < candidate.length; end++) {
    const callingCode = candidate.slice(1, end);
    if (callingCodes[callingCode] === undefined) continue;
    const plan = callingCodePlan(callingCode);
    // Stryker disable next-line all: callingCodePlan is never false for a bundled calling code (see above)
    if (plan === false) return null;
    const nationalNumber = candidate.slice(end);
    const main = plan.countries[0];
    if (main === undefined || !lengthIsPlain(nationalNumber)) return null;
    if (main.nationalPrefix !== null && main.nationalPrefix.test(nationalNumber)) return null;
    return { e164: candidate, type: numberType(countryOf(plan, nationalNumber) ?? main, nationalNumber) };
  }
  return null;
}

/** National digits (no `+`, no `00`) read in a supported region → E.164 and type, or null when the library must decide. */
export function fastNationalNumber(digits: string, region: CountryCode): FastJudgement | null {
  if (digits.charCodeAt(0) === 43 /* + */) return null;
  const regional = regionPlan(region);
  if (regional === false || digits.startsWith(regional.callingCode) || !lengthIsPlain(digits)) return null;
  const own = regional.own;
  if (own.iddPrefix.test(digits)) return null;
  if (own.nationalPrefix !== null && own.nationalPrefix.test(digits)) return null;
  return {
    e164: `+${regional.callingCode}${digits}`,
    type: numberType(countryOf(regional.plan, digits) ?? own, digits),
  };
}

interface RegionPlan {
  callingCode: string;
  plan: CallingCodePlan;
  own: CountryPlan;
}
const plansByRegion = new Map<string, RegionPlan | false>();

function regionPlan(region: CountryCode): RegionPlan | false {
  let regional = plansByRegion.get(region);
  if (regional === undefined) {
    regional = false;
    const entry = (maxMetadata.countries as Record<string, readonly unknown[] | undefined>)[region];
    const callingCode = entry?.[0];
    const plan = typeof callingCode === "string" ? callingCodePlan(callingCode) : false;
    const own = plan === false ? undefined : plan.countries.find((c) => c.country === region);
    if (plan !== false && own !== undefined && typeof callingCode === "string") regional = { callingCode, plan, own };
    plansByRegion.set(region, regional);
  }
  return regional;
}
