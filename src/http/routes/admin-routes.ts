import { z } from "zod";
import { createApiToken, listApiTokens, revokeApiToken, type ApiToken } from "../../access/api-tokens.ts";
import { readAuditLog, recordAudit } from "../../access/audit-log.ts";
import { clearWebhook, describeWebhook, setWebhook, webhookUrlForDisplay } from "../../access/webhooks.ts";
import { API_ROLES } from "../../model/roles.ts";
import type { ApiContext } from "../../runtime/api-context.ts";
import { writeRateLimit, type ApiApp } from "../api-app.ts";
import { actorOf } from "../auth.ts";
import { ErrorResponse } from "../errors.ts";
import { COMMON_ERRORS } from "../schemas.ts";

const TokenSchema = z
  .object({
    name: z.string(),
    prefix: z.string().describe("the token's first characters, for telling tokens apart"),
    role: z.enum(API_ROLES),
    createdAt: z.date(),
    lastUsedAt: z.date().nullable(),
    revokedAt: z.date().nullable(),
    webhook: z.string().nullable().describe("the webhook's scheme, host and path (never its query), or null"),
  })
  .meta({ id: "ApiToken" });

const WebhookStateSchema = z
  .object({
    name: z.string(),
    url: z.string().nullable().describe("scheme, host and path of the webhook (never its query), or null when none"),
    setAt: z.date().nullable(),
    deliveries: z.object({
      open: z.number().int().describe("events not delivered yet, still being tried"),
      delivered: z.number().int(),
      givenUp: z.number().int().describe("after WEBHOOK_MAX_ATTEMPTS, or when the webhook was cleared"),
      lastFailure: z
        .object({ at: z.date(), status: z.number().int().nullable(), error: z.string().nullable() })
        .nullable()
        .describe("the latest attempt that got no 2xx: its HTTP status, or why there was no answer"),
    }),
  })
  .meta({ id: "TokenWebhook" });

const AuditSchema = z
  .object({
    id: z.string(),
    actor: z.string(),
    action: z.string(),
    campaignId: z.string().nullable(),
    details: z.record(z.string(), z.unknown()),
    createdAt: z.date(),
  })
  .meta({ id: "AuditEntry" });

const tokenView = (t: ApiToken): z.infer<typeof TokenSchema> => ({
  name: t.name,
  prefix: t.prefix,
  role: t.role,
  createdAt: t.createdAt,
  lastUsedAt: t.lastUsedAt,
  revokedAt: t.revokedAt,
  webhook: t.webhookUrl === null ? null : webhookUrlForDisplay(t.webhookUrl),
});

