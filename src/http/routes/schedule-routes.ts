import { z } from "zod";
import { recordAudit } from "../../access/audit-log.ts";
import { addSchedule, listSchedules, removeSchedule } from "../../campaigns/recurring-campaigns.ts";
import { PROVIDER_APIS } from "../../model/states.ts";
import type { ApiContext } from "../../runtime/api-context.ts";
import { writeRateLimit, type ApiApp } from "../api-app.ts";
import { actorOf } from "../auth.ts";
import { ErrorResponse } from "../errors.ts";
import { COMMON_ERRORS } from "../schemas.ts";

const ScheduleName = z.object({
  name: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[\w.-]+$/, "letters, digits, _ . - only"),
});

const ScheduleBody = z.object({
  cron: z.string().min(1).describe('5 fields, or 6 with seconds, e.g. "0 9 * * MON"'),
  timezone: z.string().min(1).default("UTC").describe("IANA time zone of the pattern"),
  audience: z.string().min(1).describe("a contact tag or a saved segment, resolved at each firing"),
  templateId: z.string().min(1),
  params: z.record(z.string().min(1), z.string()).default({}),
  map: z.record(z.string().min(1), z.string().min(1)).default({}).describe("template variable → contact attribute"),
  provider: z.enum(PROVIDER_APIS).default("messages"),
  templateCheck: z.boolean().default(true),
});

const ScheduleSchema = z
  .object({
    name: z.string(),
    cron: z.string(),
    timezone: z.string(),
    audience: z.string(),
    templateId: z.string(),
    params: z.record(z.string(), z.string()),
    map: z.record(z.string(), z.string()),
    provider: z.enum(PROVIDER_APIS),
    templateCheck: z.boolean(),
    nextRunAt: z.date().nullable(),
    lastRunAt: z.date().nullable(),
  })
  .meta({ id: "Schedule" });

/** Recurring campaigns: the same use cases as `smsblast schedule add|list|remove`. */
export function registerScheduleRoutes(app: ApiApp, ctx: ApiContext): void {
  const tags = ["schedules"];
  app.get(
    "/api/v1/schedules",
    {
      config: { permission: "campaigns:read" },
      schema: {
        tags,
        summary: "recurring campaigns with their next and last run (smsblast schedule list)",
        response: { 200: z.object({ schedules: z.array(ScheduleSchema) }), ...COMMON_ERRORS },
      },
    },
    async () => ({
      schedules: (await listSchedules({ db: ctx.db, scheduler: ctx.scheduler })).map((s) => ({
        name: s.name,
        cron: s.cron,
        timezone: s.timezone,
        audience: s.audience,
        templateId: s.templateId,
        params: s.params,
        map: s.paramColumns,
        provider: s.provider,
        templateCheck: s.templateCheck,
        nextRunAt: s.nextRunAt,
        lastRunAt: s.lastRunAt,
      })),
    }),
  );

  app.put(
    "/api/v1/schedules/:name",
    {
      config: { permission: "campaigns:write", rateLimit: writeRateLimit(ctx) },
      schema: {
        tags,
        summary:
          "create or replace a recurring campaign; each firing creates a campaign from the audience as it is then (smsblast schedule add)",
        params: ScheduleName,
        body: ScheduleBody,
        response: { 200: z.object({ name: z.string(), nextRunAt: z.date() }), ...COMMON_ERRORS, 404: ErrorResponse },
      },
    },
    async (request) => {
      const body = request.body;
      const next = await addSchedule(
        { db: ctx.db, scheduler: ctx.scheduler, templates: ctx.templates },
        {
          name: request.params.name,
          cron: body.cron,
          timezone: body.timezone,
          audience: body.audience,
          templateId: body.templateId,
          params: body.params,
          paramColumns: body.map,
          provider: body.provider,
          sendOptions: {},
          templateCheck: body.templateCheck,
        },
      );
      await recordAudit(ctx.db, actorOf(request), "schedule.save", {
        details: { name: request.params.name, cron: body.cron, audience: body.audience },
      });
      return { name: request.params.name, nextRunAt: next };
    },
  );

  app.delete(
    "/api/v1/schedules/:name",
    {
      config: { permission: "campaigns:write", rateLimit: writeRateLimit(ctx) },
      schema: {
        tags,
        summary: "stop a recurring campaign; campaigns it already created are not touched (smsblast schedule remove)",
        params: ScheduleName,
        response: { 204: z.null(), ...COMMON_ERRORS, 404: ErrorResponse },
      },
    },
    async (request, reply) => {
      await removeSchedule({ db: ctx.db, scheduler: ctx.scheduler }, request.params.name);
      await recordAudit(ctx.db, actorOf(request), "schedule.remove", { details: { name: request.params.name } });
      return reply.code(204).send(null);
    },
  );
}
