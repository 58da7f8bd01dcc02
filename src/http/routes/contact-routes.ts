import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { recordAudit } from "../../access/audit-log.ts";
import { importContactsFromCsv } from "../../recipients/audience-import.ts";
import { CsvTooLargeError } from "../../recipients/csv-source.ts";
import type { ApiContext } from "../../runtime/api-context.ts";
import { writeRateLimit, type ApiApp } from "../api-app.ts";
import { actorOf } from "../auth.ts";
import { ErrorResponse } from "../errors.ts";
import { COMMON_ERRORS } from "../schemas.ts";

const RAW_CSV_TYPES = ["text/csv", "application/csv", "text/plain", "application/octet-stream"];

const ImportQuery = z.object({
  tags: z
    .string()
    .optional()
    .transform((v) =>
      (v ?? "")
        .split(",")
        .map((t) => t.trim())
        .filter(Boolean),
    )
    .describe("tags given to every imported contact, comma-separated"),
  phoneColumn: z.string().min(1).default("phone"),
  region: z
    .string()
    .regex(/^[A-Za-z]{2}$/, "a two-letter ISO country code such as SG")
    .optional(),
});

const ImportResult = z.object({
  rows: z.number(),
  inserted: z.number(),
  updated: z.number(),
  rejected: z.number(),
  rejects: z.array(z.object({ row: z.number(), value: z.string(), reason: z.string() })).describe("the first 50"),
});

/**
 * Contacts import (`smsblast contacts import`) from the raw CSV body: streamed to a private temporary file
 * with the CSV_MAX_BYTES bound (never held in memory), imported by the same use case as the CLI, deleted.
 */
export function registerContactRoutes(app: ApiApp, ctx: ApiContext): void {
  void app.register((scope: ApiApp) => {
    scope.addContentTypeParser(RAW_CSV_TYPES, (_request, payload, done) => done(null, payload));
    scope.post(
      "/api/v1/contacts/import",
      {
        config: { permission: "audience:write", rateLimit: writeRateLimit(ctx) },
        bodyLimit: ctx.config.csvMaxBytes,
        schema: {
          tags: ["audience"],
          summary:
            "upsert contacts from a CSV body (text/csv): the phone column, an optional `tags` column, every other column an attribute",
          querystring: ImportQuery,
          response: { 200: ImportResult, ...COMMON_ERRORS, 413: ErrorResponse },
        },
      },
      async (request) => {
        const dir = await mkdtemp(join(tmpdir(), "smsblast-contacts-"));
        try {
          const file = join(dir, "contacts.csv");
          await pipeline(request.body as Readable, byteLimit(ctx.config.csvMaxBytes), createWriteStream(file));
          const report = await importContactsFromCsv(ctx.db, file, {
            phoneColumn: request.query.phoneColumn,
            defaultRegion: request.query.region ?? ctx.config.defaultRegion,
            tags: request.query.tags,
            maxBytes: ctx.config.csvMaxBytes,
          });
          await recordAudit(ctx.db, actorOf(request), "contacts.import", {
            details: { rows: report.rows, inserted: report.inserted, updated: report.updated },
          });
          return {
            rows: report.rows,
            inserted: report.inserted,
            updated: report.updated,
            rejected: report.rejects.length,
            rejects: report.rejects.slice(0, 50).map((r) => ({ row: r.rowNumber, value: r.raw, reason: r.reason })),
          };
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
    );
    return Promise.resolve();
  });
}

function byteLimit(maxBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > maxBytes) callback(new CsvTooLargeError("CSV body", maxBytes));
      else callback(null, chunk);
    },
  });
}
