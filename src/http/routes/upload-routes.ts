import { once } from "node:events";
import { PassThrough, type Readable } from "node:stream";
import fastifyMultipart from "@fastify/multipart";
import { z } from "zod";
import { recordAudit } from "../../access/audit-log.ts";
import {
  checkUpload,
  exportUploadRejects,
  mapUpload,
  previewUploadRow,
  receiveUpload,
} from "../../campaigns/uploads.ts";
import { PROVIDER_APIS } from "../../model/states.ts";
import type { ApiContext } from "../../runtime/api-context.ts";
import { writeRateLimit, type ApiApp } from "../api-app.ts";
import { actorOf } from "../auth.ts";
import { ErrorResponse, HttpRefusal } from "../errors.ts";
import { COMMON_ERRORS } from "../schemas.ts";

const UploadIdParams = z.object({ id: z.uuid().describe("upload id") });

const UploadSummarySchema = z
  .object({
    uploadId: z.string(),
    filename: z.string().nullable(),
    columns: z.array(z.string()).describe("the header, trimmed"),
    sample: z.array(z.array(z.string())).describe("the first rows, as parsed"),
    delimiter: z.string(),
    encoding: z.enum(["utf-8", "utf-8-bom"]),
    rows: z.number().int(),
    bytes: z.number().int(),
    suggestedPhoneColumn: z.string().nullable(),
    expiresAt: z.date(),
  })
  .meta({ id: "Upload" });

const StringMap = z.record(z.string().min(1), z.string());

const MappingBody = z
  .object({
    phoneColumn: z.string().min(1),
    countryColumn: z.string().min(1).optional().describe("each row's ISO country (`--country-column`)"),
    region: z
      .string()
      .regex(/^[A-Za-z]{2}$/, "a two-letter ISO country code such as SG")
      .optional()
      .describe("region for numbers without a country code (`--region`)"),
    map: StringMap.default({}).describe("template variable → column (`--map var=column`)"),
    provider: z.enum(PROVIDER_APIS).default("messages"),
    templateId: z.string().min(1).optional(),
    params: StringMap.default({}).describe("template params for every row (`--param`)"),
    templateContent: z
      .string()
      .min(1)
      .max(2000)
      .optional()
      .describe("the template's text, for the preview and the segment count"),
  })
  .meta({ id: "UploadMapping" });

const MappingResult = z.object({
  uploadId: z.string(),
  mapping: MappingBody.extend({
    content: z.object({ text: z.string(), from: z.enum(["mapping", "template API"]) }).nullable(),
  }),
});

const UploadCheckSchema = z
  .object({
    uploadId: z.string(),
    ready: z.boolean().describe("nothing in `problems` stops a launch"),
    problems: z.array(z.object({ code: z.string(), message: z.string(), field: z.string().optional() })),
    rows: z.number(),
    valid: z.number().describe("unique numbers that would be sent to"),
    invalid: z.number(),
    duplicates: z.number(),
    suppressed: z.number(),
    rowErrors: z
      .array(z.object({ row: z.number(), value: z.string(), reason: z.string() }))
      .describe("the first 50; all in rejects.csv"),
    requests: z.number().describe("provider requests the launch would make"),
    segments: z.object({ total: z.number(), encoding: z.enum(["GSM-7", "UCS-2", "mixed"]).nullable() }).nullable(),
    cost: z.number().nullable().describe("segments × SMS_SEGMENT_PRICE"),
  })
  .meta({ id: "UploadCheck" });

const PreviewSchema = z
  .object({
    row: z.number(),
    text: z.string(),
    encoding: z.enum(["GSM-7", "UCS-2"]),
    segments: z.number(),
    characters: z.number(),
    phone: z.string().nullable(),
    rejectReason: z.string().nullable(),
  })
  .meta({ id: "UploadPreview" });

