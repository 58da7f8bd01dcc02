import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getCampaignStatus } from "../src/campaigns/campaign-status.ts";
import { launchCsvCampaign, type LaunchedCampaign } from "../src/campaigns/launch-campaign.ts";
import { loadConfig, type Config } from "../src/config/config.ts";
import { createLogger, type Logger } from "../src/config/logger.ts";
import { isFinalStatus } from "../src/model/states.ts";
import { deploymentQueuePrefix, prefixClaimKey } from "../src/queue/deployment-claim.ts";
import { createRedisConnection } from "../src/queue/redis.ts";
import { createSendQueue, enqueueBatches } from "../src/queue/send-queue.ts";
import { bindQueue, QueuePrefixClaimedError } from "../src/runtime/queue-binding.ts";
import { startSendWorker, type RunningSendWorker } from "../src/runtime/send-worker-runtime.ts";
import { startSandbox, type SandboxServer } from "../src/sandbox/server.ts";
import { openDatabase, type Database } from "../src/store/database.ts";
import { readDeploymentId } from "../src/store/deployment-repository.ts";
import { clearRedisPrefix, createTestDatabase, csvOf, singaporeNumbers, waitFor } from "./helpers/test-env.ts";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/**
 * One deployment: its own database (so its own deployment id) and, unlike every other test file, NO explicit
 * QUEUE_PREFIX: it runs on the default, `{smsblast:<12 hex of its deployment id>}`. That prefix is as private as
 * the per-file prefixes of test/helpers/test-env.ts: the id comes from this test's fresh database, so no other
 * test file (and no developer's deployment) can have it, and cleanup deletes exactly its keys.
 */
interface Deployment {
  name: string;
  config: Config;
  db: Database;
  log: Logger;
  logs(): string;
  deploymentId: string;
  prefix: string;
  sandboxUrl: string;
  drop(): Promise<void>;
}

async function createDeployment(name: string, sandbox: SandboxServer, env: Record<string, string> = {}) {
  const database = await createTestDatabase(`deploy_${name}`);
  // Each deployment reaches the one sandbox through its own listener, so the ledger says who sent what.
  const sandboxUrl = await sandbox.listen(name);
  const config = loadConfig({
    DATABASE_URL: database.databaseUrl,
    REDIS_URL,
    ENGAGELAB_MESSAGES_URL: sandboxUrl,
    ENGAGELAB_SMS_URL: sandboxUrl,
    ENGAGELAB_OTP_URL: sandboxUrl,
    BATCH_SIZE: "100",
    SEND_BACKOFF_MS: "50",
    SEND_CONCURRENCY: "4",
    PROVIDER_TIMEOUT_MS: "3000",
    LOG_LEVEL: "debug",
    ...env,
  });
  let output = "";
  const stream = new PassThrough();
  stream.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  const db = openDatabase(database.databaseUrl);
  const deploymentId = await readDeploymentId(db);
  return {
    name,
    config,
    db,
    log: createLogger("debug", stream),
    logs: () => output,
    deploymentId,
    prefix: config.queuePrefix ?? deploymentQueuePrefix(deploymentId),
    sandboxUrl,
    async drop() {
      await db.close();
      await database.dropDatabase();
    },
  } satisfies Deployment;
}

