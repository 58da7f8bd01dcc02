import type { RedisConnection } from "../queue/redis.ts";
import type { Config } from "../config/config.ts";
import { UserError } from "../model/errors.ts";
import { claimQueuePrefix, deploymentQueuePrefix, prefixClaimKey } from "../queue/deployment-claim.ts";
import type { Database } from "../store/database.ts";
import { readDeploymentId } from "../store/deployment-repository.ts";

/**
 * One deployment, one queue: the queue namespace a process uses is bound to its database. By default it is the
 * deployment's own (`{smsblast:<12 hex of the deployment id>}`), so a staging and a production deployment, or a
 * stale worker of another database, sharing a Redis never see each other's jobs. An explicit QUEUE_PREFIX is
 * claimed in Redis by the first deployment that uses it; any other is refused.
 */
export interface QueueBinding {
  deploymentId: string;
  /** The prefix of every BullMQ key of this deployment. */
  prefix: string;
}

export class QueuePrefixClaimedError extends UserError {
  override name = "QueuePrefixClaimedError";
  constructor(
    readonly prefix: string,
    readonly claimedBy: string,
    readonly deploymentId: string,
  ) {
    super(
      "queue_prefix_claimed",
      `QUEUE_PREFIX ${prefix} belongs to deployment ${claimedBy} (Redis key ${prefixClaimKey(prefix)}), ` +
        `but this database (DATABASE_URL) is deployment ${deploymentId}: its workers would take the other's jobs. ` +
        `Give each deployment its own QUEUE_PREFIX, or unset it to use this deployment's own ` +
        `(${deploymentQueuePrefix(deploymentId)}); delete that key only if deployment ${claimedBy} is gone`,
      { field: "QUEUE_PREFIX", kind: "conflict" },
    );
  }
}

/** The queue prefix of this process's deployment, claimed for it in Redis; refuses a prefix another one owns. */
export async function bindQueue(
  config: Pick<Config, "queuePrefix">,
  db: Database,
  redis: RedisConnection,
): Promise<QueueBinding> {
  const deploymentId = await readDeploymentId(db);
  const prefix = config.queuePrefix ?? deploymentQueuePrefix(deploymentId);
  const claim = await claimQueuePrefix(redis, prefix, deploymentId);
  if (!claim.ok) throw new QueuePrefixClaimedError(prefix, claim.claimedBy, deploymentId);
  return { deploymentId, prefix };
}
