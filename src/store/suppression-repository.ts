import { withTransaction, type Database } from "./database.ts";
import { setContactOptOut } from "./audience-repository.ts";
import { countForgotten, findForgotten } from "./forgotten-number-repository.ts";

export interface SuppressionEntry {
  phone: string;
  reason: string;
  source: string | null;
  createdAt: Date;
  /** Set for a number kept only as its keyed hash (`smsblast forget`): when it was forgotten. */
  forgottenAt?: Date;
}

/**
 * Adds numbers (already E.164) to the suppression list and flags matching contacts as opted out. A number
 * forgotten before (kept as its keyed hash) counts as already there: it is not written in plain text again.
 */
export async function addSuppressions(db: Database, phones: string[], reason: string, source: string): Promise<number> {
  if (phones.length === 0) return 0;
  const hasher = db.phoneHasher;
  return withTransaction(db.pool, async (client) => {
    let added = 0;
    // Chunks keep each statement's parameter arrays small on a very large import.
    for (let i = 0; i < phones.length; i += 10_000) {
      const chunk = phones.slice(i, i + 10_000);
      let fresh = chunk;
      if (hasher) {
        const forgotten = await findForgotten(
          client,
          chunk.map((p) => hasher.hash(p)),
        );
        if (forgotten.size > 0) fresh = chunk.filter((p) => !forgotten.has(hasher.hash(p)));
      }
      const { rowCount } = await client.query(
        `INSERT INTO suppressions (phone, reason, source) SELECT DISTINCT unnest($1::text[]), $2, $3 ON CONFLICT (phone) DO NOTHING`,
        [fresh, reason, source],
      );
      added += rowCount ?? 0;
      await setContactOptOut(client, chunk);
    }
    return added;
  });
}

/** Entries kept as keyed hashes only (forgotten numbers), and how many under another key than `keyId`. */
export function countForgottenNumbers(db: Database, keyId?: string) {
  return countForgotten(db.pool, keyId);
}

/** Plain-text entries, newest first, and how many more are kept as keyed hashes only (never listed). */
export async function listSuppressions(
  db: Database,
  options: { limit: number; offset: number; search?: string },
): Promise<{ total: number; forgotten: number; entries: SuppressionEntry[] }> {
  // A search is a part of the number, digits only (E.164 is stored): "9123" finds +6591234567.
  const digits = options.search?.replace(/\D/g, "");
  const where = { phoneHmac: null, ...(digits ? { phone: { contains: digits } } : {}) };
  const [total, entries, forgotten] = await Promise.all([
    db.prisma.suppression.count({ where }),
    db.prisma.suppression.findMany({
      where,
      orderBy: { createdAt: "desc" },
      take: options.limit,
      skip: options.offset,
      select: { phone: true, reason: true, source: true, createdAt: true },
    }),
    countForgotten(db.pool, undefined),
  ]);
  return { total, forgotten: forgotten.total, entries };
}

/**
 * Takes a number (E.164) off the suppression list and clears its contact's opt-out flag, in one
 * transaction; returns the removed entry, or null when the number was not on the list. A forgotten number
 * is found by its keyed hash (with the secret), and the entry returned names the number given.
 */
export async function removeSuppression(db: Database, phone: string): Promise<SuppressionEntry | null> {
  const hmac = db.phoneHasher?.hash(phone) ?? null;
  return withTransaction(db.pool, async (client) => {
    const { rows } = await client.query<SuppressionEntry & { forgottenAt: Date | null }>(
      `DELETE FROM suppressions WHERE phone = $1 OR ($2::text IS NOT NULL AND phone_hmac = $2)
       RETURNING $1 AS phone, reason, source, created_at AS "createdAt", forgotten_at AS "forgottenAt"`,
      [phone, hmac],
    );
    if (rows.length === 0) return null;
    await client.query(`UPDATE contacts SET opted_out = false, updated_at = now() WHERE phone = $1`, [phone]);
    // Both a plain and a hashed entry (suppressed again in plain text without the secret): the hashed one's story.
    const { forgottenAt, ...entry } = rows.find((r) => r.forgottenAt !== null) ?? rows[0]!;
    return forgottenAt ? { ...entry, forgottenAt } : entry;
  });
}
