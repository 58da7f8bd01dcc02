import type pg from "pg";
import { UserError } from "../model/errors.ts";
import type { PhoneHasher } from "../model/phone-hash.ts";

// Forgotten numbers (`smsblast forget`) stay on the suppression list as a keyed hash only: `phone_hmac`, hex
// HMAC-SHA256 of the E.164 number, and `phone` = 'forgotten:<phone_hmac>'. A plain-text check can never match
// them, so every suppression check also compares the HMAC of the number it checks: in JS for a few numbers
// (suppress add / remove, STOP replies), in SQL for set-based checks (a launch's staged rows, an upload's
// judgements), where the key's pads come in through a transaction-local setting, never as a parameter of the
// big statement (PostgreSQL may log a slow statement's parameters).

export const FORGOTTEN_PHONE_PREFIX = "forgotten:";

/**
 * Launches hold this advisory lock shared from their suppression check to their commit, `forget` holds it
 * exclusive: a forget waits for the launches in progress (then erases their recipients too), and a launch
 * that starts during a forget sees its hashed entry. No campaign can slip in between.
 */
const ERASURE_LOCK = 7_308_901_234_567_001n;

export async function lockAgainstErasure(client: pg.PoolClient): Promise<void> {
  await client.query(`SELECT pg_advisory_xact_lock_shared($1::bigint)`, [ERASURE_LOCK.toString()]);
}

/** forget's side of the lock (until its transaction ends); false when `wait` is false and launches hold it. */
export async function lockForErasure(client: pg.PoolClient, wait: boolean): Promise<boolean> {
  if (wait) {
    await client.query(`SELECT pg_advisory_xact_lock($1::bigint)`, [ERASURE_LOCK.toString()]);
    return true;
  }
  const { rows } = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_xact_lock($1::bigint) AS ok`, [
    ERASURE_LOCK.toString(),
  ]);
  return rows[0]!.ok;
}

/** The setting a process needs once numbers have been forgotten. */
export const HASH_SECRET_SETTING = "SUPPRESSION_HASH_SECRET";

/** The HMAC of `phoneSql` (a text expression) as hex, from the pads set by prepareForgottenCheck. */
const HMAC_SQL = (phoneSql: string) =>
  `encode(sha256(decode(current_setting('smsblast.hmac_outer'), 'hex') || ` +
  `sha256(decode(current_setting('smsblast.hmac_inner'), 'hex') || convert_to(${phoneSql}, 'UTF8'))), 'hex')`;

/** A SQL condition, true when the number `phoneSql` is a forgotten one. */
export type ForgottenCondition = (phoneSql: string) => string;

/** Forgotten entries exist, and this process cannot check them (no secret) or has another secret. */
export class ForgottenNumbersUncheckableError extends UserError {
  override name = "ForgottenNumbersUncheckableError";
  constructor(message: string) {
    super("suppression_hash_secret", message, { kind: "unavailable", field: HASH_SECRET_SETTING });
  }
}

/** How many entries are kept as keyed hashes, and how many of them under another key than `keyId`. */
export async function countForgotten(
  client: pg.Pool | pg.PoolClient,
  keyId: string | undefined,
): Promise<{ total: number; otherKey: number; otherKeyIds: string[] }> {
  const { rows } = await client.query<{ total: number; other: number; other_ids: string[] | null }>(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE hmac_key_id IS DISTINCT FROM $1)::int AS other,
            array_agg(DISTINCT hmac_key_id) FILTER (WHERE hmac_key_id IS DISTINCT FROM $1) AS other_ids
     FROM suppressions WHERE phone_hmac IS NOT NULL`,
    [keyId ?? null],
  );
  const r = rows[0]!;
  return { total: r.total, otherKey: r.other, otherKeyIds: r.other_ids ?? [] };
}

/** Refuses, naming the setting, when forgotten entries exist that `hasher` cannot match. */
export function assertForgottenCheckable(
  counts: { total: number; otherKey: number; otherKeyIds: string[] },
  hasher: PhoneHasher | undefined,
  what: string,
): void {
  if (counts.total === 0) return;
  if (!hasher)
    throw new ForgottenNumbersUncheckableError(
      `${what} needs ${HASH_SECRET_SETTING}: the suppression list keeps ${counts.total} forgotten number(s) ` +
        `(smsblast forget) only as keyed hashes, and without the secret they were hashed with they cannot be honoured`,
    );
  if (counts.otherKey > 0)
    throw new ForgottenNumbersUncheckableError(
      `${what} cannot honour ${counts.otherKey} forgotten number(s) hashed under another ${HASH_SECRET_SETTING} ` +
        `(key id ${counts.otherKeyIds.join(", ")}; this process has ${hasher.keyId}): set the secret they were made with`,
    );
}

/**
 * For a set-based check inside `client`'s transaction: null when no number was ever forgotten (nothing to
 * compare, nothing hashed), else a condition builder, with the key's pads set for this transaction only.
 * Refuses when forgotten entries exist but this process has no secret, or another one.
 */
export async function prepareForgottenCheck(
  client: pg.PoolClient,
  hasher: PhoneHasher | undefined,
  what: string,
): Promise<ForgottenCondition | null> {
  const counts = await countForgotten(client, hasher?.keyId);
  if (counts.total === 0) return null;
  assertForgottenCheckable(counts, hasher, what);
  const pads = hasher!.pads();
  await client.query(
    `SELECT set_config('smsblast.hmac_inner', $1, true), set_config('smsblast.hmac_outer', $2, true)`,
    [pads.inner, pads.outer],
  );
  return (phoneSql) => `EXISTS (SELECT 1 FROM suppressions f WHERE f.phone_hmac = ${HMAC_SQL(phoneSql)})`;
}

/** Of these HMACs, the ones on the suppression list (with their entry's reason). */
export async function findForgotten(
  client: pg.Pool | pg.PoolClient,
  hmacs: readonly string[],
): Promise<Map<string, { reason: string; createdAt: Date }>> {
  if (hmacs.length === 0) return new Map();
  const { rows } = await client.query<{ phone_hmac: string; reason: string; created_at: Date }>(
    `SELECT phone_hmac, reason, created_at FROM suppressions WHERE phone_hmac = ANY($1::text[])`,
    [hmacs],
  );
  return new Map(rows.map((r) => [r.phone_hmac, { reason: r.reason, createdAt: r.created_at }]));
}

/** The SQL form of the HMAC over a literal, for the test that pins it to the JS form. */
export async function hashInSql(client: pg.PoolClient, hasher: PhoneHasher, value: string): Promise<string> {
  const pads = hasher.pads();
  await client.query(
    `SELECT set_config('smsblast.hmac_inner', $1, true), set_config('smsblast.hmac_outer', $2, true)`,
    [pads.inner, pads.outer],
  );
  const { rows } = await client.query<{ h: string }>(`SELECT ${HMAC_SQL("$1::text")} AS h`, [value]);
  return rows[0]!.h;
}
