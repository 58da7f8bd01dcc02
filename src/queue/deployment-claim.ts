import type { RedisConnection } from "./redis.ts";

/** The name inside the default prefix's braces, before the deployment's part. */
const DEFAULT_PREFIX_NAME = "smsblast";
const DEPLOYMENT_HEX_DIGITS = 12;

/**
 * The default queue prefix of a deployment: `{smsblast:<first 12 hex digits of its id>}`. The braces enclose
 * the whole prefix, so every key of a queue hashes to one Redis Cluster slot (the hash tag is what lies between
 * the first `{` and the next `}`); braces around only part of it would split a queue's keys over slots and
 * BullMQ's scripts would fail with CROSSSLOT.
 */
export function deploymentQueuePrefix(deploymentId: string): string {
  const hex = deploymentId.replaceAll("-", "").toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new RangeError(`deployment id ${deploymentId} is not a UUID`);
  return `{${DEFAULT_PREFIX_NAME}:${hex.slice(0, DEPLOYMENT_HEX_DIGITS)}}`;
}

/** The key that says which deployment owns a prefix; inside the prefix, so it is cleared with the queue's keys. */
export function prefixClaimKey(prefix: string): string {
  return `${prefix}:deployment`;
}

export type PrefixClaim = { ok: true; created: boolean } | { ok: false; claimedBy: string };

/**
 * Claims `prefix` for this deployment (SET NX): the first deployment to use a prefix owns it. A prefix already
 * claimed by this deployment is fine; one claimed by another is refused, so two databases never share a queue.
 */
export async function claimQueuePrefix(
  redis: RedisConnection,
  prefix: string,
  deploymentId: string,
): Promise<PrefixClaim> {
  const key = prefixClaimKey(prefix);
  if ((await redis.set(key, deploymentId, "NX")) === "OK") return { ok: true, created: true };
  const owner = await redis.get(key);
  // Deleted between the two commands: claim it again.
  if (owner === null) return claimQueuePrefix(redis, prefix, deploymentId);
  return owner === deploymentId ? { ok: true, created: false } : { ok: false, claimedBy: owner };
}

/**
 * Gives a prefix up, for tools that drop and re-create their own database under a fixed prefix (the demo, the
 * benchmarks): the new database is a new deployment. Never for a prefix other deployments may use.
 */
export async function releaseQueuePrefix(redis: RedisConnection, prefix: string): Promise<void> {
  await redis.del(prefixClaimKey(prefix));
}
