import { Redis } from "ioredis";

/**
 * BullMQ workers need `maxRetriesPerRequest: null` (blocking commands must wait out a Redis restart
 * instead of failing). Producers give up after a few retries, so a CLI command does not hang on a dead Redis.
 */
export function createRedisConnection(redisUrl: string, role: "worker" | "producer"): Redis {
  return new Redis(redisUrl, {
    maxRetriesPerRequest: role === "worker" ? null : 3,
    retryStrategy: (attempt) => Math.min(attempt * 200, 5_000),
    lazyConnect: false,
  });
}
