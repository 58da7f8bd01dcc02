import http from "node:http";
import type { AddressInfo } from "node:net";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Logger } from "../config/logger.ts";
import { ProviderError } from "../engagelab/errors.ts";
import type { SmsProvider } from "../engagelab/provider.ts";
import type { ProviderApi } from "../model/states.ts";

// Prometheus metrics of the API and worker processes. One registry per process role (tests run several in
// one process, and prom-client's default registry would refuse the second copy of each metric).

/** Provider requests take 50 ms to the 10 s timeout; HTTP routes 1 ms to the longest CSV download. */
const PROVIDER_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60];

/** BullMQ job states worth a gauge: what is waiting, running, held back, and done. */
const QUEUE_STATES = [
  "waiting",
  "active",
  "delayed",
  "prioritized",
  "waiting-children",
  "completed",
  "failed",
  "paused",
] as const;

/** What a queue-depth gauge asks of a queue (BullMQ's Queue has it). */
export interface CountableQueue {
  readonly name: string;
  getJobCounts(...states: string[]): Promise<Record<string, number>>;
}

export interface ProcessMetrics {
  registry: Registry;
  /** Text exposition format, for GET /metrics. */
  render(): Promise<string>;
  contentType: string;
}

/** `extraText`: metrics kept outside prom-client (the delivery pipeline's counters), appended to the text. */
function processMetrics(queues: readonly CountableQueue[], extraText?: () => string): ProcessMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "smsblast_" });
  new Gauge({
    name: "smsblast_queue_jobs",
    help: "BullMQ jobs by queue and state",
    labelNames: ["queue", "state"],
    registers: [registry],
    async collect() {
      for (const queue of queues) {
        const counts = await queue.getJobCounts(...QUEUE_STATES);
        for (const state of QUEUE_STATES) this.set({ queue: queue.name, state }, counts[state] ?? 0);
      }
    },
  });
  const render = async () => {
    const text = await registry.metrics();
    return extraText ? `${text}\n${extraText()}` : text;
  };
  return { registry, render, contentType: registry.contentType };
}

/** The delivery worker's metrics: process metrics, queue depth and the delivery counters it keeps. */
export function createDeliveryWorkerMetrics(
  queues: readonly CountableQueue[],
  extraText: () => string,
): ProcessMetrics {
  return processMetrics(queues, extraText);
}

export interface ApiMetrics extends ProcessMetrics {
  /** Route is the pattern (`/api/v1/campaigns/:id`), never the URL: bounded label values, no ids. */
  observeRequest(method: string, route: string, status: number, seconds: number): void;
}

/** The scheduler's metrics: process metrics and the depth of the queues it feeds. */
export function createSchedulerMetrics(queues: readonly CountableQueue[]): ProcessMetrics {
  return processMetrics(queues);
}

export function createApiMetrics(queues: readonly CountableQueue[], extraText?: () => string): ApiMetrics {
  const base = processMetrics(queues, extraText);
  const duration = new Histogram({
    name: "smsblast_http_request_duration_seconds",
    help: "HTTP API requests by method, route pattern and status",
    labelNames: ["method", "route", "status"],
    buckets: HTTP_BUCKETS,
    registers: [base.registry],
  });
  return {
    ...base,
    observeRequest(method, route, status, seconds) {
      duration.observe({ method, route, status: String(status) }, seconds);
    },
  };
}

export interface WorkerMetrics extends ProcessMetrics {
  /** The providers, each request timed and its outcome counted. */
  instrument(providers: Record<ProviderApi, SmsProvider>): Record<ProviderApi, SmsProvider>;
  batchRetried(): void;
  rateLimitBackedOff(): void;
}

export function createWorkerMetrics(queues: readonly CountableQueue[]): WorkerMetrics {
  const base = processMetrics(queues);
  const registers = [base.registry];
  const batches = new Counter({
    name: "smsblast_batches_sent_total",
    help: "provider requests for a batch by provider and outcome (accepted, partial, rejected, error)",
    labelNames: ["provider", "outcome"],
    registers,
  });
  const recipients = new Counter({
    name: "smsblast_recipients_total",
    help: "recipients in provider answers by provider and outcome (accepted, failed, unknown)",
    labelNames: ["provider", "outcome"],
    registers,
  });
  const duration = new Histogram({
    name: "smsblast_provider_request_duration_seconds",
    help: "provider requests (one batch) by provider",
    labelNames: ["provider"],
    buckets: PROVIDER_BUCKETS,
    registers,
  });
  const errors = new Counter({
    name: "smsblast_provider_errors_total",
    help: "failed provider requests by provider and code (the provider's code, else http_<status>, else the failure kind)",
    labelNames: ["provider", "code"],
    registers,
  });
  const retries = new Counter({
    name: "smsblast_batch_retries_total",
    help: "batch attempts scheduled again after a retryable failure",
    registers,
  });
  const backoffs = new Counter({
    name: "smsblast_rate_limit_backoffs_total",
    help: "times the workers backed off together after HTTP 429",
    registers,
  });

  const instrumentOne = (provider: SmsProvider): SmsProvider => ({
    name: provider.name,
    async sendBatch(request) {
      const stop = duration.startTimer({ provider: provider.name });
      try {
        const result = await provider.sendBatch(request);
        stop();
        const unknown = result.ambiguous?.length ?? 0;
        const outcome =
          result.accepted.length === request.recipients.length
            ? "accepted"
            : result.accepted.length === 0
              ? "rejected"
              : "partial";
        batches.inc({ provider: provider.name, outcome });
        recipients.inc({ provider: provider.name, outcome: "accepted" }, result.accepted.length);
        if (result.failed.length > 0)
          recipients.inc({ provider: provider.name, outcome: "failed" }, result.failed.length);
        if (unknown > 0) recipients.inc({ provider: provider.name, outcome: "unknown" }, unknown);
        return result;
      } catch (error) {
        stop();
        batches.inc({ provider: provider.name, outcome: "error" });
        errors.inc({ provider: provider.name, code: errorCodeOf(error) });
        throw error;
      }
    },
  });
  return {
    ...base,
    instrument: (providers) =>
      Object.fromEntries(
        Object.entries(providers).map(([name, provider]) => [name, instrumentOne(provider)]),
      ) as Record<ProviderApi, SmsProvider>,
    batchRetried: () => retries.inc(),
    rateLimitBackedOff: () => backoffs.inc(),
  };
}

function errorCodeOf(error: unknown): string {
  if (!(error instanceof ProviderError)) return "unexpected";
  if (error.code !== undefined) return String(error.code);
  if (error.status !== undefined) return `http_${error.status}`;
  return error.kind;
}

export interface RunningMetricsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * GET /metrics (and GET /healthz) on its own port (METRICS_PORT), without auth: for a scraper and the
 * orchestrator's probes on a private network.
 */
export async function startMetricsServer(
  metrics: ProcessMetrics,
  options: { host: string; port: number; log: Logger },
): Promise<RunningMetricsServer> {
  const server = http.createServer((request, response) => {
    const path = request.url?.split("?")[0];
    // Liveness of a worker or scheduler (Kubernetes probes it here): the process is up and serving.
    if (request.method === "GET" && path === "/healthz") {
      response.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    if (request.method !== "GET" || path !== "/metrics") {
      response.writeHead(404).end();
      return;
    }
    metrics.render().then(
      (text) => response.writeHead(200, { "content-type": metrics.contentType }).end(text),
      (error: unknown) => {
        options.log.warn({ err: error }, "metrics not rendered");
        response.writeHead(500).end();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  options.log.info({ port }, "metrics listening");
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
