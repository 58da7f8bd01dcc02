import type { Writable } from "node:stream";
import type { Logger } from "../config/logger.ts";
import { UserError } from "../model/errors.ts";
import type { ProviderApi } from "../model/states.ts";
import { columnIndex, openCsvStream, rowJudge, type CsvEncoding } from "../recipients/csv-source.ts";
import { acceptsEmail } from "../recipients/email.ts";
import { normalisePhone } from "../recipients/phone.ts";
import type { Database } from "../store/database.ts";
import {
  countUpload,
  deleteExpiredUploads,
  deleteUpload,
  findUpload,
  insertUpload,
  markUploadReady,
  readUploadRow,
  readUploadRowErrorPages,
  readUploadRowErrors,
  readUploadRowPages,
  readUploadSample,
  replaceUploadJudgements,
  storeUploadRows,
  stageUpload,
  type UploadJudgementRow,
  type UploadPlanShape,
  type UploadRecord,
} from "../store/upload-repository.ts";
import type { StagingSource } from "../store/campaign-repository.ts";
import { csvLine, writeLine } from "./csv-export.ts";
import { measureMessage, renderTemplate, type MessageMeasure } from "./message-segments.ts";
import type { TemplatesApi } from "./template-catalog.ts";
import { extractTemplateVariables, templateSyntaxOf } from "./template-preflight.ts";

// An upload is a CSV kept raw in Postgres (POST /api/v1/uploads) until someone says which column is the
// phone (the mapping); then every row is judged once, and the check, the rejects and the launch read those
// judgements with set-based SQL. Nothing of the file is ever held in memory.

/** Rows shown back in the upload's answer, to choose the mapping from. */
const SAMPLE_ROWS = 5;
/** Row errors listed by the check; all of them are in rejects.csv. */
const CHECK_ROW_ERRORS = 50;
/** Distinct rendered texts whose segment count is remembered while judging a personalised upload. */
const SEGMENT_CACHE_SIZE = 10_000;

export class UploadNotFoundError extends UserError {
  override name = "UploadNotFoundError";
  constructor(uploadId: string) {
    super("upload_not_found", `No upload with id ${uploadId} (uploads expire; upload the file again)`, {
      kind: "not-found",
      field: "uploadId",
    });
  }
}

export interface UploadSummary {
  uploadId: string;
  filename: string | null;
  columns: string[];
  sample: string[][];
  delimiter: string;
  encoding: CsvEncoding;
  rows: number;
  bytes: number;
  /** The column that looks like phone numbers (by name, else by content), or null. */
  suggestedPhoneColumn: string | null;
  expiresAt: Date;
}

export interface ReceiveUploadInput {
  body: AsyncIterable<Buffer>;
  filename: string | null;
  createdBy: string;
  maxBytes: number;
  ttlMs: number;
  defaultRegion?: string;
  /** Called with the rows stored so far each time a chunk of them commits. */
  onRowsStored?: (rows: number) => void;
}

/**
 * Streams an upload through the CSV reader of `smsblast send` into upload_rows. Any failure (a bad file,
 * the size limit, a client that went away) deletes what was stored: an upload exists whole or not at all.
 */
export async function receiveUpload(db: Database, input: ReceiveUploadInput): Promise<UploadSummary> {
  let bytes = 0;
  const counted = (async function* () {
    for await (const chunk of input.body) {
      bytes += chunk.length;
      yield chunk;
    }
  })();
  const table = await openCsvStream(counted, { name: input.filename ?? "upload", maxBytes: input.maxBytes });
  const expiresAt = new Date(Date.now() + input.ttlMs);
  const uploadId = await insertUpload(db, {
    createdBy: input.createdBy,
    filename: input.filename,
    columns: table.header,
    delimiter: table.delimiter,
    encoding: table.encoding,
    expiresAt,
  });
  try {
    const rows = await storeUploadRows(db, uploadId, table.rows, { onCommitted: input.onRowsStored });
    await markUploadReady(db, uploadId, { rowCount: rows, byteCount: bytes });
    const sample = await readUploadSample(db, uploadId, SAMPLE_ROWS);
    return {
      uploadId,
      filename: input.filename,
      columns: table.header,
      sample,
      delimiter: table.delimiter,
      encoding: table.encoding,
      rows,
      bytes,
      suggestedPhoneColumn: suggestPhoneColumn(table.header, sample, input.defaultRegion),
      expiresAt,
    };
  } catch (error) {
    await deleteUpload(db, uploadId);
    throw error;
  }
}

const PHONE_NAME = /phone|mobile|msisdn|cell|whatsapp|^tel|^number$|手机|電話|电话/i;

