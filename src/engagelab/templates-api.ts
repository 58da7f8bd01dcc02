import type { Config } from "../config/config.ts";
import { ProviderError, ProviderRequestError } from "./errors.ts";
import { EngageLabHttpClient } from "./http-client.ts";
import { isRecord, readId, readInt } from "./json-body.ts";
import { UserError } from "../model/errors.ts";

/** 0 pending review, 1 approved, -1 rejected, -2 not submitted (seed 003). */
export type ApprovalStatus = 0 | 1 | -1 | -2;
export const APPROVAL_STATUSES: readonly ApprovalStatus[] = [0, 1, -1, -2];

/** 0 verification code, 1 notification, 2 marketing. */
export type TemplateType = 0 | 1 | 2;
export const TEMPLATE_TYPES: readonly TemplateType[] = [0, 1, 2];

const APPROVAL_WORDS: Record<ApprovalStatus, string> = {
  0: "pending review",
  1: "approved",
  [-1]: "rejected",
  [-2]: "not submitted",
};

const TYPE_WORDS: Record<TemplateType, string> = { 0: "verification code", 1: "notification", 2: "marketing" };

export function describeApprovalStatus(status: ApprovalStatus): string {
  return APPROVAL_WORDS[status];
}

export function describeTemplateType(type: number): string {
  return TYPE_WORDS[type as TemplateType] ?? `type ${type}`;
}

export interface SmsTemplate {
  /** Kept as text: ids come from a lossless parse and are only ever echoed back. */
  templateId: string;
  templateName: string;
  msgType: number;
  templateType: number;
  content: string;
  approvalStatus: ApprovalStatus;
  /** The reviewer's reason; only a rejected template (-1) carries one. */
  approvalMessage: string;
  signId?: string;
  createTime: string;
  updateTime: string;
}

export interface TemplateFilter {
  templateIds?: readonly (number | string)[];
  approvalStatus?: ApprovalStatus;
  /** Fuzzy match on the provider side. */
  templateName?: string;
  /** Default 0. */
  offset?: number;
  /** 0..100, default 100. */
  limit?: number;
}

export interface TemplatePage {
  templates: SmsTemplate[];
  /** Templates on this page. */
  count: number;
  /** Templates matching the filter, across all pages. */
  total: number;
}

export interface NewTemplate {
  name: string;
  content: string;
  type: TemplateType;
  /** Default 2 (international) on the provider side. */
  msgType?: number;
  signId?: number | string;
  /** 0 front, 1 back. */
  signPos?: 0 | 1;
  /** Submit for review immediately instead of leaving it "not submitted". */
  submit?: boolean;
}

export type TemplateChanges = Partial<NewTemplate>;

const TEMPLATE_NOT_FOUND_CODE = 33001;

