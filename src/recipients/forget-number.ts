import { UserError } from "../model/errors.ts";
import type { Database } from "../store/database.ts";
import { eraseNumber, type ErasureCounts } from "../store/erasure-repository.ts";
import { assertForgottenCheckable, HASH_SECRET_SETTING } from "../store/forgotten-number-repository.ts";
import { countForgottenNumbers } from "../store/suppression-repository.ts";
import { digitFormsOf, normalisePhone } from "./phone.ts";

export type ForgetReport = ErasureCounts;

/**
 * A person's erasure request: their number leaves every recipient list (the row stays with a placeholder, so
 * counts stay right; a pending one is cancelled), rejects, uploads, raw delivery events and contacts, and
 * stays on the suppression list as its keyed hash only, with when and why it was suppressed. The caller
 * writes the audit entry (without the number).
 */
export async function forgetNumber(
  db: Database,
  input: { phone: string; defaultRegion?: string; reason?: string; onWaiting?: () => void },
): Promise<ForgetReport> {
  const hasher = db.phoneHasher;
  if (!hasher)
    throw new UserError(
      "suppression_hash_secret",
      `forget needs ${HASH_SECRET_SETTING} (at least 32 characters, e.g. \`openssl rand -hex 32\`): the number stays ` +
        `suppressed as an HMAC under a key derived from it, and every process that launches campaigns needs the same value`,
      { field: HASH_SECRET_SETTING },
    );
  // Any valid number: a fixed line may sit in rejects and contacts too.
  const result = normalisePhone(input.phone, input.defaultRegion, { requireMobile: false });
  if (!result.ok)
    throw new UserError("invalid_phone", `"${input.phone}" is not a valid phone number: ${result.reason}`, {
      field: "phone",
    });
  assertForgottenCheckable(await countForgottenNumbers(db, hasher.keyId), hasher, "forget");
  return eraseNumber(db, {
    phone: result.e164,
    digitForms: digitFormsOf(result.e164),
    phoneHmac: hasher.hash(result.e164),
    keyId: hasher.keyId,
    reason: input.reason ?? "erasure request",
    onWaiting: input.onWaiting,
  });
}
