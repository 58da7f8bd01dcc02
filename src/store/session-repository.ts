import type { Database } from "./database.ts";
import { TOKEN_COLUMNS, toToken, type StoredToken, type TokenRow } from "./token-repository.ts";

/** How stale `last_seen_at` may get: a console page makes several requests, and each stamping the row would queue them. */
const LAST_SEEN_RESOLUTION_MS = 15_000;

export async function insertSession(db: Database, session: { idHash: string; tokenId: string }): Promise<void> {
  await db.pool.query(`INSERT INTO console_sessions (id_hash, token_id) VALUES ($1, $2)`, [
    session.idHash,
    session.tokenId,
  ]);
}

/**
 * The live token behind a session, or null: the session is unknown, idle for longer than `idleMs`, or its token
 * is revoked. Its `last_seen_at` is moved on in the same statement (at most every LAST_SEEN_RESOLUTION_MS).
 */
export async function useSessionByHash(db: Database, idHash: string, idleMs: number): Promise<StoredToken | null> {
  const { rows } = await db.pool.query<TokenRow>(
    `WITH live AS (
       SELECT s.id_hash, s.last_seen_at, t.id, t.name, t.prefix, t.role, t.created_at, t.last_used_at, t.revoked_at,
              t.webhook_url, t.webhook_set_at
       FROM console_sessions s JOIN api_tokens t ON t.id = s.token_id
       WHERE s.id_hash = $1 AND t.revoked_at IS NULL AND s.last_seen_at > now() - make_interval(secs => $2::double precision / 1000)
     ), stamped AS (
       UPDATE console_sessions s SET last_seen_at = now() FROM live
       WHERE s.id_hash = live.id_hash AND live.last_seen_at < now() - make_interval(secs => $3::double precision / 1000)
     )
     SELECT ${TOKEN_COLUMNS} FROM live`,
    [idHash, idleMs, LAST_SEEN_RESOLUTION_MS],
  );
  return rows[0] ? toToken(rows[0]) : null;
}

export async function deleteSession(db: Database, idHash: string): Promise<void> {
  await db.pool.query(`DELETE FROM console_sessions WHERE id_hash = $1`, [idHash]);
}

/** Sessions idle past the expiry, and those of revoked tokens: they can never be used again. */
export async function deleteDeadSessions(db: Database, idleMs: number): Promise<number> {
  const { rowCount } = await db.pool.query(
    `DELETE FROM console_sessions s
     WHERE s.last_seen_at < now() - make_interval(secs => $1::double precision / 1000)
        OR EXISTS (SELECT 1 FROM api_tokens t WHERE t.id = s.token_id AND t.revoked_at IS NOT NULL)`,
    [idleMs],
  );
  return rowCount ?? 0;
}