/** The provider answered 33001 for this id: it never existed or was deleted. */
export class TemplateNotFoundError extends UserError {
  override name = "TemplateNotFoundError";
  readonly providerCode = TEMPLATE_NOT_FOUND_CODE;
  constructor(
    readonly templateId: string,
    options?: { cause?: unknown },
  ) {
    super("template_not_found", `template ${templateId} does not exist`, { kind: "not-found" });
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

const MAX_NAME_CHARS = 64;
const MAX_CONTENT_CHARS = 512;
const MAX_PAGE_SIZE = 100;
// Seed 003 lists these as refused in content; "test" is matched as a word so "latest" is not blocked client-side.
const FORBIDDEN_CONTENT = /[[\]【】]|\btest\b|测试/i;

// The provider counts characters, not UTF-16 units: an emoji is one of the 512.
function charCount(text: string): number {
  return [...text].length;
}

function templateIdText(id: number | string, field = "template_id"): string {
  const text = typeof id === "number" ? String(id) : id.trim();
  // The id goes into the URL path; anything but digits could address another endpoint.
  if (!/^\d+$/.test(text))
    throw new ProviderRequestError(field, `must be a non-negative whole number, got "${String(id)}"`);
  return text;
}

function checkName(name: string): void {
  if (name.trim() === "") throw new ProviderRequestError("template_name", "must not be empty");
  if (charCount(name) > MAX_NAME_CHARS) {
    throw new ProviderRequestError(
      "template_name",
      `must be at most ${MAX_NAME_CHARS} characters, got ${charCount(name)}`,
    );
  }
}

function checkContent(content: string): void {
  if (content.trim() === "") throw new ProviderRequestError("template_content", "must not be empty");
  if (charCount(content) > MAX_CONTENT_CHARS) {
    throw new ProviderRequestError(
      "template_content",
      `must be at most ${MAX_CONTENT_CHARS} characters, got ${charCount(content)}`,
    );
  }
  if (FORBIDDEN_CONTENT.test(content)) {
    throw new ProviderRequestError("template_content", 'must not contain [ ] 【 】, the word "test" or 测试');
  }
}

function checkType(type: unknown): void {
  if (!TEMPLATE_TYPES.includes(type as TemplateType)) {
    throw new ProviderRequestError(
      "template_type",
      `must be 0 (verification code), 1 (notification) or 2 (marketing), got ${String(type)}`,
    );
  }
}

function checkWholeNumber(field: string, value: number | string): number {
  const n = typeof value === "number" ? value : /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 0)
    throw new ProviderRequestError(field, `must be a non-negative whole number, got "${String(value)}"`);
  return n;
}

/** The provider's snake_case body for add and modify; validated before anything is sent. */
function templateBody(fields: TemplateChanges, mode: "add" | "modify"): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (fields.name !== undefined || mode === "add") {
    checkName(fields.name ?? "");
    body.template_name = fields.name;
  }
  if (fields.content !== undefined || mode === "add") {
    checkContent(fields.content ?? "");
    body.template_content = fields.content;
  }
  if (fields.type !== undefined || mode === "add") {
    checkType(fields.type);
    // Seed 003 documents template_type, msg_type and sign_pos as strings.
    body.template_type = String(fields.type);
  }
  if (fields.msgType !== undefined) body.msg_type = String(checkWholeNumber("msg_type", fields.msgType));
  if (fields.signId !== undefined) body.sign_id = checkWholeNumber("sign_id", fields.signId);
  if (fields.signPos !== undefined) {
    if (fields.signPos !== 0 && fields.signPos !== 1)
      throw new ProviderRequestError("sign_pos", "must be 0 (front) or 1 (back)");
    body.sign_pos = String(fields.signPos);
  }
  if (fields.submit !== undefined) body.submit = fields.submit;
  return body;
}

function invalidResponse(detail: string, status?: number): ProviderError {
  return new ProviderError({ api: "templates", kind: "invalid-response", status, detail });
}

function toTemplate(raw: unknown, status: number): SmsTemplate {
  if (!isRecord(raw)) throw invalidResponse("template is not an object", status);
  const templateId = readId(raw.template_id);
  const approvalStatus = readInt(raw.approval_status);
  const msgType = readInt(raw.msg_type);
  const templateType = readInt(raw.template_type);
  const { template_name: templateName, template_content: content } = raw;
  if (templateId === undefined) throw invalidResponse("template lacks template_id", status);
  if (approvalStatus === undefined || !APPROVAL_STATUSES.includes(approvalStatus as ApprovalStatus)) {
    throw invalidResponse(`template ${templateId} has an unknown approval_status`, status);
  }
  if (typeof templateName !== "string" || typeof content !== "string") {
    throw invalidResponse(`template ${templateId} lacks template_name or template_content`, status);
  }
  if (msgType === undefined || templateType === undefined) {
    throw invalidResponse(`template ${templateId} lacks msg_type or template_type`, status);
  }
  const signId = readId(raw.sign_id);
  return {
    templateId,
    templateName,
    msgType,
    templateType,
    content,
    approvalStatus: approvalStatus as ApprovalStatus,
    // The seed only fills approval_message for rejected templates; elsewhere it may be "" or absent.
    approvalMessage: typeof raw.approval_message === "string" ? raw.approval_message : "",
    ...(signId === undefined ? {} : { signId }),
    createTime: typeof raw.create_time === "string" ? raw.create_time : "",
    updateTime: typeof raw.update_time === "string" ? raw.update_time : "",
  };
}

/**
 * /v1/templates (seed 003): query, batch query, add, modify, submit for review and delete SMS templates.
 * Every argument the seed constrains is checked here, so a bad request fails before it costs a round trip.
 */
export class TemplatesApi {
  constructor(
    private readonly http: EngageLabHttpClient,
    private readonly baseUrl: string,
  ) {}