function suggestPhoneColumn(columns: string[], sample: string[][], region: string | undefined): string | null {
  const byName = columns.find((c) => PHONE_NAME.test(c));
  if (byName !== undefined) return byName;
  let best: { column: string; valid: number } | null = null;
  columns.forEach((column, i) => {
    const valid = sample.filter(
      (cells) => normalisePhone(cells[i] ?? "", region as never, { requireMobile: false }).ok,
    ).length;
    if (valid > 0 && valid * 2 >= sample.length && (best === null || valid > best.valid)) best = { column, valid };
  });
  return (best as { column: string } | null)?.column ?? null;
}

/** Which column is what, and what will be sent: PUT /uploads/:id/mapping. */
export interface UploadMapping {
  phoneColumn: string;
  countryColumn?: string;
  region?: string;
  /** Template variable → column (`--map var=column`). */
  map: Record<string, string>;
  provider: ProviderApi;
  templateId?: string;
  params: Record<string, string>;
  /** For `messages` (or any API), the template's text, when the template API cannot say it. */
  templateContent?: string;
}

/** The mapping as stored: with the template text it was judged with, and where that came from. */
export interface StoredMapping extends UploadMapping {
  content: { text: string; from: "mapping" | "template API" } | null;
}

export interface UploadDeps {
  db: Database;
  log: Logger;
  /** For a legacy template's content (preview and segments); otherwise only `templateContent` is used. */
  templates?: Pick<TemplatesApi, "get">;
}

/**
 * Stores the mapping and judges every row under it (phone normalised, country, region), a page of rows at
 * a time; for a personalised text each row's segment count too. A column the file does not have is refused
 * with the columns it does have.
 */
export async function mapUpload(deps: UploadDeps, uploadId: string, mapping: UploadMapping): Promise<StoredMapping> {
  const upload = await requireUpload(deps.db, uploadId);
  const missing = [
    ["phoneColumn", mapping.phoneColumn],
    ...(mapping.countryColumn === undefined ? [] : [["countryColumn", mapping.countryColumn]]),
    ...Object.entries(mapping.map).map(([variable, column]) => [`map.${variable}`, column]),
  ].filter(([, column]) => columnIndex(upload.columns, column!) === -1);
  if (missing.length > 0) {
    const [field, column] = missing[0]!;
    throw new UserError(
      "column_not_found",
      `the upload has no "${column}" column; its columns are ${upload.columns.map((c) => JSON.stringify(c)).join(", ")}`,
      {
        field,
      },
    );
  }
  const content = await templateContentOf(deps, mapping);
  const stored: StoredMapping = { ...mapping, content };
  const judge = rowJudge(upload.columns, {
    phoneColumn: mapping.phoneColumn,
    countryColumn: mapping.countryColumn,
    defaultRegion: mapping.region,
    paramColumns: mapping.map,
    acceptEmail: acceptsEmail(mapping.provider),
  });
  const variables = Object.keys(mapping.map);
  const segmentsOf = content !== null && variables.length > 0 ? segmentCounter(content.text, mapping.params) : null;
  const judged = (async function* (): AsyncGenerator<UploadJudgementRow> {
    for await (const page of readUploadRowPages(deps.db, uploadId)) {
      for (const { row, cells } of page) {
        const j = judge(cells, row);
        yield {
          row,
          phone: j.phone,
          rejectReason: j.rejectReason,
          segments: segmentsOf && j.phone !== null ? segmentsOf(j.params ?? {}) : null,
        };
      }
    }
  })();
  await replaceUploadJudgements(deps.db, uploadId, stored, judged);
  return stored;
}

async function templateContentOf(deps: UploadDeps, mapping: UploadMapping): Promise<StoredMapping["content"]> {
  if (mapping.templateContent !== undefined) return { text: mapping.templateContent, from: "mapping" };
  // Only legacy template ids live in the legacy template API; a messages or custom id is never looked up there.
  if (mapping.templateId === undefined || mapping.provider !== "legacy" || !deps.templates) return null;
  try {
    const template = await deps.templates.get(mapping.templateId);
    return { text: template.content, from: "template API" };
  } catch (error) {
    // The check reports the template as unknown; the launch's pre-flight refuses it with the reason.
    deps.log.debug(
      { err: error, templateId: mapping.templateId },
      "template content not readable for the upload check",
    );
    return null;
  }
}

function segmentCounter(
  content: string,
  params: Record<string, string>,
): (rowParams: Record<string, string>) => number {
  const cache = new Map<string, number>();
  return (rowParams) => {
    const text = renderTemplate(content, { ...params, ...rowParams });
    let segments = cache.get(text);
    if (segments === undefined) {
      segments = measureMessage(text).segments;
      if (cache.size < SEGMENT_CACHE_SIZE) cache.set(text, segments);
    }
    return segments;
  };
}

