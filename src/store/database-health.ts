import type pg from "pg";
import { redactUrl } from "../config/redact-url.ts";
import { ServiceUnavailableError, UserError } from "../model/errors.ts";

const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "57P01", // admin_shutdown (server restart, pg_terminate_backend)
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now (starting up)
  "08000",
  "08001",
  "08003",
  "08004",
  "08006",
]);
const UNAVAILABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|connection error|Client was closed|Connection ended/i;

/** Errors that say "Postgres is not reachable right now", as opposed to a bad query. */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: string }).code;
  if (code && UNAVAILABLE_CODES.has(code)) return true;
  return UNAVAILABLE_MESSAGES.test(error.message);
}

/** Waits, with exponential backoff up to `maxDelayMs`, until Postgres answers; false if `signal` aborts first. */
export async function waitForDatabase(
  pool: pg.Pool,
  options: { signal?: AbortSignal; maxDelayMs?: number; onRetry?: (attempt: number, error: unknown) => void } = {},
): Promise<boolean> {
  let delay = 250;
  for (let attempt = 1; !options.signal?.aborted; attempt++) {
    try {
      await pool.query("SELECT 1");
      return true;
    } catch (error) {
      options.onRetry?.(attempt, error);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, options.maxDelayMs ?? 10_000);
    }
  }
  return false;
}

/**
 * Runs `fn`, and while Postgres is unreachable waits for it and runs `fn` again, up to `deadlineMs`. For
 * writes whose result must not be lost (a batch outcome the provider already produced).
 */
export async function retryWhileDatabaseUnavailable<T>(
  pool: pg.Pool,
  fn: () => Promise<T>,
  deadlineMs: number,
): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (!isDatabaseUnavailable(error) || Date.now() > deadline) throw error;
      const signal = AbortSignal.timeout(Math.max(0, deadline - Date.now()));
      if (!(await waitForDatabase(pool, { signal, maxDelayMs: 2_000 }))) throw error;
    }
  }
}

/**
 * A connection failure in the user's words: which service, which URL (without credentials), what to do.
 * Undefined for anything else (a bad query is a bug, not a setting to fix).
 */
export function explainDatabaseError(error: unknown, databaseUrl: string): ServiceUnavailableError | undefined {
  if (!(error instanceof Error) || error instanceof UserError) return undefined;
  const where = `PostgreSQL at ${redactUrl(databaseUrl)} (DATABASE_URL)`;
  const code = (error as { code?: string }).code;
  switch (code) {
    case "3D000": // invalid_catalog_name: the database does not exist
      return new ServiceUnavailableError(
        "database_missing",
        "PostgreSQL",
        `${where}: ${error.message}; run \`smsblast migrate\` to create it`,
      );
    case "28000": // invalid_authorization_specification: no such role, or pg_hba.conf refuses it
    case "28P01": // invalid_password
    case "42501": // insufficient_privilege (no CONNECT on the database)
      return new ServiceUnavailableError(
        "database_access_denied",
        "PostgreSQL",
        `${where} refused the connection: ${error.message}; check the user and password in DATABASE_URL`,
      );
  }
  if (isDatabaseUnavailable(error)) {
    // Node reports a refused connection to a name with several addresses as an AggregateError with no message.
    const reason = error.message || code || "no answer";
    return new ServiceUnavailableError(
      "database_unreachable",
      "PostgreSQL",
      `${where} is unreachable (${reason}); is it running? Nothing was stored`,
    );
  }
  return undefined;
}

/** One round trip within `timeoutMs`, or a ServiceUnavailableError: every command runs this before anything else. */
export async function checkDatabaseConnection(pool: pg.Pool, databaseUrl: string, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: "ETIMEDOUT" })),
      timeoutMs,
    );
  });
  try {
    await Promise.race([pool.query("SELECT 1"), timeout]);
  } catch (error) {
    throw explainDatabaseError(error, databaseUrl) ?? error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * PostgreSQL's `wal_compression`, or null when it cannot be read. The delivery applier rewrites one recipient
 * row per report; the first write to each page after a checkpoint puts the whole 8 kB page in the WAL, and
 * compressing those images made applying 1M reports up to 1.35x faster on the benchmark machine, and
 * never slower (README "PostgreSQL settings"). A server setting, so the worker can only say so.
 */
export async function readWalCompression(pool: pg.Pool): Promise<string | null> {
  try {
    const { rows } = await pool.query<{ v: string }>(`SELECT current_setting('wal_compression') AS v`);
    return rows[0]?.v ?? null;
  } catch {
    return null;
  }
}
