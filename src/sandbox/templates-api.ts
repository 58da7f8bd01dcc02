/**
 * /v1/templates (seed 003): an in-memory template store with query, batch query, add,
 * modify (PUT, or POST on the template's URL), submit for review and delete.
 *
 * Error codes beyond the seed's 30000/30002/33001/33006 are the sandbox's own choice:
 * 30001 malformed parameter, 33005 duplicate name, 33007 content too long,
 * 33008 content with a forbidden word.
 */
import { isPlainObject, jsonReply, parseJson, type Reply } from "./http.ts";
import type { SandboxContext } from "./context.ts";
import {
  APPROVAL_STATUSES,
  MAX_CONTENT_CHARS,
  MAX_NAME_CHARS,
  MAX_PAGE_SIZE,
  charCount,
  type ApiError,
  type ApprovalStatus,
} from "./template-store.ts";

function fail(code: number, message: string): Reply {
  return jsonReply(400, { code, message });
}

const TEMPLATE_MISSING = (): Reply => fail(33001, "The template does not exist");

// "test" only as a whole word, so ordinary words such as "latest" stay usable.
const FORBIDDEN_CONTENT = /[[\]【】]|\btest\b|测试/i;

interface TemplateFields {
  template_name?: string;
  template_content?: string;
  template_type?: number;
  msg_type?: number;
  sign_id?: number;
  /** Whether any field that sends the template back to review was given. */
  reviewedFieldGiven: boolean;
  submit: boolean;
}

function parseSmallInt(value: unknown, allowed?: readonly number[]): number | undefined {
  const parsed =
    typeof value === "number" && Number.isInteger(value)
      ? value
      : typeof value === "string" && /^-?\d+$/.test(value)
        ? Number(value)
        : undefined;
  if (parsed === undefined || (allowed && !allowed.includes(parsed))) return undefined;
  return parsed;
}

function parseTemplateFields(body: unknown, mode: "add" | "modify"): TemplateFields | ApiError {
  if (!isPlainObject(body)) return { code: 30001, message: "request body must be a JSON object" };
  const fields: TemplateFields = { reviewedFieldGiven: false, submit: false };
  const { template_name, template_content, template_type, msg_type, sign_id, sign_pos, submit } = body;

  if (template_name !== undefined || mode === "add") {
    if (typeof template_name !== "string" || template_name.trim() === "") {
      return { code: 30001, message: "template_name: required non-empty string" };
    }
    if (charCount(template_name) > MAX_NAME_CHARS) {
      return { code: 33006, message: "Template name only supports 64 characters" };
    }
    fields.template_name = template_name;
  }
  if (template_content !== undefined || mode === "add") {
    if (typeof template_content !== "string" || template_content.trim() === "") {
      return { code: 30001, message: "template_content: required non-empty string" };
    }
    if (charCount(template_content) > MAX_CONTENT_CHARS) {
      return { code: 33007, message: "Template content only supports 512 characters" };
    }
    if (FORBIDDEN_CONTENT.test(template_content)) {
      return { code: 33008, message: "Template content cannot contain [], 【】, test or 测试" };
    }
    fields.template_content = template_content;
    fields.reviewedFieldGiven = true;
  }
  if (template_type !== undefined || mode === "add") {
    const parsed = parseSmallInt(template_type, [0, 1, 2]);
    if (parsed === undefined) return { code: 30001, message: 'template_type: must be "0", "1" or "2"' };
    fields.template_type = parsed;
    fields.reviewedFieldGiven = true;
  }
  if (msg_type !== undefined) {
    const parsed = parseSmallInt(msg_type);
    if (parsed === undefined) return { code: 30001, message: "msg_type: must be an integer" };
    fields.msg_type = parsed;
    fields.reviewedFieldGiven = true;
  }
  if (sign_id !== undefined) {
    const parsed = parseSmallInt(sign_id);
    if (parsed === undefined) return { code: 30001, message: "sign_id: must be an integer" };
    fields.sign_id = parsed;
    fields.reviewedFieldGiven = true;
  }
  if (sign_pos !== undefined) {
    if (parseSmallInt(sign_pos, [0, 1]) === undefined) return { code: 30001, message: 'sign_pos: must be "0" or "1"' };
    fields.reviewedFieldGiven = true;
  }
  if (submit !== undefined) {
    if (typeof submit !== "boolean") return { code: 30001, message: "submit: must be a boolean" };
    fields.submit = submit;
  }
  return fields;
}

function parseBody(rawBody: string): { ok: true; value: unknown } | { ok: false; reply: Reply } {
  const parsed = parseJson(rawBody);
  return parsed.ok ? parsed : { ok: false, reply: fail(30001, "request body must be valid JSON") };
}

