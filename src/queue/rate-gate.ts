import type { Platform } from "../config/platforms.ts";
import type { RedisConnection } from "./redis.ts";

/**
 * Provider rates shared by every process and every lane of a deployment (README "Fair sharing, priority and
 * rates"): the global SEND_RATE_LIMIT, a limit per platform (each platform is one EngageLab account, one key
 * pair), and a campaign's own `--rate`. One Lua script paces them together (a GCRA-style virtual clock per key:
 * the time the next request may leave), so a request takes its slot on every key it is under at once or on none.
 *
 * Each key holds a time (ms, Redis's own clock: worker hosts' clocks never matter) and lives under the queue
 * prefix, so its {hash tag} puts every key of one call in the same Redis Cluster slot.
 *
 * Lanes: a bulk batch takes a slot only if it leaves within BULK_MAX_WAIT_MS; otherwise its job is delayed
 * (the queue keeps it, no attempt spent) and the slot stays free. The priority lane (send-one, the API's test
 * send) always takes the next slot and waits for it: bulk (whole batches, and each request of a `custom` batch)
 * never books more than BULK_MAX_WAIT_MS ahead, so a one-off message waits at most that long behind bulk,
 * however many batches are queued or in flight.
 */

/** How far ahead a bulk batch may book a slot; beyond it, its job is delayed rather than holding a worker slot. */
export const BULK_MAX_WAIT_MS = 250;

/** A campaign slot booked for a delayed job is kept this long past its time, for the job to come back to it. */
const SLOT_KEEP_MS = 10 * 60_000;

export type Lane = "bulk" | "priority";

export interface RateLimits {
  /** SEND_RATE_LIMIT: provider requests per second across every process and lane; 0 = none. */
  requestsPerSecond: number;
  /** PLATFORM_RATE_LIMITS: requests per second to one platform (one provider account). */
  perPlatform: Partial<Record<Platform, number>>;
}

export interface GateRequest {
  platform: Platform;
  /**
   * Provider requests this step makes: 1 for a bulk batch; 0 before a `custom` batch, whose requests are
   * paced one by one (`hold`) while it sends, so here the shared keys are only read.
   */
  requests: number;
  /** A campaign with its own rate (messages per second): `messages` is this batch's recipients. */
  campaign?: { id: string; batchId: string; messagesPerSecond: number; messages: number };
  lane: Lane;
}

export type GateDecision =
  /** The slot is taken; `waitedMs` is how long this call slept for it. */
  | { kind: "go"; waitedMs: number }
  /** Over a limit: come back in `delayMs` (nothing was taken, or only the campaign's own slot, kept for it). */
  | { kind: "later"; delayMs: number };

// KEYS: the shared keys (1..n), then, with a campaign rate, the campaign key and the batch's slot key.
// ARGV[1] max wait in ms (-1: take the next slot whatever the wait), ARGV[2] n, ARGV[2+i] the ms key i is
// occupied by this request (0: read only, e.g. a platform without a limit, for a 429 penalty), ARGV[3+n] the ms
// the campaign key is occupied (absent: no campaign). Returns {taken (0/1), wait in ms}.
const ACQUIRE_SCRIPT = `
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local maxWait = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local campaignMs = tonumber(ARGV[3 + n] or "0")
local function at(key) return tonumber(redis.call("GET", key) or "0") or 0 end
local function keep(key, value, extra)
  redis.call("SET", key, string.format("%.3f", value), "PX", math.max(1, math.ceil(value - now)) + extra)
end
local floor = now
local campaignKey, slotKey
if campaignMs > 0 then
  campaignKey = KEYS[n + 1]
  slotKey = KEYS[n + 2]
  local slot = tonumber(redis.call("GET", slotKey) or "")
  if not slot then
    -- Only this campaign's jobs use its key, so booking far ahead is safe: the job waits (delayed) for its slot.
    slot = math.max(now, at(campaignKey))
    keep(campaignKey, slot + campaignMs, 60000)
  end
  if maxWait >= 0 and slot - now > maxWait then
    keep(slotKey, slot, ${SLOT_KEEP_MS})
    return {0, math.ceil(slot - now)}
  end
  if slot > floor then floor = slot end
end
local start = floor
for i = 1, n do
  local v = at(KEYS[i])
  if v > start then start = v end
end
if maxWait >= 0 and start - now > maxWait then
  -- Shared keys are never booked far ahead: that would hold back every other lane and campaign.
  if slotKey then keep(slotKey, floor, ${SLOT_KEEP_MS}) end
  return {0, math.ceil(start - now)}
end
for i = 1, n do
  local ms = tonumber(ARGV[2 + i])
  if ms > 0 then keep(KEYS[i], start + ms, 60000) end
end
if campaignKey then
  if at(campaignKey) < start + campaignMs then keep(campaignKey, start + campaignMs, 60000) end
  redis.call("DEL", slotKey)
end
return {1, math.ceil(start - now)}
`;

