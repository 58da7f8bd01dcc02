import type { AddressInfo } from "node:net";
import type { Config } from "../config/config.ts";
import type { Logger } from "../config/logger.ts";
import { forgetExpiredUploads } from "../campaigns/uploads.ts";
import { forgetDeadSessions } from "../access/console-sessions.ts";
import { createFirstRunToken } from "../access/api-tokens.ts";
import { buildApiApp } from "../http/app.ts";
import { QUEUE_DASHBOARD_PREFIX } from "../http/auth.ts";
import { createQueueDashboard } from "./queue-dashboard.ts";
import { cronSchedulerOf } from "./scheduler-runtime.ts";
import { createApiMetrics, startMetricsServer, type RunningMetricsServer } from "./metrics.ts";
import { createRedisConnection } from "../queue/redis.ts";
import { createScheduleQueue } from "../queue/schedule-queue.ts";
import { coalescingRequester, createDeliveryQueue, requestApply } from "../queue/delivery-queue.ts";
import { DeliveryMetrics } from "./delivery-metrics.ts";
import { campaignQueueOf, createSendQueue, sendQueueOptions } from "../queue/send-queue.ts";
import { rateGateOf } from "./rate-limits.ts";
import { openDatabase } from "../store/database.ts";
import { assertMigrationsApplied } from "../store/migrate.ts";
import { withCommandRedis } from "./connections.ts";
import { bindQueue, type QueueBinding } from "./queue-binding.ts";
import type { ApiContext, ReadinessReport } from "./api-context.ts";
import { openProviders, openTemplates } from "./services.ts";
import { startWebhookDispatcher, type RunningWebhookDispatcher } from "./webhook-dispatcher.ts";

export interface RunningApiServer {
  /** `http://host:port` actually bound (port 0 picks a free one). */
  url: string;
  port: number;
  /** The port of GET /metrics when METRICS_PORT is set (else it is on the API, behind a token). */
  metricsPort: number | undefined;
  /** Stops accepting, lets in-flight requests finish within `graceMs`, then closes Postgres and Redis. */
  stop(graceMs?: number): Promise<void>;
}

export interface ApiServerOptions {
  host?: string;
  port?: number;
  /** Injectable clock of the callback timestamp window (tests). */
  nowMs?: () => number;
  /** The callback receiver's counters (a test reads them). */
  deliveryMetrics?: DeliveryMetrics;
  /**
   * Called once listening, when the database had no API token and one admin token was created for the first
   * sign-in (`smsblast serve` prints it). Without this option no token is created.
   */
  onFirstRunToken?: (created: { name: string; secret: string; consoleUrl: string }) => void;
}

/** A readiness probe must answer even when a dependency hangs: each check has this long. */
const READY_CHECK_TIMEOUT_MS = 2_000;
const DEFAULT_GRACE_MS = 10_000;
const UPLOAD_SWEEP_INTERVAL_MS = 10 * 60_000;

