import {
  launchCsvCampaign,
  type CsvCampaignInput,
  type LaunchedCampaign,
} from "../../src/campaigns/launch-campaign.ts";
import { getCampaignStatus, type CampaignStatusReport } from "../../src/campaigns/campaign-status.ts";
import { isFinalStatus } from "../../src/model/states.ts";
import { startSendWorker, type RunningSendWorker } from "../../src/runtime/send-worker-runtime.ts";
import { createRedisConnection } from "../../src/queue/redis.ts";
import { createSendQueue, enqueueBatches } from "../../src/queue/send-queue.ts";
import { waitFor, type TestEnv } from "./test-env.ts";

/** What `smsblast send` does, in-process: store the campaign and queue its batches. */
export async function launchCampaign(
  env: TestEnv,
  input: Partial<CsvCampaignInput> & { file: string },
): Promise<LaunchedCampaign> {
  const connection = createRedisConnection(env.config.redisUrl, "producer");
  const queue = createSendQueue(connection, {
    prefix: env.config.queuePrefix,
    attempts: env.config.send.attempts,
    backoffMs: env.config.send.backoffMs,
  });
  try {
    // Connected before the launch, as the CLI's withQueue is: a launch refused at once (a CSV without its
    // phone column fails before any database work) would otherwise disconnect a connection BullMQ is still
    // opening, and its "Connection is closed" rejection reaches no one.
    await queue.waitUntilReady();
    return await launchCsvCampaign(
      { db: env.db, log: env.log, enqueue: (campaignId, batchIds) => enqueueBatches(queue, campaignId, batchIds) },
      {
        name: "test campaign",
        templateId: "1",
        params: { order: "A-1" },
        phoneColumn: "phone",
        provider: "messages",
        onUnknown: "at_most_once",
        batchSize: env.config.send.batchSize,
        legacyVarMaxChars: env.config.send.legacyVarMaxChars,
        ...input,
      },
    );
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

export async function startWorker(env: TestEnv): Promise<RunningSendWorker> {
  return startSendWorker(env.config, env.log);
}

export async function waitForCampaignEnd(
  env: TestEnv,
  campaignId: string,
  timeoutMs = 45_000,
): Promise<CampaignStatusReport> {
  return waitFor(async () => {
    const report = await getCampaignStatus(env.db, campaignId);
    return isFinalStatus(report.status) ? report : undefined;
  }, timeoutMs);
}

/**
 * Waits (bounded) until the sandbox has been quiet for `quietMs` by its own clock — no request open, none
 * received in that period — so a late duplicate would still be counted.
 */
export async function sandboxQuiet(
  env: TestEnv,
  quietMs = 300,
  timeoutMs = 10_000,
  /** The sandbox's clock, when the test gave it one. */
  clock: () => number = Date.now,
): Promise<void> {
  await waitFor(
    () => {
      const log = env.sandbox.ledger.requestLog();
      const now = clock();
      const open = env.sandbox.ledger.openAt(now).filter((r) => r.outcome !== "hang");
      const last = log.at(-1)?.receivedAt ?? 0;
      return Promise.resolve(open.length === 0 && now - last >= quietMs ? true : undefined);
    },
    timeoutMs,
    50,
  );
}

/** The sandbox's ledger (target → times accepted), read after a quiet period. */
export async function sandboxLedger(
  env: TestEnv,
  api?: string,
  clock: () => number = Date.now,
): Promise<Record<string, number>> {
  await sandboxQuiet(env, 300, 10_000, clock);
  const response = await fetch(`${env.sandbox.url}/_sandbox/sent${api ? `?api=${api}` : ""}`);
  return (await response.json()) as Record<string, number>;
}

/** An enqueue function on the test's own queue prefix. */
export function enqueueFor(env: TestEnv): (campaignId: string, batchIds: readonly string[]) => Promise<void> {
  return async (campaignId, batchIds) => {
    const connection = createRedisConnection(env.config.redisUrl, "producer");
    const queue = createSendQueue(connection, {
      prefix: env.config.queuePrefix,
      attempts: env.config.send.attempts,
      backoffMs: env.config.send.backoffMs,
    });
    try {
      await enqueueBatches(queue, campaignId, batchIds);
    } finally {
      await queue.close();
      connection.disconnect();
    }
  };
}
