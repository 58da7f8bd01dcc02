import type { Config } from "../config/config.ts";
import { RateGate } from "../queue/rate-gate.ts";
import type { RedisConnection } from "../queue/redis.ts";

/** The deployment's shared provider rates on this connection: SEND_RATE_LIMIT and PLATFORM_RATE_LIMITS. */
export function rateGateOf(config: Pick<Config, "send">, connection: RedisConnection, prefix: string): RateGate {
  return new RateGate(connection, prefix, {
    requestsPerSecond: config.send.rateLimitPerSecond,
    perPlatform: config.send.platformRateLimits,
  });
}

/** Whether any shared limit is set (a CLI send-one opens Redis only then). */
export function hasSharedRateLimits(config: Pick<Config, "send">): boolean {
  return config.send.rateLimitPerSecond > 0 || Object.keys(config.send.platformRateLimits).length > 0;
}
