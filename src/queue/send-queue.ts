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

/** BullMQ's highest priority number (the lowest priority): 2^21. */
export const MAX_JOB_PRIORITY = 2 ** 21;

/**
 * Fair sharing between campaigns (README "Fair sharing, priority and rates"): start-time fair queuing on
 * BullMQ priorities. A campaign's k-th queued batch gets priority `base + k`, where `base` is the priority of
 * the job at the head of the queue when it is queued; workers always take the lowest number. A campaign
 * launched while a 1M one is sending therefore alternates with it batch for batch from its first batch on,
 * instead of waiting behind the 1000 batches queued before it; three campaigns share three ways.
 * A retried or rate-delayed job keeps its priority (BullMQ keeps it through `delayed`), so it comes back
 * ahead of later batches; batches re-added by the reconciler or a resume join like a new launch. The base
 * falls back to 0 whenever the queue drains, and numbers are capped at BullMQ's maximum (a cap reached only
 * by ~2,000 campaigns of 1,000 batches queued without the queue ever draining; past it, FIFO).
 */
export async function fairShareBase(queue: Queue<SendJobData>): Promise<number> {
  const [head] = await queue.getPrioritized(0, 0);
  return head?.priority ?? 0;
}

export function fairSharePriority(base: number, index: number): number {
  return Math.min(MAX_JOB_PRIORITY, base + index + 1);
}

/**
 * Enqueues one job per batch; jobId = batch id, so enqueueing a batch that already has a job is a no-op (it
 * keeps its place). Chunked so a 1000-batch campaign is a handful of round trips. `batchIds` in batch order.
 * `fifo` (benchmarks only) leaves priorities out: every batch behind every one queued before it.
 */
export async function enqueueBatches(
  queue: Queue<SendJobData>,
  campaignId: string,
  batchIds: readonly string[],
  options: { delayMs?: number; chunkSize?: number; fifo?: boolean } = {},
): Promise<void> {
  const chunkSize = options.chunkSize ?? 500;
  const base = options.fifo ? 0 : await fairShareBase(queue);
  for (let i = 0; i < batchIds.length; i += chunkSize) {
    const chunk = batchIds.slice(i, i + chunkSize);
    await queue.addBulk(
      chunk.map((batchId, j) => ({
        name: SEND_JOB_NAME,
        data: { campaignId, batchId },
        opts: {
          jobId: batchId,
          ...(options.fifo ? {} : { priority: fairSharePriority(base, i + j) }),
          ...(options.delayMs ? { delay: options.delayMs } : {}),
        },
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