/** Room for the multipart envelope (boundaries, part headers, other fields) above the file's own bytes. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;
const RAW_CSV_TYPES = ["text/csv", "application/csv", "text/plain", "application/octet-stream"];

export function registerUploadRoutes(app: ApiApp, ctx: ApiContext): void {
  const tags = ["uploads"];
  const maxBytes = ctx.config.csvMaxBytes;

  // Encapsulated: the raw and multipart body readers apply to the upload route only, and neither has a
  // body limit of its own (fastify's 1 MiB default would refuse any real list); CSV_MAX_BYTES is enforced
  // while the bytes stream through the CSV reader.
  void app.register(async (scope: ApiApp) => {
    scope.addContentTypeParser(RAW_CSV_TYPES, (_request, payload, done) => done(null, payload));
    await scope.register(fastifyMultipart, { limits: { fileSize: maxBytes + 1, files: 1, fields: 10, parts: 20 } });

    scope.post(
      "/api/v1/uploads",
      {
        config: { permission: "campaigns:write", rateLimit: writeRateLimit(ctx) },
        schema: {
          tags,
          summary: "upload a CSV (multipart field `file`, or the raw body as text/csv), streamed into the database",
          description:
            "Read with the rules of `smsblast send` (UTF-8 with or without BOM; `,` `;` or tab from the header or a `sep=` line; quoting). " +
            "Over CSV_MAX_BYTES is 413 and nothing is kept. Uploads not launched expire after UPLOAD_TTL_HOURS.",
          consumes: ["text/csv", "multipart/form-data"],
          querystring: z.object({
            filename: z.string().min(1).max(255).optional().describe("a name for a raw upload"),
          }),
          response: { 201: UploadSummarySchema, ...COMMON_ERRORS, 413: ErrorResponse, 415: ErrorResponse },
        },
      },
      async (request, reply) => {
        const multipart = request.isMultipart();
        const declared = Number(request.headers["content-length"] ?? NaN);
        if (declared > maxBytes + (multipart ? MULTIPART_OVERHEAD_BYTES : 0)) {
          reply.header("connection", "close");
          throw new HttpRefusal(
            413,
            "upload_too_large",
            `the upload is ${declared} bytes, over the ${maxBytes}-byte limit (CSV_MAX_BYTES)`,
          );
        }
        let body: AsyncIterable<Buffer>;
        let filename = request.query.filename ?? null;
        if (multipart) {
          const part = await request.file();
          if (!part) throw new HttpRefusal(400, "invalid_request", "the multipart body has no file part");
          body = part.file;
          filename ??= part.filename || null;
        } else {
          body = request.body as Readable;
        }
        try {
          const summary = await receiveUpload(ctx.db, {
            body,
            filename,
            createdBy: actorOf(request).name,
            maxBytes,
            ttlMs: ctx.config.uploads.ttlMs,
            defaultRegion: ctx.config.defaultRegion,
          });
          await recordAudit(ctx.db, actorOf(request), "upload.create", {
            details: { uploadId: summary.uploadId, rows: summary.rows, bytes: summary.bytes },
          });
          return reply.code(201).send(summary);
        } catch (error) {
          // The rest of the body is not read: close the connection after the answer instead of draining it.
          if (!request.raw.complete) reply.header("connection", "close");
          throw error;
        }
      },
    );
  });

  app.put(
    "/api/v1/uploads/:id/mapping",
    {
      config: { permission: "campaigns:write", rateLimit: writeRateLimit(ctx) },
      schema: {
        tags,
        summary: "say which column is the phone (and country, params); every row is judged under it",
        params: UploadIdParams,
        body: MappingBody,
        response: { 200: MappingResult, ...COMMON_ERRORS, 404: ErrorResponse },
      },
    },
    async (request) => {
      const mapping = await mapUpload(
        { db: ctx.db, log: ctx.log, templates: ctx.templates },
        request.params.id,
        request.body,
      );
      await recordAudit(ctx.db, actorOf(request), "upload.map", {
        details: { uploadId: request.params.id, provider: mapping.provider },
      });
      return { uploadId: request.params.id, mapping };
    },
  );

  app.get(
    "/api/v1/uploads/:id/check",
    {
      config: { permission: "campaigns:write" },
      schema: {
        tags,
        summary:
          "what a launch would do: file-level problems, then valid / invalid / duplicate / suppressed rows, row errors, requests, segments",
        params: UploadIdParams,
        response: { 200: UploadCheckSchema, ...COMMON_ERRORS, 404: ErrorResponse },
      },
    },
    async (request) =>
      checkUpload({ db: ctx.db, log: ctx.log }, request.params.id, {
        batchSize: ctx.config.send.batchSize,
        segmentPrice: ctx.config.uploads.segmentPrice,
      }),
  );

  app.get(
    "/api/v1/uploads/:id/preview",
    {
      config: { permission: "campaigns:write" },
      schema: {
        tags,
        summary: "one row's message as its recipient would get it: text, encoding, segments",
        params: UploadIdParams,
        querystring: z.object({
          row: z.coerce.number().int().min(1).describe("data row, 1 = the first after the header"),
        }),
        response: { 200: PreviewSchema, ...COMMON_ERRORS, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (request) => previewUploadRow(ctx.db, request.params.id, request.query.row),
  );

  app.get(
    "/api/v1/uploads/:id/rejects.csv",
    {
      config: { permission: "reports:read" },
      schema: {
        tags,
        summary: "every invalid or suppressed row (row, value, reason) as CSV, streamed",
        params: UploadIdParams,
        produces: ["text/csv"],
        response: { 200: z.string().describe("text/csv"), ...COMMON_ERRORS, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (request, reply) => {
      const out = new PassThrough();
      const done = exportUploadRejects(ctx.db, request.params.id, out);
      // Unknown and unmapped uploads are refused before the header is written.
      await Promise.race([once(out, "readable"), done]);
      done.then(
        () => out.end(),
        (error: unknown) => {
          request.log.error({ err: error }, "upload rejects export failed mid-stream");
          out.destroy(error as Error);
        },
      );
      return reply
        .header("content-type", "text/csv; charset=utf-8")
        .header("content-disposition", `attachment; filename="upload-${request.params.id}-rejects.csv"`)
        .send(out as unknown as string);
    },
  );
}
