import { withTransaction, type Database } from "./database.ts";

export type IdempotentOutcome<T> = { kind: "first"; value: T } | { kind: "replay"; value: T } | { kind: "mismatch" };

/**
 * Runs `create` at most once per (token, key) while the key lives (`ttlMs`). The key row is inserted in a
 * transaction that stays open while `create` runs: a concurrent retry with the same key waits on that
 * insert, then finds the first answer. A failed `create` rolls the key back, so the client may try again.
 * (Should the process die between `create`'s own commit and this one, the key is lost; the launch
 * fingerprint, issue 13, is the wall behind this one.)
 */
export async function runOnce<T>(
  db: Database,
  scope: { tokenId: string; key: string; requestHash: string; ttlMs: number },
  create: () => Promise<{ value: T; campaignId: string | null }>,
): Promise<IdempotentOutcome<T>> {
  return withTransaction(db.pool, async (client) => {
    // An expired key is forgotten, so it may be used again.
    await client.query(
      `DELETE FROM idempotency_keys WHERE token_id = $1 AND key = $2 AND created_at < now() - $3 * interval '1 millisecond'`,
      [scope.tokenId, scope.key, scope.ttlMs],
    );
    const inserted = await client.query(
      `INSERT INTO idempotency_keys (token_id, key, request_hash) VALUES ($1, $2, $3) ON CONFLICT (token_id, key) DO NOTHING`,
      [scope.tokenId, scope.key, scope.requestHash],
    );
    if (inserted.rowCount === 0) {
      const { rows } = await client.query<{ request_hash: string; response: T }>(
        `SELECT request_hash, response FROM idempotency_keys WHERE token_id = $1 AND key = $2`,
        [scope.tokenId, scope.key],
      );
      const first = rows[0];
      if (!first || first.request_hash !== scope.requestHash) return { kind: "mismatch" };
      return { kind: "replay", value: first.response };
    }
    const created = await create();
    await client.query(`UPDATE idempotency_keys SET campaign_id = $3, response = $4 WHERE token_id = $1 AND key = $2`, [
      scope.tokenId,
      scope.key,
      created.campaignId,
      JSON.stringify(created.value),
    ]);
    return { kind: "first", value: created.value };
  });
}

/** Drops keys past their lifetime (the API server does it now and then). */
export async function deleteExpiredIdempotencyKeys(db: Database, ttlMs: number): Promise<number> {
  const { rowCount } = await db.pool.query(
    `DELETE FROM idempotency_keys WHERE created_at < now() - $1 * interval '1 millisecond'`,
    [ttlMs],
  );
  return rowCount ?? 0;
}
