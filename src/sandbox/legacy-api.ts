/**
 * POST /v1/send (seed 001), the legacy bulk send API.
 *
 * The template must be in the legacy template store and approved (33001 / 33002 otherwise). A request_id
 * repeated within requestIdTtlMs replays the first response byte for byte and sends nothing. Only answers from an actual send attempt are remembered (success, partial
 * success, all numbers invalid); parameter errors are not, so a corrected retry can go through.
 */
import { refusesNumber, type SandboxContext } from "./context.ts";
import { isPlainObject, jsonReply, looksLikePhone, type Reply } from "./http.ts";
import { randomBase36 } from "./random.ts";
import type { ErrorCode, SendEndpoint } from "./send-endpoint.ts";

const MAX_TARGETS_PER_REQUEST = 1000;
const MAX_CUSTOM_ARGS_BYTES = 1024;
const MAX_VARS_BYTES = 1024 * 1024;
const MAX_REQUEST_ID_LENGTH = 128;
const SENDER_NAME = /^[A-Za-z0-9]{3,11}$/;
const INVALID_PARAMETER = 30001;
const PARTIAL_SUCCESS = 41031;
const INVALID_PHONE: ErrorCode = { code: 32002, message: "Invalid phone number format" };
// 33001 is the template API's "does not exist" (seed 003); seed 001 names no code for a send with a missing or
// unapproved template, so 33001 and the sandbox's own 33002 stand in.
const TEMPLATE_MISSING: ErrorCode = { code: 33001, message: "The template does not exist" };
const TEMPLATE_NOT_APPROVED: ErrorCode = { code: 33002, message: "The template has not been approved" };

/** The legacy platform sends only its own approved templates. */
function templateRefusal(ctx: SandboxContext, templateId: number): ErrorCode | undefined {
  const template = ctx.templates.get(templateId);
  if (!template) return TEMPLATE_MISSING;
  return template.approval_status === 1 ? undefined : TEMPLATE_NOT_APPROVED;
}

interface LegacyRequest {
  to: string[];
  templateId: number;
  requestId?: string;
  customArgs?: Record<string, unknown>;
}

function invalid(message: string): ErrorCode {
  return { code: INVALID_PARAMETER, message };
}

function isIntegerLike(value: unknown): boolean {
  return (typeof value === "number" && Number.isInteger(value)) || (typeof value === "string" && /^\d+$/.test(value));
}

function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value));
}

// Seed 001: no HTTP links in variables.
const LINK = /(https?:\/\/|www\.)/i;

function validate(body: unknown, varMaxChars: number): LegacyRequest | ErrorCode {
  if (!isPlainObject(body)) return invalid("request body must be a JSON object");
  const { from, to, custom_args, request_id } = body;
  const content = body.body;
  if (from !== undefined && from !== "" && (typeof from !== "string" || !SENDER_NAME.test(from))) {
    return invalid("invalid from: sender name must be 3-11 English letters or digits");
  }
  if (!Array.isArray(to)) return invalid("to: required, an array of phone numbers");
  if (to.length === 0) return invalid("to: at least one phone number is required");
  if (to.length > MAX_TARGETS_PER_REQUEST) {
    return invalid(`to: at most ${MAX_TARGETS_PER_REQUEST} numbers per request`);
  }
  const badIndex = to.findIndex((entry) => typeof entry !== "string");
  if (badIndex !== -1) return invalid(`to[${badIndex}]: must be a string`);
  if (!isPlainObject(content)) return invalid("body: required, an object with template_id");
  if (!isIntegerLike(content.template_id)) return invalid("body.template_id: required integer");
  if (content.msg_type !== undefined && !isIntegerLike(content.msg_type))
    return invalid("body.msg_type: must be an integer");
  if (content.label_id !== undefined && !isIntegerLike(content.label_id))
    return invalid("body.label_id: must be an integer");
  if (content.vars !== undefined) {
    if (!isPlainObject(content.vars)) return invalid("body.vars: must be an object");
    if (jsonBytes(content.vars) > MAX_VARS_BYTES) return invalid("body.vars: at most 1MB");
    for (const [name, value] of Object.entries(content.vars)) {
      // The seed's prose also shows a list of values per variable; each must follow the same rules.
      const values: unknown[] = Array.isArray(value) ? value : [value];
      for (const one of values) {
        if (typeof one !== "string") return invalid(`body.vars.${name}: values must be strings`);
        if (varMaxChars > 0 && [...one].length > varMaxChars)
          return invalid(`body.vars.${name}: at most ${varMaxChars} characters per value`);
        if (LINK.test(one)) return invalid(`body.vars.${name}: links are not allowed`);
      }
    }
  }
  if (custom_args !== undefined) {
    if (!isPlainObject(custom_args)) return invalid("custom_args: must be an object");
    if (jsonBytes(custom_args) > MAX_CUSTOM_ARGS_BYTES) {
      return invalid(`custom_args: at most ${MAX_CUSTOM_ARGS_BYTES} bytes of JSON`);
    }
  }
  if (request_id !== undefined) {
    if (typeof request_id !== "string") return invalid("request_id: must be a string");
    if (request_id.length > MAX_REQUEST_ID_LENGTH) {
      return invalid(`request_id: at most ${MAX_REQUEST_ID_LENGTH} characters`);
    }
  }
  return {
    to: to as string[],
    templateId: Number(content.template_id),
    // An empty request_id cannot identify a retry, so it disables de-duplication.
    requestId: request_id === "" ? undefined : request_id,
    customArgs: custom_args,
  };
}

