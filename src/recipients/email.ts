import { z } from "zod";
import type { ProviderApi } from "../model/states.ts";

export type EmailResult = { ok: true; address: string } | { ok: false; reason: string };

const EMAIL = z.email();

/** A cell is taken for an e-mail address when it has an "@": no phone number has one. */
export function isEmailTarget(raw: string): boolean {
  return raw.includes("@");
}

/**
 * v1/custom-messages takes an e-mail address as well as a phone number (seed 002). Addresses are compared
 * lower-cased, so "Ann@Example.com" and "ann@example.com" are one recipient, de-duplicated like numbers.
 */
export function normaliseEmail(raw: string): EmailResult {
  const address = raw.trim().toLowerCase();
  if (!EMAIL.safeParse(address).success) return { ok: false, reason: "not a valid e-mail address" };
  return { ok: true, address };
}

/** The reject reason of an e-mail address in a list for an API that only takes phone numbers. */
export const EMAIL_NOT_ACCEPTED =
  "an e-mail address: only custom campaigns (v1/custom-messages) send to e-mail addresses";

/** Only v1/custom-messages takes an e-mail address as its target (seed 002); the bulk APIs take numbers. */
export function acceptsEmail(provider: ProviderApi): boolean {
  return provider === "custom";
}
