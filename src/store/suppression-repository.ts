import { withTransaction, type Database } from "./database.ts";
import { setContactOptOut } from "./audience-repository.ts";

export interface SuppressionEntry {
  phone: string;
  reason: string;
  source: string | null;
  createdAt: Date;
}

/** Adds numbers (already E.164) to the suppression list and flags matching contacts as opted out. */
export async function addSuppressions(db: Database, phones: string[], reason: string, source: string): Promise<number> {
  if (phones.length === 0) return 0;
  return withTransaction(db.pool, async (client) => {
    let added = 0;
    // Chunks keep each statement's parameter arrays small on a very large import.
    for (let i = 0; i < phones.length; i += 10_000) {
      const chunk = phones.slice(i, i + 10_000);
      const { rowCount } = await client.query(
        `INSERT INTO suppressions (phone, reason, source) SELECT DISTINCT unnest($1::text[]), $2, $3 ON CONFLICT (phone) DO NOTHING`,
        [chunk, reason, source],
      );
      added += rowCount ?? 0;
      await setContactOptOut(client, chunk);
    }
    return added;
  });
}

export async function listSuppressions(
  db: Database,
  options: { limit: number; offset: number; search?: string },
): Promise<{ total: number; entries: SuppressionEntry[] }> {
  // A search is a part of the number, digits only (E.164 is stored): "9123" finds +6591234567.
  const digits = options.search?.replace(/\D/g, "");
  const where = digits ? { phone: { contains: digits } } : {};
  const [total, entries] = await Promise.all([
    db.prisma.suppression.count({ where }),
    db.prisma.suppression.findMany({
      where,
      orderBy: { createdAt: "desc" },
      take: options.limit,
      skip: options.offset,
    }),
  ]);
  return { total, entries };
}

/**
 * Takes a number (E.164) off the suppression list and clears its contact's opt-out flag, in one
 * transaction; returns the removed entry, or null when the number was not on the list.
 */
export async function removeSuppression(db: Database, phone: string): Promise<SuppressionEntry | null> {
  return withTransaction(db.pool, async (client) => {
    const { rows } = await client.query<SuppressionEntry>(
      `DELETE FROM suppressions WHERE phone = $1 RETURNING phone, reason, source, created_at AS "createdAt"`,
      [phone],
    );
    if (rows.length === 0) return null;
    await client.query(`UPDATE contacts SET opted_out = false, updated_at = now() WHERE phone = $1`, [phone]);
    return rows[0]!;
  });
}
