import { randomUUID } from "node:crypto";
import Fastify, { LogController, type FastifyBaseLogger } from "fastify";
import fastifyRateLimit from "@fastify/rate-limit";
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from "fastify-type-provider-zod";
import { z } from "zod";
import type { ApiApp, AppLifecycle } from "./api-app.ts";
import type { ApiContext } from "../runtime/api-context.ts";
import { QUEUE_DASHBOARD_PREFIX, registerAuth } from "./auth.ts";
import { handleRouteError, HttpRefusal } from "./errors.ts";
import { registerAdminRoutes } from "./routes/admin-routes.ts";
import { registerCampaignRoutes } from "./routes/campaign-routes.ts";
import { registerHealthRoutes } from "./routes/health-routes.ts";
import { deliveryCallbackRoutes } from "./delivery-callbacks.ts";
import { registerUploadRoutes } from "./routes/upload-routes.ts";
import { registerAudienceRoutes } from "./routes/audience-routes.ts";
import { notFoundPage, registerConsole } from "./console/console-routes.ts";
import { sendPage } from "./console/respond.ts";
import { registerContactRoutes } from "./routes/contact-routes.ts";
import { registerScheduleRoutes } from "./routes/schedule-routes.ts";
import { registerTemplateRoutes } from "./routes/template-routes.ts";
import { launchUploadCampaign } from "../campaigns/launch-campaign.ts";

/** The fastify app of `smsblast serve`: every route, its schema, auth, errors and docs. Listening is the caller's. */
export async function buildApiApp(ctx: ApiContext): Promise<ApiApp> {
  // Typed as fastify's logger (not pino's), so that the app's type is the ApiApp the routes take.
  const loggerInstance: FastifyBaseLogger = ctx.log;
  const app = Fastify({
    loggerInstance,
    // Request lines are written by the onResponse hook below: route pattern, not the URL (ids and
    // queries stay out of the log, and no header is ever logged).
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: (request) => {
      const given = request.headers["x-request-id"];
      return typeof given === "string" && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
    },
    // The CSV upload routes read their own bodies; JSON bodies are small.
    bodyLimit: 1024 * 1024,
    forceCloseConnections: "idle",
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(handleRouteError);
  app.setNotFoundHandler((request, reply) =>
    // A person's browser gets a page in words; API clients get the one error shape.
    request.headers.accept?.includes("text/html") && !request.url.startsWith("/api/")
      ? sendPage(reply.code(404), notFoundPage())
      : reply.code(404).send({
          error: { code: "route_not_found", message: `no route ${request.method} ${request.url.split("?")[0]}` },
        }),
  );

  const closing = new AbortController();
  app.addHook("preClose", () => closing.abort()); // no `done` parameter and no promise: fastify calls done itself
  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
  });
  app.addHook("onResponse", async (request, reply) => {
    ctx.metrics?.observeRequest(
      request.method,
      request.routeOptions.url ?? "(no route)",
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
    request.log.info(
      {
        method: request.method,
        route: request.routeOptions.url ?? "(no route)",
        statusCode: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
        actor: request.apiToken?.name,
      },
      "request",
    );
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "smsblast API",
        version: "1",
        description: "Bulk SMS campaigns over HTTP: the same use cases as the smsblast CLI.",
      },
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer", description: "an API token (smsblast tokens create)" },
        },
      },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
    // Schemas with a `.meta({ id })` become components/schemas entries that routes refer to.
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(fastifySwaggerUi, { routePrefix: "/docs" });
  await app.register(fastifyRateLimit, {
    global: false,
    // After auth (onRequest), so the limit is per token rather than per address.
    hook: "preHandler",
    keyGenerator: (request) => request.apiToken?.id ?? request.ip,
    errorResponseBuilder: (_request, context) =>
      new HttpRefusal(
        429,
        "rate_limited",
        `more than ${context.max} write requests in ${context.after}; try again in ${context.after}`,
      ),
  });
  registerAuth(app, ctx);

  const lifecycle: AppLifecycle = { closing: closing.signal };
  registerHealthRoutes(app, ctx);
  registerCampaignRoutes(app, ctx, lifecycle, launchUploadCampaign);
  registerUploadRoutes(app, ctx);
  registerAudienceRoutes(app, ctx);
  registerContactRoutes(app, ctx);
  registerScheduleRoutes(app, ctx);
  registerTemplateRoutes(app, ctx);
  registerAdminRoutes(app, ctx);
  await registerConsole(app, ctx);
  // Encapsulated: its raw-body parsing and error answers apply to the callback routes only.
  await app.register(deliveryCallbackRoutes, {
    db: ctx.db,
    log: ctx.log,
    credentials: {
      engagelab: ctx.config.callbacks.engagelab,
      smshook: ctx.config.callbacks.smshook,
      maxSkewMs: ctx.config.callbacks.maxSkewMs,
    },
    basicAuth: ctx.config.callbacks.basicAuth,
    pathSecret: ctx.config.callbacks.pathSecret,
    maxBytes: ctx.config.callbacks.maxBytes,
    requestApply: () => ctx.delivery.requestApply(),
    metrics: ctx.delivery.metrics,
    nowMs: ctx.delivery.nowMs,
  });

  if (ctx.queueDashboard) {
    // Its routes are not in the OpenAPI document: they are the board's own UI and API.
    await app.register(
      async (board) => {
        board.addHook("onRoute", (route) => {
          route.schema = { ...route.schema, hide: true };
        });
        await board.register(ctx.queueDashboard!);
      },
      { prefix: QUEUE_DASHBOARD_PREFIX },
    );
  }

  if (ctx.metrics && ctx.config.metrics.port === undefined) {
    const metrics = ctx.metrics;
    app.get(
      "/metrics",
      {
        config: { permission: "metrics:read" },
        schema: {
          tags: ["metrics"],
          summary: "Prometheus metrics (text format); on METRICS_PORT instead when that is set",
          produces: ["text/plain"],
          response: { 200: z.string() },
        },
      },
      async (_request, reply) => reply.header("content-type", metrics.contentType).send(await metrics.render()),
    );
  }

  app.get("/openapi.json", { schema: { hide: true } }, () => app.swagger());
  await app.ready();
  return app;
}
