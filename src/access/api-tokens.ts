import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { UserError } from "../model/errors.ts";
import { API_ROLES, type ApiRole } from "../model/roles.ts";
import type { Database } from "../store/database.ts";
import {
  insertToken,
  listTokens as listStoredTokens,
  revokeTokenByName,
  useTokenByHash,
  type StoredToken,
} from "../store/token-repository.ts";

export type { StoredToken as ApiToken };

/** Recognisable in a secret scanner and in a support ticket; the 32 random bytes follow it. */
export const TOKEN_PREFIX = "smsb_";
/** Characters of the token kept for display (`smsb_` and 8 more): enough to tell tokens apart, useless to guess. */
const DISPLAY_PREFIX_LENGTH = TOKEN_PREFIX.length + 8;
const TOKEN_FORMAT = /^smsb_[A-Za-z0-9_-]{43}$/;

export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

export interface CreatedToken {
  token: StoredToken;
  /** The secret itself: shown once, never stored. */
  secret: string;
}

export async function createApiToken(db: Database, input: { name: string; role: ApiRole }): Promise<CreatedToken> {
  const name = input.name.trim();
  if (!/^[\w.@-]{1,64}$/.test(name)) {
    throw new UserError("invalid_token_name", "a token name is 1 to 64 letters, digits, '.', '_', '-' or '@'", {
      field: "name",
    });
  }
  if (!API_ROLES.includes(input.role))
    throw new UserError("invalid_role", `role must be one of ${API_ROLES.join(", ")}`, { field: "role" });
  const secret = TOKEN_PREFIX + randomBytes(32).toString("base64url");
  const token = await insertToken(db, {
    name,
    prefix: secret.slice(0, DISPLAY_PREFIX_LENGTH),
    tokenHash: hashToken(secret),
    role: input.role,
  });
  if (!token)
    throw new UserError("token_name_taken", `a token named "${name}" already exists`, {
      field: "name",
      kind: "conflict",
    });
  return { token, secret };
}

/**
 * The live token a bearer secret belongs to, or null: wrong, malformed and revoked tokens all look the
 * same to the caller. The store looks it up by hash; the hash is then compared again in constant time, so
 * no byte-by-byte comparison of anything the caller controls decides the answer.
 */
export async function authenticateToken(db: Database, secret: string): Promise<StoredToken | null> {
  if (!TOKEN_FORMAT.test(secret)) return null;
  const hash = hashToken(secret);
  const found = await useTokenByHash(db, hash);
  if (!found) return null;
  const { tokenHash, ...token } = found;
  return timingSafeEqual(Buffer.from(tokenHash, "hex"), Buffer.from(hash, "hex")) ? token : null;
}

export function listApiTokens(db: Database): Promise<StoredToken[]> {
  return listStoredTokens(db);
}

export async function revokeApiToken(db: Database, name: string): Promise<StoredToken> {
  const revoked = await revokeTokenByName(db, name);
  if (!revoked)
    throw new UserError("token_not_found", `no live token named "${name}"`, { field: "name", kind: "not-found" });
  return revoked;
}

/** The name of the admin token `smsblast serve` creates on a database that has none. */
export const FIRST_RUN_TOKEN_NAME = "first-run-admin";

/**
 * On a database with no token at all, creates one admin token, so a new install can sign in to the console
 * without the CLI; null when any token exists (revoked ones count: a deployment that had tokens is not new).
 * Two servers starting at once cannot both create it: the name is unique.
 */
export async function createFirstRunToken(db: Database): Promise<CreatedToken | null> {
  if ((await listStoredTokens(db)).length > 0) return null;
  const secret = TOKEN_PREFIX + randomBytes(32).toString("base64url");
  const token = await insertToken(db, {
    name: FIRST_RUN_TOKEN_NAME,
    prefix: secret.slice(0, DISPLAY_PREFIX_LENGTH),
    tokenHash: hashToken(secret),
    role: "admin",
  });
  return token ? { token, secret } : null;
}