describe("two deployments on one Redis", () => {
  let sandbox: SandboxServer;
  let tmp: string;
  const deployments: Deployment[] = [];
  const prefixesToClear: string[] = [];
  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0, seed: 7 });
    tmp = await mkdtemp(path.join(tmpdir(), "smsblast-deployments-"));
  });
  afterAll(async () => {
    for (const d of deployments) await d.drop();
    for (const prefix of [...prefixesToClear, ...deployments.map((d) => d.prefix)]) await clearRedisPrefix(prefix);
    await sandbox?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  async function list(name: string, numbers: string[]): Promise<string> {
    const file = path.join(tmp, name);
    await writeFile(
      file,
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    return file;
  }

  async function launch(d: Deployment, file: string, enqueuePrefix: string): Promise<LaunchedCampaign> {
    const connection = createRedisConnection(REDIS_URL, "producer");
    const queue = createSendQueue(connection, { prefix: enqueuePrefix, attempts: 6, backoffMs: 50 });
    try {
      return await launchCsvCampaign(
        { db: d.db, log: d.log, enqueue: (id, batchIds) => enqueueBatches(queue, id, batchIds) },
        {
          name: `${d.name} ${path.basename(file)}`,
          file,
          templateId: "promo",
          params: {},
          phoneColumn: "phone",
          provider: "messages",
          onUnknown: "at_most_once",
          batchSize: d.config.send.batchSize,
        },
      );
    } finally {
      await queue.close();
      connection.disconnect();
    }
  }

  it("default settings: each deployment's workers send its own campaigns, every number once, none of the other's", async () => {
    const a = await createDeployment("a", sandbox);
    const b = await createDeployment("b", sandbox);
    deployments.push(a, b);
    // The braces enclose the whole prefix (one Redis Cluster hash tag); the part inside names the deployment.
    for (const d of [a, b]) {
      expect(d.config.queuePrefix).toBeUndefined();
      expect(d.prefix).toBe(`{smsblast:${d.deploymentId.replaceAll("-", "").slice(0, 12)}}`);
    }
    expect(a.prefix).not.toBe(b.prefix);

    // Before the upgrade both shared one prefix (the old default `{smsblast}`; a private stand-in here). Their
    // first campaigns' jobs sit there, where no new worker looks: the reconciler must re-add them.
    const oldPrefix = `{smsblast-test-olddefault-${process.pid}-${Math.random().toString(36).slice(2, 8)}}`;
    prefixesToClear.push(oldPrefix);
    const numbers = {
      a1: singaporeNumbers(1_000, 0),
      b1: singaporeNumbers(1_000, 10_000),
      a2: singaporeNumbers(1_000, 20_000),
      b2: singaporeNumbers(1_000, 30_000),
    };
    const a1 = await launch(a, await list("a1.csv", numbers.a1), oldPrefix);
    const b1 = await launch(b, await list("b1.csv", numbers.b1), oldPrefix);

    const workers: RunningSendWorker[] = [];
    try {
      for (const d of [a, b, a, b]) workers.push(await startSendWorker(d.config, d.log));
      expect(workers.map((w) => w.binding.prefix)).toEqual([a.prefix, b.prefix, a.prefix, b.prefix]);

      // New campaigns go to each deployment's own queue, as `smsblast send` puts them.
      const bound = async (d: Deployment) => {
        const redis = createRedisConnection(REDIS_URL, "producer");
        try {
          return (await bindQueue(d.config, d.db, redis)).prefix;
        } finally {
          redis.disconnect();
        }
      };
      const a2 = await launch(a, await list("a2.csv", numbers.a2), await bound(a));
      const b2 = await launch(b, await list("b2.csv", numbers.b2), await bound(b));

      const campaigns: [Deployment, LaunchedCampaign][] = [
        [a, a1],
        [b, b1],
        [a, a2],
        [b, b2],
      ];
      for (const [d, c] of campaigns) {
        const report = await waitFor(async () => {
          const r = await getCampaignStatus(d.db, c.campaignId);
          return isFinalStatus(r.status) ? r : undefined;
        }, 60_000);
        expect(report, `${d.name} ${c.campaignId}`).toMatchObject({
          status: "completed",
          recipients: { accepted: 1_000, pending: 0 },
        });
      }
    } finally {
      for (const w of workers) await w.stop();
    }

    // The ledger: every number exactly once, each request through its own deployment's listener and naming a
    // batch of that deployment's database.
    const sent = sandbox.ledger.stats();
    expect(sent.accepted.messages).toBe(4_000);
    const all = Object.values(numbers).flat();
    for (const n of all) expect(sandbox.ledger.timesReceived(n, "messages"), n).toBe(1);
    const batchesOf = async (d: Deployment) =>
      new Set((await d.db.prisma.batch.findMany({ select: { id: true } })).map((row) => row.id));
    const owned = { a: await batchesOf(a), b: await batchesOf(b) };
    const requests = sandbox.ledger.requestLog().filter((r) => r.outcome === "sent");
    expect(requests).toHaveLength(40);
    for (const r of requests) {
      const via = r.via as "a" | "b";
      expect(owned[via].has(r.batchId!), `batch ${r.batchId} sent by deployment ${via}`).toBe(true);
    }
    // Nothing was taken from the old prefix: its jobs are still waiting there, for no one (batch jobs carry
    // fair-share priorities, so BullMQ keeps them in `prioritized`, not in the `wait` list).
    const redis = createRedisConnection(REDIS_URL, "producer");
    try {
      const old = createSendQueue(redis, { prefix: oldPrefix, attempts: 1, backoffMs: 1 });
      expect(await old.getJobCountByTypes("waiting", "prioritized")).toBe(a1.batchIds.length + b1.batchIds.length);
      await old.close();
    } finally {
      redis.disconnect();
    }
  });

  it("a job naming a batch its database does not know fails with that reason, stays in the failed set, and is logged", async () => {
    const [a, b] = deployments as [Deployment, Deployment];
    const foreign = await launch(b, await list("b3.csv", singaporeNumbers(50, 40_000)), b.prefix);
    // A stray job: B's batch on A's queue (as a shared prefix or a stale worker of B would leave it).
    const redis = createRedisConnection(REDIS_URL, "producer");
    const aQueue = createSendQueue(redis, { prefix: a.prefix, attempts: 6, backoffMs: 50 });
    const strayId = foreign.batchIds[0]!;
    await enqueueBatches(aQueue, foreign.campaignId, [strayId]);
    const workerA = await startSendWorker(a.config, a.log);
    try {
      const failed = await waitFor(async () => {
        // The state first, then the job: a job read before it failed has no failedReason yet.
        return (await aQueue.getJobState(strayId)) === "failed" ? aQueue.getJob(strayId) : undefined;
      });
      expect(failed.failedReason).toMatch(
        new RegExp(
          `batch ${strayId} is not in this deployment's database \\(deployment ${a.deploymentId}\\): the job belongs to another deployment`,
        ),
      );
      expect(failed.attemptsMade).toBe(1);
      expect(await aQueue.getJobCountByTypes("failed")).toBe(1);
      expect(await aQueue.getJobCountByTypes("completed")).toBe(0);
      expect(a.logs()).toMatch(/"level":50[^\n]*not in this deployment's database/);
    } finally {
      await workerA.stop();
      await aQueue.close();
      redis.disconnect();
    }
    // A sent nothing for it; B still owns and sends the batch.
    expect(sandbox.ledger.requestLog().filter((r) => r.batchId === strayId)).toEqual([]);
    const workerB = await startSendWorker(b.config, b.log);
    try {
      const report = await waitFor(async () => {
        const r = await getCampaignStatus(b.db, foreign.campaignId);
        return isFinalStatus(r.status) ? r : undefined;
      });
      expect(report).toMatchObject({ status: "completed", recipients: { accepted: 50 } });
    } finally {
      await workerB.stop();
    }
    const byB = sandbox.ledger.requestLog().filter((r) => r.batchId === strayId);
    expect(byB.map((r) => r.via)).toEqual(["b"]);
  });

  it("an explicit QUEUE_PREFIX is claimed by the first deployment; a worker of another refuses to start, naming both", async () => {
    const shared = `{smsblast-test-shared-${process.pid}-${Math.random().toString(36).slice(2, 8)}}`;
    prefixesToClear.push(shared);
    const c = await createDeployment("c", sandbox, { QUEUE_PREFIX: shared });
    const d = await createDeployment("d", sandbox, { QUEUE_PREFIX: shared });
    deployments.push(c, d);
    const first = await startSendWorker(c.config, c.log);
    try {
      expect(first.binding).toEqual({ deploymentId: c.deploymentId, prefix: shared });
      // The same deployment may start as many workers on it as it likes.
      const second = await startSendWorker(c.config, c.log);
      await second.stop();
      const refused = await startSendWorker(d.config, d.log).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(QueuePrefixClaimedError);
      expect((refused as Error).message).toContain(`QUEUE_PREFIX ${shared} belongs to deployment ${c.deploymentId}`);
      expect((refused as Error).message).toContain(`this database (DATABASE_URL) is deployment ${d.deploymentId}`);
      expect((refused as Error).message).toContain(deploymentQueuePrefix(d.deploymentId));
    } finally {
      await first.stop();
    }
    const redis = createRedisConnection(REDIS_URL, "producer");
    try {
      expect(await redis.get(prefixClaimKey(shared))).toBe(c.deploymentId);
    } finally {
      redis.disconnect();
    }
  });
});
