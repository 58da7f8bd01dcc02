import type pg from "pg";

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
const UNAVAILABLE_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|connection error|Client was closed|Connection ended/i;

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
export async function retryWhileDatabaseUnavailable<T>(pool: pg.Pool, fn: () => Promise<T>, deadlineMs: number): Promise<T> {
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
