import { UserError } from "../model/errors.ts";
import {
  listContactTags,
  listSegments as listStoredSegments,
  saveSegment as saveStoredSegment,
} from "../store/audience-repository.ts";
import type { Database } from "../store/database.ts";
import {
  addSuppressions,
  removeSuppression as removeStoredSuppression,
  listSuppressions as listStoredSuppressions,
  countForgottenNumbers,
  type SuppressionEntry,
} from "../store/suppression-repository.ts";
import { HASH_SECRET_SETTING } from "../store/forgotten-number-repository.ts";
import { normalisePhone } from "./phone.ts";

export type { SuppressionEntry };

export interface SegmentDefinition {
  name: string;
  tags: string[];
  attributes: Record<string, string>;
}

/** Saves (or replaces) a segment: contacts with any of the tags and all of the attribute values. */
export async function saveSegment(db: Database, segment: SegmentDefinition): Promise<void> {
  if (segment.tags.length === 0 && Object.keys(segment.attributes).length === 0) {
    throw new UserError("invalid_segment", "a segment needs at least one tag or attribute value", { field: "segment" });
  }
  await saveStoredSegment(db, segment);
}

export function listSegments(db: Database) {
  return listStoredSegments(db);
}

/**
 * Adds numbers to the suppression list. Every number is checked first, so one bad number refuses the whole
 * request and stores nothing. Returns how many were new.
 */
export async function suppressNumbers(
  db: Database,
  input: { phones: readonly string[]; reason: string; source: string; defaultRegion?: string },
): Promise<{ added: number; given: number }> {
  const normalised = input.phones.map((raw) => {
    const result = normalisePhone(raw, input.defaultRegion);
    if (!result.ok)
      throw new UserError("invalid_phone", `"${raw}" is not a valid phone number: ${result.reason}`, {
        field: "phone",
      });
    return result.e164;
  });
  const added = await addSuppressions(db, normalised, input.reason, input.source);
  return { added, given: normalised.length };
}

/** Contact tags (each one an audience) with their sendable counts. */
export function listTags(db: Database) {
  return listContactTags(db);
}

/**
 * Takes a number off the suppression list (and clears its contact's opt-out), so campaigns may text it
 * again: admins only on the API, and written to the audit log by the caller.
 */
export async function unsuppressNumber(
  db: Database,
  input: { phone: string; defaultRegion?: string },
): Promise<SuppressionEntry> {
  const result = normalisePhone(input.phone, input.defaultRegion);
  if (!result.ok)
    throw new UserError("invalid_phone", `"${input.phone}" is not a valid phone number: ${result.reason}`, {
      field: "phone",
    });
  const removed = await removeStoredSuppression(db, result.e164);
  if (!removed) {
    // Without the secret a forgotten number cannot be recognised: say so rather than "not on the list".
    const forgotten = db.phoneHasher ? 0 : (await countForgottenNumbers(db)).total;
    throw new UserError(
      "not_suppressed",
      `${result.e164} is not on the suppression list` +
        (forgotten > 0
          ? ` in plain text; ${forgotten} forgotten number(s) are kept only as keyed hashes, set ${HASH_SECRET_SETTING} to look among them`
          : ""),
      { kind: "not-found", field: "phone" },
    );
  }
  return removed;
}

export function listSuppressions(db: Database, page: { limit: number; offset: number; search?: string }) {
  return listStoredSuppressions(db, page);
}