  async get(id: number | string): Promise<SmsTemplate> {
    const idText = templateIdText(id);
    const { status, body } = await this.#call(idText, "GET", this.#url(`/v1/templates/${idText}`));
    if (!isRecord(body)) throw invalidResponse("success body is not an object", status);
    return toTemplate(body.result, status);
  }

  async list(filter: TemplateFilter = {}): Promise<TemplatePage> {
    const url = new URL(this.#url("/v1/templates"));
    if (filter.templateIds !== undefined && filter.templateIds.length > 0) {
      url.searchParams.set(
        "template_ids",
        filter.templateIds.map((id) => templateIdText(id, "template_ids")).join(","),
      );
    }
    if (filter.approvalStatus !== undefined) {
      if (!APPROVAL_STATUSES.includes(filter.approvalStatus)) {
        throw new ProviderRequestError(
          "approval_status",
          `must be one of ${APPROVAL_STATUSES.join(", ")}, got ${String(filter.approvalStatus)}`,
        );
      }
      url.searchParams.set("approval_status", String(filter.approvalStatus));
    }
    if (filter.templateName !== undefined && filter.templateName !== "")
      url.searchParams.set("template_name", filter.templateName);
    if (filter.offset !== undefined) {
      if (!Number.isSafeInteger(filter.offset) || filter.offset < 0) {
        throw new ProviderRequestError("offset", `must be a whole number of 0 or more, got ${filter.offset}`);
      }
      url.searchParams.set("offset", String(filter.offset));
    }
    if (filter.limit !== undefined) {
      if (!Number.isInteger(filter.limit) || filter.limit < 0 || filter.limit > MAX_PAGE_SIZE) {
        throw new ProviderRequestError(
          "limit",
          `must be a whole number from 0 to ${MAX_PAGE_SIZE}, got ${filter.limit}`,
        );
      }
      url.searchParams.set("limit", String(filter.limit));
    }

    const { status, body } = await this.http.call("templates", "GET", url.href);
    if (!isRecord(body) || !Array.isArray(body.result))
      throw invalidResponse("success body lacks a result array", status);
    const templates = body.result.map((raw) => toTemplate(raw, status));
    return {
      templates,
      count: readInt(body.count) ?? templates.length,
      total: readInt(body.total) ?? templates.length,
    };
  }

  async create(input: NewTemplate): Promise<SmsTemplate> {
    const payload = templateBody(input, "add");
    const { status, body } = await this.http.call("templates", "POST", this.#url("/v1/templates"), payload);
    if (!isRecord(body)) throw invalidResponse("success body is not an object", status);
    return toTemplate(body.result, status);
  }

  /** Renaming alone keeps the approval; any other change sends the template back to "not submitted" (or to review with submit). */
  async update(id: number | string, changes: TemplateChanges): Promise<void> {
    const idText = templateIdText(id);
    const payload = templateBody(changes, "modify");
    if (Object.keys(payload).length === 0)
      throw new ProviderRequestError("changes", "give at least one field to change");
    await this.#call(idText, "PUT", this.#url(`/v1/templates/${idText}`), payload);
  }

  async submit(id: number | string): Promise<void> {
    const idText = templateIdText(id);
    await this.#call(idText, "POST", this.#url(`/v1/templates/${idText}/submit`));
  }

  async delete(id: number | string): Promise<void> {
    const idText = templateIdText(id);
    await this.#call(idText, "DELETE", this.#url(`/v1/templates/${idText}`));
  }

  #url(path: string): string {
    return new URL(path, this.baseUrl).href;
  }

  /** A call addressed to one template: 33001 becomes a TemplateNotFoundError callers can branch on. */
  async #call(idText: string, method: "GET" | "POST" | "PUT" | "DELETE", url: string, payload?: unknown) {
    try {
      return await this.http.call("templates", method, url, payload);
    } catch (error) {
      if (error instanceof ProviderError && error.code === TEMPLATE_NOT_FOUND_CODE)
        throw new TemplateNotFoundError(idText, { cause: error });
      throw error;
    }
  }
}

/** A TemplatesApi with its own small keep-alive client, for the CLI and pre-flight checks outside a worker. */
export function createTemplatesApi(config: Config): { api: TemplatesApi; close: () => Promise<void> } {
  const http = new EngageLabHttpClient(config.engagelab.credentials, {
    timeoutMs: config.engagelab.timeoutMs,
    connections: 2,
  });
  return { api: new TemplatesApi(http, config.engagelab.smsUrl), close: () => http.close() };
}
