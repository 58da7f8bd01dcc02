import type { FastifyPluginCallback } from "fastify";
import type { Config } from "../config/config.ts";
import type { Logger } from "../config/logger.ts";
import type { CronScheduler } from "../campaigns/recurring-campaigns.ts";
import type { TemplatesApi } from "../campaigns/template-catalog.ts";
import type { SmsProvider } from "../engagelab/provider.ts";
import type { ProviderApi } from "../model/states.ts";
import type { CampaignQueue } from "../queue/send-queue.ts";
import type { SendRateGate } from "../campaigns/send-batch.ts";
import type { Database } from "../store/database.ts";
import type { DeliveryMetrics } from "./delivery-metrics.ts";
import type { ApiMetrics } from "./metrics.ts";

/**
 * What the HTTP API's routes call the use cases with: the process's open connections, wired once by
 * src/runtime/api-server.ts. Routes see ports (a queue, a template catalog), never BullMQ or pg directly.
 */
export interface ApiContext {
  config: Config;
  log: Logger;
  db: Database;
  queue: CampaignQueue;
  /** The schedule queue's job schedulers, for the schedule routes. */
  scheduler: CronScheduler;
  templates: TemplatesApi;
  providers: Record<ProviderApi, SmsProvider>;
  /** The shared provider rates, which the test send (the priority lane) goes through. */
  sendGate?: SendRateGate;
  /** Postgres and Redis reachable, migrations current: what `/readyz` answers. */
  checkReady(): Promise<ReadinessReport>;
  /** Delivery callbacks: hands stored rows to the delivery queue; the receiver's counters. */
  delivery: { requestApply(): Promise<void>; metrics: DeliveryMetrics; nowMs?: () => number };
  /** HTTP request timings and the process's metrics; GET /metrics is on the API when no METRICS_PORT is set. */
  metrics?: ApiMetrics;
  /** Bull Board as a fastify plugin (src/runtime/queue-dashboard.ts), mounted by the app at its base path. */
  queueDashboard?: FastifyPluginCallback;
}

export interface ReadinessReport {
  ready: boolean;
  checks: { postgres: string; redis: string; migrations: string };
}
