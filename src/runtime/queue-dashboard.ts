import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { FastifyAdapter } from "@bull-board/fastify";
import type { Queue } from "bullmq";
import type { FastifyPluginCallback } from "fastify";

/**
 * Bull Board over the send and schedule queues, as a fastify plugin for the API to mount (and guard: the
 * API's auth hook lets GETs through for any role and other methods for admins only). Built here because it
 * speaks BullMQ, which the HTTP routes never touch. Job payloads are ids only (src/queue/send-queue.ts), so
 * the board shows no phone number.
 */
export function createQueueDashboard(queues: readonly Queue[], basePath: string): FastifyPluginCallback {
  const serverAdapter = new FastifyAdapter();
  createBullBoard({
    queues: queues.map((queue) => new BullMQAdapter(queue)),
    serverAdapter,
    options: { uiConfig: { boardTitle: "smsblast queues" } },
  });
  serverAdapter.setBasePath(basePath);
  return serverAdapter.registerPlugin();
}