/** Wires Postgres, Redis, the queues, the provider clients and the fastify app into one API process. */
export async function startApiServer(
  config: Config,
  log: Logger,
  options: ApiServerOptions = {},
): Promise<RunningApiServer> {
  const db = openDatabase(config.databaseUrl, {
    applicationName: "smsblast-api",
    phoneHasher: config.privacy.phoneHasher,
  });
  let binding: QueueBinding;
  try {
    await assertMigrationsApplied(db.pool);
    binding = await withCommandRedis(config, (redis) => bindQueue(config, db, redis));
  } catch (error) {
    await db.close();
    throw error;
  }
  const connection = createRedisConnection(config.redisUrl, "producer");
  const sendQueue = createSendQueue(connection, sendQueueOptions(config, binding.prefix));
  const scheduleQueue = createScheduleQueue(connection, binding.prefix);
  const deliveryQueue = createDeliveryQueue(connection, binding.prefix);
  const templates = openTemplates(config);
  const providers = openProviders(config);

  const checkReady = async (): Promise<ReadinessReport> => {
    const [postgres, redis, migrations] = await Promise.all([
      probe(() => db.pool.query("SELECT 1")),
      probe(() => connection.ping()),
      probe(() => assertMigrationsApplied(db.pool)),
    ]);
    return {
      ready: postgres === "ok" && redis === "ok" && migrations === "ok",
      checks: { postgres, redis, migrations },
    };
  };

  const deliveryMetrics = options.deliveryMetrics ?? new DeliveryMetrics();
  // The callback receiver's refusals (and counts) join the API's own metrics on GET /metrics.
  const metrics = createApiMetrics([sendQueue, scheduleQueue], () => deliveryMetrics.prometheusText());
  const context: ApiContext = {
    config,
    log,
    db,
    queue: campaignQueueOf(sendQueue),
    scheduler: cronSchedulerOf(scheduleQueue),
    templates: templates.api,
    providers: providers.providers,
    sendGate: rateGateOf(config, connection, binding.prefix),
    checkReady,
    delivery: {
      requestApply: coalescingRequester(() => requestApply(deliveryQueue)),
      metrics: deliveryMetrics,
      nowMs: options.nowMs,
    },
    queueDashboard: createQueueDashboard([sendQueue, scheduleQueue, deliveryQueue], QUEUE_DASHBOARD_PREFIX),
    metrics,
  };
  const app = await buildApiApp(context);
  // Uploads never launched are deleted with their rows once expired (UPLOAD_TTL_HOURS).
  const sweepUploads = () =>
    forgetExpiredUploads(db).then(
      (deleted) => deleted > 0 && log.info({ deleted }, "expired uploads deleted"),
      (error: unknown) => log.warn({ err: error }, "expired uploads not deleted; retrying at the next sweep"),
    );
  // Console sessions past their idle expiry, or of revoked tokens, can never be used again.
  const sweepSessions = () =>
    forgetDeadSessions(db, config.api.sessionIdleMs).catch((error: unknown) =>
      log.warn({ err: error }, "dead console sessions not deleted; retrying at the next sweep"),
    );
  const sweep = () => {
    void sweepUploads();
    void sweepSessions();
  };
  sweep();
  const uploadSweep = setInterval(sweep, UPLOAD_SWEEP_INTERVAL_MS).unref();
  let metricsServer: RunningMetricsServer | undefined;
  const closeConnections = async () => {
    clearInterval(uploadSweep);
    await metricsServer?.close();
    await providers.close();
    await templates.close();
    await sendQueue.close();
    await scheduleQueue.close();
    await deliveryQueue.close();
    connection.disconnect();
    await db.close();
  };
  try {
    await app.listen({ host: options.host ?? config.api.host, port: options.port ?? config.api.port });
  } catch (error) {
    await app.close();
    await closeConnections();
    throw error;
  }
  if (config.metrics.port !== undefined) {
    metricsServer = await startMetricsServer(metrics, { host: config.metrics.host, port: config.metrics.port, log });
  }
  // Outgoing webhooks are sent by the API processes (docs/webhooks.md): they share the work through the claim.
  const webhooks: RunningWebhookDispatcher = startWebhookDispatcher(config, db, log);
  const address = app.server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  log.info({ port: address.port, host: address.address }, "API server listening");
  const url = `http://${host}:${address.port}`;
  if (options.onFirstRunToken) {
    const created = await createFirstRunToken(db);
    if (created) {
      log.info({ token: created.token.name }, "no API token existed: created the first-run admin token");
      options.onFirstRunToken({ name: created.token.name, secret: created.secret, consoleUrl: `${url}/` });
    }
  }

  let stopping: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    metricsPort: metricsServer?.port,
    stop(graceMs = DEFAULT_GRACE_MS) {
      stopping ??= (async () => {
        // app.close() stops accepting and waits for in-flight requests (event streams are ended by the
        // app's preClose hook); past the grace period the remaining sockets are destroyed.
        const closed = app.close();
        const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), graceMs).unref());
        if ((await Promise.race([closed, timer])) === "timeout") {
          log.warn({ graceMs }, "in-flight requests did not finish within the grace period; closing their connections");
          app.server.closeAllConnections();
          await closed;
        }
        await webhooks.stop();
        await closeConnections();
        log.info("API server stopped");
      })();
      return stopping;
    },
  };
}

async function probe(check: () => Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${READY_CHECK_TIMEOUT_MS} ms`)),
          READY_CHECK_TIMEOUT_MS,
        );
      }),
    ]);
    return "ok";
  } catch (error) {
    // The message names what failed (a missing migration, a refused connection), never a URL with credentials.
    return error instanceof Error ? error.message.replace(/\w+:\/\/[^\s]+/g, "<url>") : "failed";
  } finally {
    clearTimeout(timer);
  }
}