function listTemplates(ctx: SandboxContext, query: URLSearchParams): Reply {
  let templates = ctx.templates.list();

  const ids = query.get("template_ids");
  if (ids !== null && ids.trim() !== "") {
    const wanted = new Set<number>();
    for (const part of ids.split(",")) {
      const text = part.trim();
      if (text === "") continue;
      if (!/^\d+$/.test(text)) return fail(30002, "invalid template_ids");
      wanted.add(Number(text));
    }
    templates = templates.filter((t) => wanted.has(t.template_id));
  }
  const status = query.get("approval_status");
  if (status !== null && status !== "") {
    const parsed = parseSmallInt(status, APPROVAL_STATUSES);
    if (parsed === undefined) return fail(30002, "invalid approval_status");
    templates = templates.filter((t) => t.approval_status === parsed);
  }
  const name = query.get("template_name");
  if (name !== null && name !== "") {
    const needle = name.toLowerCase();
    templates = templates.filter((t) => t.template_name.toLowerCase().includes(needle));
  }
  const offsetText = query.get("offset");
  const offset = offsetText === null || offsetText === "" ? 0 : parseSmallInt(offsetText);
  if (offset === undefined || offset < 0) return fail(30002, "invalid offset");
  const limitText = query.get("limit");
  const limit = limitText === null || limitText === "" ? MAX_PAGE_SIZE : parseSmallInt(limitText);
  if (limit === undefined || limit < 0 || limit > MAX_PAGE_SIZE) return fail(30002, "invalid limit");

  const page = templates.slice(offset, offset + limit);
  return jsonReply(200, { result: page, count: page.length, total: templates.length });
}

function addTemplate(ctx: SandboxContext, rawBody: string): Reply {
  const body = parseBody(rawBody);
  if (!body.ok) return body.reply;
  const fields = parseTemplateFields(body.value, "add");
  if ("code" in fields) return fail(fields.code, fields.message);
  const { template_name, template_content, template_type } = fields;
  if (template_name === undefined || template_content === undefined || template_type === undefined) {
    return fail(30001, "template_name, template_content and template_type are required");
  }
  if (ctx.templates.isNameTaken(template_name)) return fail(33005, "Template name already exists");
  const template = ctx.templates.add(
    { template_name, template_content, template_type, msg_type: fields.msg_type, sign_id: fields.sign_id },
    fields.submit ? 0 : -2,
  );
  return jsonReply(200, { result: template });
}

function modifyTemplate(ctx: SandboxContext, id: number, rawBody: string): Reply {
  const existing = ctx.templates.get(id);
  if (!existing) return TEMPLATE_MISSING();
  const body = parseBody(rawBody);
  if (!body.ok) return body.reply;
  const fields = parseTemplateFields(body.value, "modify");
  if ("code" in fields) return fail(fields.code, fields.message);
  if (fields.template_name !== undefined && ctx.templates.isNameTaken(fields.template_name, id)) {
    return fail(33005, "Template name already exists");
  }
  const { reviewedFieldGiven, submit, ...changes } = fields;
  // Renaming alone keeps the review state; any other change needs a new review.
  const review =
    submit || reviewedFieldGiven ? { approval_status: (submit ? 0 : -2) as ApprovalStatus, approval_message: "" } : {};
  const defined = Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== undefined));
  ctx.templates.update(id, { ...defined, ...review });
  return jsonReply(200, { count: 1 });
}

function methodNotAllowed(allowed: string): Reply {
  return { ...jsonReply(405, { code: 30001, message: "method not allowed" }), headers: { allow: allowed } };
}

/** Routes an authenticated /v1/templates request. */
export function handleTemplates(
  ctx: SandboxContext,
  method: string,
  pathname: string,
  query: URLSearchParams,
  rawBody: string,
): Reply {
  const match = /^\/v1\/templates(?:\/([^/]+)(\/submit)?)?\/?$/.exec(pathname);
  if (!match) return jsonReply(404, { code: 30001, message: "not found" });
  const [, idText, submitSuffix] = match;

  if (idText === undefined) {
    if (method === "GET") return listTemplates(ctx, query);
    if (method === "POST") return addTemplate(ctx, rawBody);
    return methodNotAllowed("GET, POST");
  }

  const id = /^\d+$/.test(idText) ? Number(idText) : undefined;
  if (submitSuffix) {
    if (method !== "POST") return methodNotAllowed("POST");
    if (id === undefined || !ctx.templates.setApproval(id, 0)) return TEMPLATE_MISSING();
    return jsonReply(200, {});
  }
  switch (method) {
    case "GET": {
      const template = id === undefined ? undefined : ctx.templates.get(id);
      return template ? jsonReply(200, { result: template }) : TEMPLATE_MISSING();
    }
    case "PUT":
    case "POST":
      return id === undefined ? TEMPLATE_MISSING() : modifyTemplate(ctx, id, rawBody);
    case "DELETE":
      return id !== undefined && ctx.templates.remove(id) ? jsonReply(200, { count: 1 }) : TEMPLATE_MISSING();
    default:
      return methodNotAllowed("GET, PUT, POST, DELETE");
  }
}
