import type { RedisConnection } from "./redis.ts";
import type { ProviderApi } from "../model/states.ts";

/** What the send rules read: consecutive outage-like failures on one platform (see OutageTracker). */
export interface StoredOutageStreak {
  failures: number;
  since: Date | null;
  lastError: string | null;
}

/**
 * A streak nobody added to for this long lapses by itself: a failure an hour ago says nothing about now, and a
 * campaign launched tomorrow must not pause on yesterday's outage.
 */
const STREAK_TTL_MS = 15 * 60 * 1000;

/**
 * The per-platform failure streak in Redis, one hash per platform under the deployment's queue prefix, so every
 * worker process of the deployment counts the same failures. Any answer from the provider deletes it.
 */
export class RedisOutageStreaks {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  private key(provider: ProviderApi): string {
    return `${this.prefix}:outage:${provider}`;
  }

  async read(provider: ProviderApi): Promise<StoredOutageStreak> {
    const hash = await this.redis.hgetall(this.key(provider));
    const failures = Number(hash.failures ?? 0);
    return {
      failures: Number.isFinite(failures) ? failures : 0,
      since: hash.since ? new Date(Number(hash.since)) : null,
      lastError: hash.last ?? null,
    };
  }

  async recordDown(provider: ProviderApi, error: string, nowMs = Date.now()): Promise<void> {
    const key = this.key(provider);
    await this.redis
      .multi()
      .hincrby(key, "failures", 1)
      .hsetnx(key, "since", String(nowMs))
      .hset(key, "last", error.slice(0, 300))
      .pexpire(key, STREAK_TTL_MS)
      .exec();
  }

  async recordUp(provider: ProviderApi): Promise<void> {
    await this.redis.del(this.key(provider));
  }

  /**
   * One prober round per `ms` across every worker process of the deployment: the first to ask in a period gets
   * it (SET NX with an expiry), the others skip that round.
   */
  async claimProbeRound(ms: number): Promise<boolean> {
    return (await this.redis.set(`${this.prefix}:outage-prober`, String(process.pid), "PX", ms, "NX")) === "OK";
  }
}
