import type { ApiRole } from "../model/roles.ts";
import type { Database } from "./database.ts";

export interface StoredToken {
  id: string;
  name: string;
  prefix: string;
  role: ApiRole;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  /** The webhook's URL as set (it may hold the receiver's secret: display it with webhookUrlForDisplay). */
  webhookUrl: string | null;
  webhookSetAt: Date | null;
}

/** An api_tokens row as selected by TOKEN_COLUMNS (session-repository.ts reads the same columns). */
export interface TokenRow {
  id: string;
  name: string;
  prefix: string;
  role: ApiRole;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
  webhook_url: string | null;
  webhook_set_at: Date | null;
}

export const TOKEN_COLUMNS = `id, name, prefix, role, created_at, last_used_at, revoked_at, webhook_url, webhook_set_at`;

export function toToken(r: TokenRow): StoredToken {
  return {
    id: r.id,
    name: r.name,
    prefix: r.prefix,
    role: r.role,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
    webhookUrl: r.webhook_url,
    webhookSetAt: r.webhook_set_at,
  };
}

/** Inserts a token by its hash; null when the name is taken (unique index). */
export async function insertToken(
  db: Database,
  token: { name: string; prefix: string; tokenHash: string; role: ApiRole },
): Promise<StoredToken | null> {
  const { rows } = await db.pool.query<TokenRow>(
    `INSERT INTO api_tokens (name, prefix, token_hash, role) VALUES ($1, $2, $3, $4::"ApiRole")
     ON CONFLICT (name) DO NOTHING RETURNING ${TOKEN_COLUMNS}`,
    [token.name, token.prefix, token.tokenHash, token.role],
  );
  return rows[0] ? toToken(rows[0]) : null;
}

/** How stale `last_used_at` may get: every request of a busy token stamping its one row would queue them all on its row lock. */
const LAST_USE_RESOLUTION = "1 minute";

/**
 * The live token with this hash, its last use stamped in the same statement when the stamp is older than
 * LAST_USE_RESOLUTION. The lookup is by an index on the hash, so nothing secret is compared byte by byte in JavaScript.
 */
export async function useTokenByHash(
  db: Database,
  tokenHash: string,
): Promise<(StoredToken & { tokenHash: string }) | null> {
  const { rows } = await db.pool.query<TokenRow & { token_hash: string }>(
    `WITH live AS (SELECT ${TOKEN_COLUMNS}, token_hash FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL),
          stamped AS (
            UPDATE api_tokens t SET last_used_at = now() FROM live
            WHERE t.id = live.id AND (live.last_used_at IS NULL OR live.last_used_at < now() - interval '${LAST_USE_RESOLUTION}')
            RETURNING t.id, t.last_used_at
          )
     SELECT live.id, live.name, live.prefix, live.role, live.created_at, coalesce(stamped.last_used_at, live.last_used_at) AS last_used_at,
            live.revoked_at, live.webhook_url, live.webhook_set_at, live.token_hash
     FROM live LEFT JOIN stamped USING (id)`,
    [tokenHash],
  );
  return rows[0] ? { ...toToken(rows[0]), tokenHash: rows[0].token_hash } : null;
}

export async function listTokens(db: Database): Promise<StoredToken[]> {
  const { rows } = await db.pool.query<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, name`);
  return rows.map(toToken);
}

export async function findLiveTokenByName(db: Database, name: string): Promise<StoredToken | null> {
  const { rows } = await db.pool.query<TokenRow>(
    `SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE name = $1 AND revoked_at IS NULL`,
    [name],
  );
  return rows[0] ? toToken(rows[0]) : null;
}

/** Revokes by name; null when no live token has that name. */
export async function revokeTokenByName(db: Database, name: string): Promise<StoredToken | null> {
  const { rows } = await db.pool.query<TokenRow>(
    `UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING ${TOKEN_COLUMNS}`,
    [name],
  );
  return rows[0] ? toToken(rows[0]) : null;
}