// KEYS[1] a platform key; ARGV[1] ms from now during which nothing may be sent to it.
const PENALTY_SCRIPT = `
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local untilMs = now + tonumber(ARGV[1])
if (tonumber(redis.call("GET", KEYS[1]) or "0") or 0) < untilMs then
  redis.call("SET", KEYS[1], string.format("%.3f", untilMs), "PX", math.ceil(untilMs - now) + 60000)
end
return 1
`;

type GateRedis = RedisConnection & {
  smsblastRateAcquire(...args: (string | number)[]): Promise<[number, number]>;
  smsblastRatePenalty(...args: (string | number)[]): Promise<number>;
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class RateGate {
  private readonly redis: GateRedis;

  constructor(
    redis: RedisConnection,
    private readonly prefix: string,
    readonly limits: RateLimits,
  ) {
    // EVALSHA with the script loaded on demand; on a Cluster, every key of a call shares the prefix's slot.
    if (!("smsblastRateAcquire" in redis)) {
      redis.defineCommand("smsblastRateAcquire", { lua: ACQUIRE_SCRIPT });
      redis.defineCommand("smsblastRatePenalty", { numberOfKeys: 1, lua: PENALTY_SCRIPT });
    }
    this.redis = redis as GateRedis;
  }

  /** Whether requests to this platform are paced one by one (a global or a platform limit is set). */
  pacesRequests(platform: Platform): boolean {
    return this.limits.requestsPerSecond > 0 || (this.limits.perPlatform[platform] ?? 0) > 0;
  }

  /**
   * Bulk lane: takes the slots and sleeps until they come (at most BULK_MAX_WAIT_MS), or answers `later`.
   * Priority lane: always takes the next slot and sleeps until it comes.
   */
  async acquire(request: GateRequest): Promise<GateDecision> {
    const keys: string[] = [];
    const occupy: number[] = [];
    if (this.limits.requestsPerSecond > 0) {
      keys.push(this.key("all"));
      occupy.push((request.requests * 1000) / this.limits.requestsPerSecond);
    }
    // Always read: a 429 from the platform (penalize) holds every lane, limit or not.
    const platformLimit = this.limits.perPlatform[request.platform] ?? 0;
    keys.push(this.key(`platform:${request.platform}`));
    occupy.push(platformLimit > 0 ? (request.requests * 1000) / platformLimit : 0);
    const args: (string | number)[] = [];
    const campaign = request.campaign;
    if (campaign) {
      keys.push(this.key(`campaign:${campaign.id}`), this.key(`slot:${campaign.batchId}`));
    }
    const maxWait = request.lane === "priority" ? -1 : BULK_MAX_WAIT_MS;
    args.push(keys.length, ...keys, maxWait, occupy.length, ...occupy.map(formatMs));
    if (campaign) args.push(formatMs((campaign.messages * 1000) / campaign.messagesPerSecond));
    const [taken, waitMs] = await this.redis.smsblastRateAcquire(...args);
    if (!taken) return { kind: "later", delayMs: Math.max(1, waitMs) };
    if (waitMs > 0) await sleep(waitMs);
    return { kind: "go", waitedMs: Math.max(0, waitMs) };
  }

  /**
   * Waits for one request's slot: a one-off send (priority lane) books the next slot at once; a request inside
   * a bulk `custom` batch books only within BULK_MAX_WAIT_MS and otherwise sleeps and asks again, so bulk never
   * books further ahead than that, here either. Returns the time waited.
   */
  async hold(platform: Platform, lane: Lane): Promise<number> {
    const started = Date.now();
    for (;;) {
      const decision = await this.acquire({ platform, requests: 1, lane });
      if (decision.kind === "go") return Date.now() - started;
      await sleep(Math.max(10, decision.delayMs - BULK_MAX_WAIT_MS / 2));
    }
  }

  /** A 429 from a platform: nothing goes to it, from any process or lane, for `ms`. */
  async penalize(platform: Platform, ms: number): Promise<void> {
    await this.redis.smsblastRatePenalty(this.key(`platform:${platform}`), Math.max(1, Math.round(ms)));
  }

  private key(name: string): string {
    return `${this.prefix}:rate:${name}`;
  }
}

/** Lua reads these back with tonumber: plain decimals, never an exponent. */
function formatMs(ms: number): string {
  return ms.toFixed(3);
}