export function registerAdminRoutes(app: ApiApp, ctx: ApiContext): void {
  app.get(
    "/api/v1/tokens",
    {
      config: { permission: "tokens:manage" },
      schema: {
        tags: ["tokens"],
        summary: "API tokens, without their secrets (smsblast tokens list)",
        response: { 200: z.array(TokenSchema), ...COMMON_ERRORS },
      },
    },
    async () => (await listApiTokens(ctx.db)).map(tokenView),
  );

  app.post(
    "/api/v1/tokens",
    {
      config: { permission: "tokens:manage", rateLimit: writeRateLimit(ctx) },
      schema: {
        tags: ["tokens"],
        summary: "create a token; its secret is in this answer only (smsblast tokens create)",
        body: z.object({ name: z.string().min(1).max(64), role: z.enum(API_ROLES).default("viewer") }),
        response: { 201: TokenSchema.extend({ token: z.string() }), ...COMMON_ERRORS, 409: ErrorResponse },
      },
    },
    async (request, reply) => {
      const created = await createApiToken(ctx.db, request.body);
      await recordAudit(ctx.db, actorOf(request), "token.create", {
        details: { name: created.token.name, role: created.token.role },
      });
      return reply.code(201).send({ ...tokenView(created.token), token: created.secret });
    },
  );

  app.delete(
    "/api/v1/tokens/:name",
    {
      config: { permission: "tokens:manage", rateLimit: writeRateLimit(ctx) },
      schema: {
        tags: ["tokens"],
        summary: "revoke a token (smsblast tokens revoke)",
        params: z.object({ name: z.string().min(1) }),
        response: { 200: TokenSchema, ...COMMON_ERRORS, 404: ErrorResponse },
      },
    },
    async (request) => {
      const revoked = await revokeApiToken(ctx.db, request.params.name);
      await recordAudit(ctx.db, actorOf(request), "token.revoke", { details: { name: revoked.name } });
      return tokenView(revoked);
    },
  );

  app.put(
    "/api/v1/tokens/:name/webhook",
    {
      config: { permission: "tokens:manage", rateLimit: writeRateLimit(ctx) },
      schema: {
        tags: ["tokens"],
        summary:
          "point the token's webhook at a URL and make it a new signing key, in this answer only (smsblast tokens webhook --url)",
        description:
          "Campaign events (started, paused, resumed, completed, failed, cancelled) from now on are POSTed to the URL, " +
          "signed: `X-Smsblast-Signature: sha256=<hex HMAC-SHA256 keyed with signingKey of timestamp + '.' + body>`. " +
          "https only (http to localhost / 127.0.0.1 / [::1]). Setting it again makes a new key; the old one stops " +
          "verifying. 503 when WEBHOOK_SIGNING_SECRET is not set on the server.",
        params: z.object({ name: z.string().min(1) }),
        body: z.object({ url: z.string().min(1).max(2048) }),
        response: {
          200: z.object({
            name: z.string(),
            url: z.string(),
            signingKey: z.string().describe("HMAC key of the signatures; shown this once"),
          }),
          ...COMMON_ERRORS,
          404: ErrorResponse,
          503: ErrorResponse,
        },
      },
    },
    async (request) => {
      const set = await setWebhook(ctx.db, ctx.config, { name: request.params.name, url: request.body.url });
      await recordAudit(ctx.db, actorOf(request), "token.webhook.set", {
        details: { name: set.name, receiver: webhookUrlForDisplay(set.url) },
      });
      return set;
    },
  );

  app.get(
    "/api/v1/tokens/:name/webhook",
    {
      config: { permission: "tokens:manage" },
      schema: {
        tags: ["tokens"],
        summary: "the token's webhook and its deliveries (smsblast tokens webhook <name>)",
        params: z.object({ name: z.string().min(1) }),
        response: { 200: WebhookStateSchema, ...COMMON_ERRORS, 404: ErrorResponse },
      },
    },
    async (request) => describeWebhook(ctx.db, request.params.name),
  );

  app.delete(
    "/api/v1/tokens/:name/webhook",
    {
      config: { permission: "tokens:manage", rateLimit: writeRateLimit(ctx) },
      schema: {
        tags: ["tokens"],
        summary: "remove the token's webhook; events not delivered yet are given up (smsblast tokens webhook --clear)",
        params: z.object({ name: z.string().min(1) }),
        response: {
          200: z.object({ name: z.string(), abandoned: z.number().int().describe("deliveries given up") }),
          ...COMMON_ERRORS,
          404: ErrorResponse,
        },
      },
    },
    async (request) => {
      const { abandoned } = await clearWebhook(ctx.db, request.params.name);
      await recordAudit(ctx.db, actorOf(request), "token.webhook.clear", { details: { name: request.params.name } });
      return { name: request.params.name, abandoned };
    },
  );

  app.get(
    "/api/v1/audit",
    {
      config: { permission: "campaigns:read" },
      schema: {
        tags: ["audit"],
        summary: "state-changing actions, newest first (smsblast audit)",
        querystring: z.object({
          limit: z.coerce.number().int().min(1).max(500).default(50),
          before: z.string().regex(/^\d+$/).optional().describe("the last id of the previous page"),
          campaignId: z.uuid().optional(),
        }),
        response: { 200: z.object({ entries: z.array(AuditSchema) }), ...COMMON_ERRORS },
      },
    },
    async (request) => ({ entries: await readAuditLog(ctx.db, request.query) }),
  );
}
