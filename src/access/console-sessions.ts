import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { UserError } from "../model/errors.ts";
import type { Database } from "../store/database.ts";
import { deleteDeadSessions, deleteSession, insertSession, useSessionByHash } from "../store/session-repository.ts";
import { authenticateToken, type ApiToken } from "./api-tokens.ts";

// A console sign-in turns an API token into a session: the browser keeps a random session secret in an
// HTTP-only cookie, Postgres keeps its SHA-256 and the token it stands for. Every request checks the token
// again (a revoked token ends its sessions at their next request) and the idle expiry.

export interface ConsoleSession {
  token: ApiToken;
  /** The CSRF token of this session's forms (see csrfTokenOf). */
  csrfToken: string;
}

export interface SignedIn extends ConsoleSession {
  /** The cookie's value: shown to the browser only, never stored. */
  secret: string;
}

export async function signIn(db: Database, tokenSecret: string): Promise<SignedIn> {
  const token = await authenticateToken(db, tokenSecret.trim());
  if (!token) {
    // The same words for a malformed, wrong or revoked token, as the API's 401.
    throw new UserError("sign_in_refused", "that token is not valid: check it was copied whole and is not revoked", {
      field: "token",
    });
  }
  const secret = randomBytes(32).toString("base64url");
  await insertSession(db, { idHash: hashSecret(secret), tokenId: token.id });
  return { token, secret, csrfToken: csrfTokenOf(secret) };
}

/** The session a cookie stands for, or null (unknown, idle too long, or its token revoked). */
export async function resumeSession(db: Database, secret: string, idleMs: number): Promise<ConsoleSession | null> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(secret)) return null;
  const token = await useSessionByHash(db, hashSecret(secret), idleMs);
  return token ? { token, csrfToken: csrfTokenOf(secret) } : null;
}

export async function signOut(db: Database, secret: string): Promise<void> {
  await deleteSession(db, hashSecret(secret));
}

export function forgetDeadSessions(db: Database, idleMs: number): Promise<number> {
  return deleteDeadSessions(db, idleMs);
}

/**
 * The synchronizer token of a session's forms, derived from its secret (HMAC), so it needs no storage and
 * changes with every sign-in. A page from another site cannot read it, so it cannot forge a form post.
 */
export function csrfTokenOf(sessionSecret: string): string {
  return createHmac("sha256", sessionSecret).update("smsblast console csrf").digest("base64url");
}

export function csrfTokenMatches(sessionSecret: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const expected = Buffer.from(csrfTokenOf(sessionSecret));
  const actual = Buffer.from(given);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}
