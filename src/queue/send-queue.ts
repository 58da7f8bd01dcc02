import type { RedisConnection } from "./redis.ts";
import { Queue, type JobsOptions } from "bullmq";
import type { Config } from "../config/config.ts";

export const SEND_QUEUE_NAME = "send";
export const SEND_JOB_NAME = "send-batch";
/** Starts a `scheduled` campaign at its time: flips it to running and queues its batches. */
export const START_JOB_NAME = "start-campaign";

/**
 * Job payloads carry ids only: BullMQ keeps job data in clear text in Redis, and Postgres has the numbers.
 * `batchId` is absent on start jobs.
 */
export interface SendJobData {
  campaignId: string;
  batchId?: string;
}

export interface SendQueueOptions {
  prefix: string;
  attempts: number;
  backoffMs: number;
}

/**
 * The send queue's options, from the config and the deployment's queue prefix (bindQueue): every producer (CLI,
 * worker, scheduler, API) uses these.
 */
export function sendQueueOptions(config: Pick<Config, "send">, prefix: string): SendQueueOptions {
  return { prefix, attempts: config.send.attempts, backoffMs: config.send.backoffMs };
}

export function createSendQueue(connection: RedisConnection, options: SendQueueOptions): Queue<SendJobData> {
  const defaultJobOptions: JobsOptions = {
    attempts: options.attempts,
    backoff: { type: "exponential", delay: options.backoffMs, jitter: 0.5 },
    // Postgres keeps every outcome; Redis keeps nothing it does not need. Removing failed jobs too means a
    // later re-enqueue with the same jobId (reconciler) is never blocked by a leftover.
    removeOnComplete: true,
    removeOnFail: true,
  };
  return new Queue<SendJobData>(SEND_QUEUE_NAME, { connection, prefix: options.prefix, defaultJobOptions });
}

/**
 * Enqueues one job per batch; jobId = batch id, so enqueueing a batch that already has a job is a no-op.
 * Chunked so a 1000-batch campaign is a handful of round trips.
 */
export async function enqueueBatches(
  queue: Queue<SendJobData>,
  campaignId: string,
  batchIds: readonly string[],
  options: { delayMs?: number; chunkSize?: number } = {},
): Promise<void> {
  const chunkSize = options.chunkSize ?? 500;
  for (let i = 0; i < batchIds.length; i += chunkSize) {
    const chunk = batchIds.slice(i, i + chunkSize);
    await queue.addBulk(
      chunk.map((batchId) => ({
        name: SEND_JOB_NAME,
        data: { campaignId, batchId },
        opts: { jobId: batchId, ...(options.delayMs ? { delay: options.delayMs } : {}) },
      })),
    );
  }
}

/** One delayed job per scheduled campaign (jobId `start-<campaign id>`): adding it twice is a no-op. */
export async function enqueueCampaignStart(queue: Queue<SendJobData>, campaignId: string, at: Date): Promise<void> {
  await queue.add(
    START_JOB_NAME,
    { campaignId },
    { jobId: `start-${campaignId}`, delay: Math.max(0, at.getTime() - Date.now()) },
  );
}

/** What the domain needs from the queue, without knowing BullMQ. */
export interface CampaignQueue {
  // Function properties, not methods: callers pass them on unbound (`{ enqueue: queue.enqueue }`).
  enqueue: (campaignId: string, batchIds: readonly string[]) => Promise<void>;
  scheduleStart: (campaignId: string, at: Date) => Promise<void>;
}

export function campaignQueueOf(queue: Queue<SendJobData>): CampaignQueue {
  return {
    enqueue: (campaignId, batchIds) => enqueueBatches(queue, campaignId, batchIds),
    scheduleStart: (campaignId, at) => enqueueCampaignStart(queue, campaignId, at),
  };
}