export interface UploadProblem {
  code: "no_mapping" | "empty" | "missing_variables" | "template_content_unknown" | "no_recipients";
  message: string;
  field?: string;
}

export interface UploadCheck {
  uploadId: string;
  /** True when nothing in `problems` stops a launch. */
  ready: boolean;
  /** File-level problems, before any count. */
  problems: UploadProblem[];
  rows: number;
  valid: number;
  invalid: number;
  duplicates: number;
  suppressed: number;
  /** The first row errors in row order (all of them: rejects.csv). */
  rowErrors: Array<{ row: number; value: string; reason: string }>;
  requests: number;
  segments: { total: number; encoding: "GSM-7" | "UCS-2" | "mixed" | null } | null;
  /** segments × SMS_SEGMENT_PRICE, when a price is configured. */
  cost: number | null;
}

/** GET /uploads/:id/check: what a launch would do with this upload, without storing or sending anything. */
export async function checkUpload(
  deps: UploadDeps,
  uploadId: string,
  options: { batchSize: number; segmentPrice?: number },
): Promise<UploadCheck> {
  const upload = await requireUpload(deps.db, uploadId);
  const mapping = upload.mapping as StoredMapping | null;
  const problems: UploadProblem[] = [];
  if (upload.rowCount === 0) problems.push({ code: "empty", message: "the file has a header but no data rows" });
  if (mapping === null) {
    problems.push({
      code: "no_mapping",
      message: "no mapping yet: map the upload (at least its phone column) first",
      field: "phoneColumn",
    });
    return {
      uploadId,
      ready: false,
      problems,
      rows: upload.rowCount,
      valid: 0,
      invalid: 0,
      duplicates: 0,
      suppressed: 0,
      rowErrors: [],
      requests: 0,
      segments: null,
      cost: null,
    };
  }
  if (mapping.content === null) {
    problems.push({
      code: "template_content_unknown",
      message: "the template's text is unknown (give templateContent in the mapping): segments are not counted",
      field: "templateContent",
    });
  } else {
    const supplied = new Set([...Object.keys(mapping.params), ...Object.keys(mapping.map)]);
    const missing = extractTemplateVariables(mapping.content.text, templateSyntaxOf(mapping.provider)).filter(
      (v) => !supplied.has(v),
    );
    if (missing.length > 0) {
      problems.push({
        code: "missing_variables",
        message: `no param and no column for template variable${missing.length === 1 ? "" : "s"} ${missing.join(", ")}`,
        field: "map",
      });
    }
  }
  const shape = planShape(upload, mapping, options.batchSize);
  const counts = await countUpload(deps.db, uploadId, shape);
  if (counts.rows > 0 && counts.valid === 0)
    problems.push({ code: "no_recipients", message: "no row has a number that can be sent to" });
  const rowErrors = await readUploadRowErrors(deps.db, uploadId, columnIndex(upload.columns, mapping.phoneColumn), {
    limit: CHECK_ROW_ERRORS,
  });
  const segments = segmentTotal(mapping, counts);
  return {
    uploadId,
    ready: !problems.some((p) => p.code !== "template_content_unknown"),
    problems,
    rows: counts.rows,
    valid: counts.valid,
    invalid: counts.invalid,
    duplicates: counts.duplicates,
    suppressed: counts.suppressed,
    rowErrors,
    // v1/custom-messages takes one recipient per request; the bulk APIs one batch.
    requests: mapping.provider === "custom" ? counts.valid : counts.batches,
    segments,
    cost:
      segments !== null && options.segmentPrice !== undefined
        ? Math.round(segments.total * options.segmentPrice * 1e6) / 1e6
        : null,
  };
}

function segmentTotal(
  mapping: StoredMapping,
  counts: { valid: number; segments: number | null },
): UploadCheck["segments"] {
  if (mapping.content === null) return null;
  if (Object.keys(mapping.map).length === 0) {
    const one = measureMessage(renderTemplate(mapping.content.text, mapping.params));
    return { total: one.segments * counts.valid, encoding: one.encoding };
  }
  return { total: counts.segments ?? 0, encoding: null };
}

function planShape(upload: UploadRecord, mapping: UploadMapping, batchSize: number): UploadPlanShape {
  const variables = Object.keys(mapping.map);
  return {
    variables,
    columnIndexes: variables.map((v) => columnIndex(upload.columns, mapping.map[v]!)),
    batchSize,
    groupByParams: mapping.provider !== "custom",
  };
}

