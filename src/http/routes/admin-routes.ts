import { z } from "zod";
import { createApiToken, listApiTokens, revokeApiToken } from "../../access/api-tokens.ts";
import { readAuditLog, recordAudit } from "../../access/audit-log.ts";
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
  })
  .meta({ id: "ApiToken" });

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

const tokenView = (t: z.infer<typeof TokenSchema>) => ({
  name: t.name,
  prefix: t.prefix,
  role: t.role,
  createdAt: t.createdAt,
  lastUsedAt: t.lastUsedAt,
  revokedAt: t.revokedAt,
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