function legacyError(_ctx: SandboxContext, status: number, error: ErrorCode): Reply {
  return jsonReply(status, { code: error.code, message: error.message });
}

/** The number as this sandbox echoes it (legacyEchoForm): the real provider's form is not documented. */
function echoed(ctx: SandboxContext, phone: string): string {
  const digits = phone.replace(/^\+/, "");
  switch (ctx.knobs.legacyEchoForm) {
    case "digits":
      return digits;
    case "00":
      return `00${digits}`;
    default:
      return phone;
  }
}

function smsId(ctx: SandboxContext, phone: string): string {
  return `${ctx.nowMs()}_15_3_11_${randomBase36(() => ctx.random(), 6)}$${echoed(ctx, phone)}`;
}

function sendToNumbers(ctx: SandboxContext, request: LegacyRequest): Reply {
  const smsIds: string[] = [];
  const failedItems: { phone: string; message: string }[] = [];
  const refusedPhones: string[] = [];
  for (const phone of request.to) {
    if (refusesNumber(ctx, phone, looksLikePhone(phone))) {
      failedItems.push({ phone: echoed(ctx, phone), message: INVALID_PHONE.message });
      refusedPhones.push(phone);
      continue;
    }
    ctx.ledger.recordAccepted("legacy", phone);
    const id = smsId(ctx, phone);
    smsIds.push(id);
    ctx.reports.accepted({ target: phone, messageId: id, customArgs: request.customArgs });
  }
  ctx.ledger.count("rejectedNumbers", failedItems.length);

  // Every number refused is a 400 32002 (recorded by the server for the whole request); some is 41031.
  if (smsIds.length === 0) return legacyError(ctx, 400, INVALID_PHONE);
  for (const phone of refusedPhones) ctx.ledger.recordRefused("legacy", phone, PARTIAL_SUCCESS);
  if (failedItems.length === 0) {
    return jsonReply(200, { sms_ids: smsIds, request_id: request.requestId, custom_args: request.customArgs });
  }
  return jsonReply(200, {
    code: PARTIAL_SUCCESS,
    message: "partial success",
    success_count: smsIds.length,
    sms_ids: smsIds,
    request_id: request.requestId,
    failed_count: failedItems.length,
    failed_items: failedItems,
    custom_args: request.customArgs,
  });
}

export const legacyEndpoint: SendEndpoint = {
  api: "legacy",
  platform: "sms",
  path: "/v1/send",
  unauthorized: { code: 30000, message: "Unauthorized." },
  invalidJson: invalid("request body must be valid JSON"),
  invalidParameter: INVALID_PARAMETER,
  errorReply: legacyError,

  send(ctx, body) {
    const request = validate(body, ctx.knobs.legacyVarMaxChars);
    if ("code" in request) return legacyError(ctx, 400, request);
    if (request.requestId === undefined) {
      const refusal = templateRefusal(ctx, request.templateId);
      return refusal ? legacyError(ctx, 400, refusal) : sendToNumbers(ctx, request);
    }

    const replay = ctx.requestIds.get(request.requestId);
    if (replay) {
      ctx.ledger.count("dedupHits");
      return replay;
    }
    // Not remembered, like a parameter error: the same request_id may go through once the template is approved.
    const refusal = templateRefusal(ctx, request.templateId);
    if (refusal) return legacyError(ctx, 400, refusal);
    const reply = sendToNumbers(ctx, request);
    ctx.requestIds.set(request.requestId, reply);
    return reply;
  },
};