/** Every invalid or suppressed row as CSV (row, value, reason), page by page, formula-injection safe. */
export async function exportUploadRejects(db: Database, uploadId: string, out: Writable): Promise<number> {
  const upload = await requireUpload(db, uploadId);
  const mapping = requireMapping(upload);
  await writeLine(out, csvLine(["row", "value", "reason"]));
  let written = 0;
  for await (const page of readUploadRowErrorPages(db, uploadId, columnIndex(upload.columns, mapping.phoneColumn))) {
    for (const r of page) await writeLine(out, csvLine([r.row, r.value, r.reason]));
    written += page.length;
  }
  return written;
}

export interface RowPreview extends MessageMeasure {
  row: number;
  text: string;
  /** The row's number as it would be sent, or why it would not be. */
  phone: string | null;
  rejectReason: string | null;
}

/** GET /uploads/:id/preview?row=N: one row's message as the recipient would get it. */
export async function previewUploadRow(db: Database, uploadId: string, row: number): Promise<RowPreview> {
  const upload = await requireUpload(db, uploadId);
  const mapping = requireMapping(upload);
  if (mapping.content === null) {
    throw new UserError(
      "template_content_unknown",
      "the template's text is unknown: give templateContent in the mapping",
      { field: "templateContent", kind: "conflict" },
    );
  }
  const cells = await readUploadRow(db, uploadId, row);
  if (cells === null)
    throw new UserError("row_not_found", `the upload has no row ${row} (it has ${upload.rowCount})`, {
      field: "row",
      kind: "not-found",
    });
  const judged = rowJudge(upload.columns, {
    phoneColumn: mapping.phoneColumn,
    countryColumn: mapping.countryColumn,
    defaultRegion: mapping.region,
    paramColumns: mapping.map,
    acceptEmail: acceptsEmail(mapping.provider),
  })(cells, row);
  const text = renderTemplate(mapping.content.text, { ...mapping.params, ...(judged.params ?? {}) });
  return { row, text, phone: judged.phone, rejectReason: judged.rejectReason, ...measureMessage(text) };
}

/** What a launch reads from a mapped upload: its staging and the mapping it was checked with. */
export interface UploadForLaunch {
  upload: UploadRecord;
  mapping: StoredMapping;
  stage: StagingSource;
}

export async function uploadForLaunch(db: Database, uploadId: string): Promise<UploadForLaunch> {
  const upload = await requireUpload(db, uploadId);
  const mapping = requireMapping(upload);
  const variables = Object.keys(mapping.map);
  const stage = stageUploadRows(upload, mapping, variables);
  return { upload, mapping, stage };
}

function stageUploadRows(upload: UploadRecord, mapping: UploadMapping, variables: string[]): StagingSource {
  const shape = planShape(upload, mapping, 1);
  return stageUpload(upload.id, columnIndex(upload.columns, mapping.phoneColumn), {
    variables,
    columnIndexes: shape.columnIndexes,
  });
}

/** Deletes expired uploads with their rows; the API server runs it at start-up and then periodically. */
export function forgetExpiredUploads(db: Database): Promise<number> {
  return deleteExpiredUploads(db);
}

async function requireUpload(db: Database, uploadId: string): Promise<UploadRecord> {
  const upload = await findUpload(db, uploadId);
  if (!upload) throw new UploadNotFoundError(uploadId);
  return upload;
}

function requireMapping(upload: UploadRecord): StoredMapping {
  if (upload.mapping === null) {
    throw new UserError(
      "upload_not_mapped",
      "the upload has no mapping yet: map it (at least its phone column) first",
      { field: "phoneColumn", kind: "conflict" },
    );
  }
  return upload.mapping as StoredMapping;
}

/** An upload as the console's mapping and check pages show it. */
export interface UploadView {
  uploadId: string;
  filename: string | null;
  columns: string[];
  sample: string[][];
  rows: number;
  suggestedPhoneColumn: string | null;
  mapping: StoredMapping | null;
  /** Set once the upload was launched: its campaign. */
  campaignId: string | null;
}

export async function describeUpload(db: Database, uploadId: string, defaultRegion?: string): Promise<UploadView> {
  const upload = await requireUpload(db, uploadId);
  const sample = await readUploadSample(db, uploadId, SAMPLE_ROWS);
  return {
    uploadId,
    filename: upload.filename,
    columns: upload.columns,
    sample,
    rows: upload.rowCount,
    suggestedPhoneColumn: suggestPhoneColumn(upload.columns, sample, defaultRegion),
    mapping: upload.mapping as StoredMapping | null,
    campaignId: upload.campaignId,
  };
}
