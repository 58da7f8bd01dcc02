import { Redis } from "ioredis";
import { redactUrl } from "../config/redact-url.ts";
import { ServiceUnavailableError } from "../model/errors.ts";

/**
 * Roles of a Redis connection:
 * - `worker`: BullMQ workers need `maxRetriesPerRequest: null` (blocking commands must wait out a Redis
 *   restart instead of failing).
 * - `producer`: the queue side of a long-running process (worker, scheduler); it reconnects for ever, but
 *   each command gives up after a few retries.
 * - `command`: one CLI command. It stops reconnecting after a few attempts, so nothing waits for ever: BullMQ
 *   waits for `ready` or `end`, and without an end a dead Redis would hang the command indefinitely.
 */
export type RedisRole = "worker" | "producer" | "command";

/** Reconnection attempts of a `command` connection before it ends (~1.2 s of back-off after the connect timeout). */
const COMMAND_RECONNECT_ATTEMPTS = 3;

export function createRedisConnection(
  redisUrl: string,
  role: RedisRole,
  options: { connectTimeoutMs?: number; lazyConnect?: boolean } = {},
): Redis {
  return new Redis(redisUrl, {
    maxRetriesPerRequest: role === "worker" ? null : role === "command" ? 1 : 3,
    retryStrategy: (attempt) =>
      role === "command" && attempt > COMMAND_RECONNECT_ATTEMPTS ? null : Math.min(attempt * 200, 5_000),
    connectTimeout: options.connectTimeoutMs ?? 10_000,
    lazyConnect: options.lazyConnect ?? false,
  });
}

/**
 * A `command` connection that has answered PING within `timeoutMs`, or a ServiceUnavailableError naming
 * Redis and its URL (without credentials). Commands call this before they store anything.
 */
export async function connectRedisForCommand(redisUrl: string, timeoutMs: number): Promise<Redis> {
  const connection = createRedisConnection(redisUrl, "command", { connectTimeoutMs: timeoutMs, lazyConnect: true });
  let lastError: Error | undefined;
  // Without a listener ioredis prints every failed reconnect as "Unhandled error event".
  connection.on("error", (error: Error) => {
    lastError = error;
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([connection.connect().then(() => connection.ping()), timeout]);
    return connection;
  } catch (error) {
    connection.disconnect();
    const reason = lastError?.message || (error instanceof Error ? error.message : String(error)) || "no answer";
    throw new ServiceUnavailableError(
      "redis_unreachable",
      "Redis",
      `Redis at ${redactUrl(redisUrl)} (REDIS_URL) is unreachable (${reason}); is it running? Nothing was stored`,
    );
  } finally {
    clearTimeout(timer);
  }
}
