import { z } from "zod";
import { recordAudit } from "../../access/audit-log.ts";
import {
  listSegments,
  listSuppressions,
  saveSegment,
  suppressNumbers,
  unsuppressNumber,
} from "../../recipients/audience-lists.ts";
import type { ApiContext } from "../../runtime/api-context.ts";
import { writeRateLimit, type ApiApp } from "../api-app.ts";
import { actorOf } from "../auth.ts";
import { ErrorResponse } from "../errors.ts";
import { COMMON_ERRORS } from "../schemas.ts";

const SegmentSchema = z
  .object({
    name: z.string().min(1).max(100),
    tags: z.array(z.string().min(1)).default([]),
    attributes: z.record(z.string().min(1), z.string()).default({}),
  })
  .meta({ id: "Segment" });

/** Segments and the suppression list: the same use cases as `smsblast segments` and `smsblast suppress`. */
export function registerAudienceRoutes(app: ApiApp, ctx: ApiContext): void {
  app.get(
    "/api/v1/segments",
    {
      config: { permission: "campaigns:read" },
      schema: {
        tags: ["audience"],
        summary: "saved segments with how many sendable contacts each matches (smsblast segments list)",
        response: {
          200: z.object({ segments: z.array(SegmentSchema.extend({ contacts: z.number() })) }),
          ...COMMON_ERRORS,
        },
      },
    },
    async () => ({
      segments: (await listSegments(ctx.db)) as Array<z.infer<typeof SegmentSchema> & { contacts: number }>,
    }),
  );

  app.put(
    "/api/v1/segments/:name",
    {
      config: { permission: "audience:write", rateLimit: writeRateLimit(ctx) },
      schema: {
        tags: ["audience"],
        summary:
          "save (or replace) a segment: contacts with any of the tags and all of the attribute values (smsblast segments add)",
        params: z.object({ name: z.string().min(1).max(100) }),
        body: SegmentSchema.omit({ name: true }),
        response: { 200: SegmentSchema, ...COMMON_ERRORS },
      },
    },
    async (request) => {
      const segment = { name: request.params.name, ...request.body };
      await saveSegment(ctx.db, segment);
      await recordAudit(ctx.db, actorOf(request), "segment.save", { details: { name: segment.name } });
      return segment;
    },
  );

  app.get(
    "/api/v1/suppressions",
    {
      config: { permission: "reports:read" },
      schema: {
        tags: ["audience"],
        summary: "the suppression list, newest first (smsblast suppress list); it holds phone numbers",
        querystring: z.object({
          limit: z.coerce.number().int().min(1).max(1000).default(100),
          offset: z.coerce.number().int().min(0).default(0),
        }),
        response: {
          200: z.object({
            total: z.number(),
            forgotten: z
              .number()
              .describe("numbers kept only as keyed hashes (smsblast forget): suppressed, never listed"),
            entries: z.array(
              z.object({ phone: z.string(), reason: z.string(), source: z.string().nullable(), createdAt: z.date() }),
            ),
          }),
          ...COMMON_ERRORS,
        },
      },
    },
    async (request) => listSuppressions(ctx.db, request.query),
  );

  app.post(
    "/api/v1/suppressions",
    {
      config: { permission: "audience:write", rateLimit: writeRateLimit(ctx) },
      schema: {
        tags: ["audience"],
        summary: "add numbers no campaign may ever text (smsblast suppress add); one invalid number refuses all",
        body: z.object({
          phones: z.array(z.string().min(1)).min(1).max(10_000),
          reason: z.string().max(200).default("api"),
        }),
        response: { 200: z.object({ added: z.number(), given: z.number() }), ...COMMON_ERRORS },
      },
    },
    async (request) => {
      const result = await suppressNumbers(ctx.db, {
        ...request.body,
        source: `api:${actorOf(request).name}`,
        defaultRegion: ctx.config.defaultRegion,
      });
      await recordAudit(ctx.db, actorOf(request), "suppression.add", { details: result });
      return result;
    },
  );

  app.delete(
    "/api/v1/suppressions/:phone",
    {
      config: { permission: "suppressions:remove", rateLimit: writeRateLimit(ctx) },
      schema: {
        tags: ["audience"],
        summary:
          "take a number off the suppression list and clear its contact's opt-out, so campaigns may text it again (smsblast suppress remove); admins only",
        params: z.object({ phone: z.string().min(1).max(40).describe("the number, E.164 or with the default region") }),
        response: {
          200: z.object({
            phone: z.string(),
            reason: z.string(),
            source: z.string().nullable(),
            createdAt: z.date(),
            forgottenAt: z.date().optional().describe("set when the number was kept only as its keyed hash"),
          }),
          ...COMMON_ERRORS,
          404: ErrorResponse,
        },
      },
    },
    async (request) => {
      const removed = await unsuppressNumber(ctx.db, {
        phone: request.params.phone,
        defaultRegion: ctx.config.defaultRegion,
      });
      // The number itself stays out of the audit log's details: the audit is readable by viewers.
      await recordAudit(ctx.db, actorOf(request), "suppression.remove", {
        details: { reason: removed.reason, suppressedAt: removed.createdAt.toISOString() },
      });
      return removed;
    },
  );
}
