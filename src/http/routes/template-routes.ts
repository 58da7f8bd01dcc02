import { z } from "zod";
import { recordAudit } from "../../access/audit-log.ts";
import { templateCatalog, type SmsTemplate } from "../../campaigns/template-catalog.ts";
import type { ApiContext } from "../../runtime/api-context.ts";
import { writeRateLimit, type ApiApp } from "../api-app.ts";
import { actorOf } from "../auth.ts";
import { ErrorResponse } from "../errors.ts";
import { COMMON_ERRORS } from "../schemas.ts";

const TemplateSchema = z
  .object({
    templateId: z.string(),
    templateName: z.string(),
    templateType: z.number().describe("0 verification code, 1 notification, 2 marketing"),
    msgType: z.number(),
    content: z.string(),
    approvalStatus: z.number().describe("1 approved, 0 pending review, -1 rejected, -2 not submitted"),
    approvalMessage: z.string(),
    signId: z.string().optional(),
    createTime: z.string(),
    updateTime: z.string(),
  })
  .meta({ id: "Template" });

const TemplateId = z.object({ id: z.string().regex(/^\d{1,19}$/, "a template id is a whole number") });
const TemplateType = z.union([z.literal(0), z.literal(1), z.literal(2)]);
const NewTemplateBody = z.object({
  name: z.string().min(1).max(64),
  content: z.string().min(1).max(512),
  type: TemplateType.describe("0 verification code, 1 notification, 2 marketing"),
  signId: z.number().int().positive().optional(),
  submit: z.boolean().default(false).describe("submit for review at once"),
});

const toBody = (t: SmsTemplate) => ({ ...t });

/**
 * The legacy platform's template API (seed 003), as `smsblast templates`: reads for every role, changes
 * for admins. Provider failures answer as one error with the provider's code, never a stack.
 */
export function registerTemplateRoutes(app: ApiApp, ctx: ApiContext): void {
  const tags = ["templates"];
  const templates = templateCatalog(ctx.templates);
  const write = { permission: "templates:write" as const, rateLimit: writeRateLimit(ctx) };

  app.get(
    "/api/v1/templates",
    {
      config: { permission: "campaigns:read" },
      schema: {
        tags,
        summary: "templates of the template API, filtered and paged (smsblast templates list)",
        querystring: z.object({
          status: z.coerce.number().int().min(-2).max(1).optional().describe("approval status"),
          name: z.string().min(1).optional(),
          offset: z.coerce.number().int().min(0).default(0),
          limit: z.coerce.number().int().min(1).max(100).default(100),
        }),
        response: {
          200: z.object({ total: z.number(), templates: z.array(TemplateSchema) }),
          ...COMMON_ERRORS,
          503: ErrorResponse,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await templates.list({
        approvalStatus: q.status as -2 | -1 | 0 | 1 | undefined,
        templateName: q.name,
        offset: q.offset,
        limit: q.limit,
      });
      return { total: page.total, templates: page.templates.map(toBody) };
    },
  );

  app.get(
    "/api/v1/templates/:id",
    {
      config: { permission: "campaigns:read" },
      schema: {
        tags,
        summary: "one template with its content and approval status (smsblast templates get)",
        params: TemplateId,
        response: { 200: TemplateSchema, ...COMMON_ERRORS, 404: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request) => toBody(await templates.get(request.params.id)),
  );

  app.post(
    "/api/v1/templates",
    {
      config: write,
      schema: {
        tags,
        summary: "add a template, optionally submitted for review (smsblast templates create)",
        body: NewTemplateBody,
        response: { 201: TemplateSchema, ...COMMON_ERRORS, 503: ErrorResponse },
      },
    },
    async (request, reply) => {
      const created = await templates.create(request.body);
      await recordAudit(ctx.db, actorOf(request), "template.create", {
        details: { templateId: created.templateId, name: created.templateName },
      });
      return reply.code(201).send(toBody(created));
    },
  );

  app.patch(
    "/api/v1/templates/:id",
    {
      config: write,
      schema: {
        tags,
        summary: "change a template's name, content, type or signature (smsblast templates update)",
        params: TemplateId,
        body: NewTemplateBody.omit({ submit: true }).partial(),
        response: { 204: z.null(), ...COMMON_ERRORS, 404: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request, reply) => {
      await templates.update(request.params.id, request.body);
      await recordAudit(ctx.db, actorOf(request), "template.update", {
        details: { templateId: request.params.id, fields: Object.keys(request.body) },
      });
      return reply.code(204).send(null);
    },
  );

  app.post(
    "/api/v1/templates/:id/submit",
    {
      config: write,
      schema: {
        tags,
        summary: "submit a template for review (smsblast templates submit)",
        params: TemplateId,
        response: { 204: z.null(), ...COMMON_ERRORS, 404: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request, reply) => {
      await templates.submit(request.params.id);
      await recordAudit(ctx.db, actorOf(request), "template.submit", { details: { templateId: request.params.id } });
      return reply.code(204).send(null);
    },
  );

  app.delete(
    "/api/v1/templates/:id",
    {
      config: write,
      schema: {
        tags,
        summary: "delete a template (smsblast templates delete)",
        params: TemplateId,
        response: { 204: z.null(), ...COMMON_ERRORS, 404: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request, reply) => {
      await templates.delete(request.params.id);
      await recordAudit(ctx.db, actorOf(request), "template.delete", { details: { templateId: request.params.id } });
      return reply.code(204).send(null);
    },
  );
}
