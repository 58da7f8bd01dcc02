import { Cluster, Redis, type ClusterNode, type RedisOptions } from "ioredis";
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

/** A single Redis or a Redis Cluster: BullMQ and every caller here take either. */
export type RedisConnection = Redis | Cluster;

/** `redis+cluster://[user:password@]host:port,host:port` (or `rediss+cluster://` for TLS): a Redis Cluster. */
const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)\/?$/;

export function isClusterUrl(url: string): boolean {
  return CLUSTER_URL.test(url);
}

/** The seed nodes and credentials of a cluster URL; ioredis discovers the other nodes from them. */
export function parseClusterUrl(url: string): {
  nodes: ClusterNode[];
  username?: string;
  password?: string;
  tls: boolean;
} {
  const match = CLUSTER_URL.exec(url);
  if (!match) throw new Error("not a redis+cluster:// URL");
  const [, scheme, username, password, hosts] = match;
  const nodes = hosts!.split(",").map((hostPort) => {
    const colon = hostPort.lastIndexOf(":");
    const host = colon > 0 ? hostPort.slice(0, colon) : hostPort;
    const port = colon > 0 ? Number(hostPort.slice(colon + 1)) : 6379;
    return { host: host.replace(/^\[|\]$/g, ""), port };
  });
  return {
    nodes,
    username: username ? decodeURIComponent(username) : undefined,
    password: password ? decodeURIComponent(password) : undefined,
    tls: scheme === "rediss",
  };
}

export function createRedisConnection(
  redisUrl: string,
  role: RedisRole,
  options: { connectTimeoutMs?: number; lazyConnect?: boolean } = {},
): RedisConnection {
  const retryStrategy = (attempt: number) =>
    role === "command" && attempt > COMMAND_RECONNECT_ATTEMPTS ? null : Math.min(attempt * 200, 5_000);
  const redisOptions: RedisOptions = {
    maxRetriesPerRequest: role === "worker" ? null : role === "command" ? 1 : 3,
    retryStrategy,
    connectTimeout: options.connectTimeoutMs ?? 10_000,
    lazyConnect: options.lazyConnect ?? false,
  };
  if (!isClusterUrl(redisUrl)) return new Redis(redisUrl, redisOptions);
  // A cluster: the queue prefix's {hash tag} keeps each queue's keys in one slot, which BullMQ's scripts need.
  const cluster = parseClusterUrl(redisUrl);
  return new Cluster(cluster.nodes, {
    clusterRetryStrategy: retryStrategy,
    lazyConnect: options.lazyConnect ?? false,
    redisOptions: {
      ...redisOptions,
      username: cluster.username,
      password: cluster.password,
      ...(cluster.tls ? { tls: {} } : {}),
    },
  });
}

/**
 * A `command` connection that has answered PING within `timeoutMs`, or a ServiceUnavailableError naming
 * Redis and its URL (without credentials). Commands call this before they store anything.
 */
export async function connectRedisForCommand(redisUrl: string, timeoutMs: number): Promise<RedisConnection> {
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
