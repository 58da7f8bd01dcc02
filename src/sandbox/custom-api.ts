/**
 * POST /v1/custom-messages (seed 002): one phone number or e-mail address per call.
 *
 * Magic template ids (see magic-templates.ts): "missing*" → 4001, "rate-limited"/"freq-*" → 3004,
 * "fail-*" → 5001, and "code-*" requires template.params.code.
 */
import { refusesNumber, type SandboxContext } from "./context.ts";
import { isPlainObject, jsonReply, looksLikeEmail, looksLikePhone, type Reply } from "./http.ts";
import { magicTemplateFailure, requiresVerificationCode } from "./magic-templates.ts";
import type { ErrorCode, SendEndpoint } from "./send-endpoint.ts";

const INVALID_PARAMETER = 3002;

function invalid(message: string): ErrorCode {
  return { code: INVALID_PARAMETER, message };
}

interface CustomRequest {
  to: string;
  channel: "sms" | "email";
  templateId: string;
}

function validate(body: unknown): CustomRequest | ErrorCode {
  if (!isPlainObject(body)) return { code: 3001, message: "request body must be a JSON object" };
  const { to, template } = body;
  if (typeof to !== "string" || to.length === 0) {
    return invalid("to: required, a phone number or e-mail address");
  }
  const channel = looksLikeEmail(to) ? "email" : looksLikePhone(to) ? "sms" : undefined;
  if (!channel) return invalid("to: not a valid phone number or e-mail address");
  if (!isPlainObject(template)) return invalid("template: required, an object with id and params");
  if (typeof template.id !== "string" || template.id.length === 0) {
    return invalid("template.id: required non-empty string");
  }
  const params = template.params;
  if (params !== undefined && !isPlainObject(params)) return invalid("template.params: must be an object");
  if (requiresVerificationCode(template.id)) {
    const code = params?.code;
    if (typeof code !== "string" || code.length === 0) {
      return invalid("template.params.code: required for verification code templates");
    }
  }
  return { to, channel, templateId: template.id };
}

const MAGIC_FAILURES = {
  "not-found": { code: 4001, message: "template not found" },
  "frequency-limit": {
    code: 3004,
    message:
      "Rate limit exceeded. For the same template and target user, verification codes cannot be resent within the validity period",
  },
  "delivery-failed": { code: 5001, message: "sms send fail" },
} satisfies Record<string, ErrorCode>;

function customError(_ctx: SandboxContext, status: number, error: ErrorCode): Reply {
  return jsonReply(status, { code: error.code, message: error.message });
}

export const customEndpoint: SendEndpoint = {
  api: "custom",
  platform: "otp",
  path: "/v1/custom-messages",
  unauthorized: { code: 2001, message: "Authentication failed, incorrect token provided" },
  invalidJson: {
    code: 3001,
    message: "Invalid request parameter format. Ensure the JSON content complies with the required format.",
  },
  invalidParameter: INVALID_PARAMETER,
  errorReply: customError,

  send(ctx, body) {
    const request = validate(body);
    if ("code" in request) return customError(ctx, 400, request);
    const failure = magicTemplateFailure(request.templateId);
    if (failure) return customError(ctx, 400, MAGIC_FAILURES[failure]);
    if (refusesNumber(ctx, request.to, true)) {
      ctx.ledger.count("rejectedNumbers");
      return customError(ctx, 400, invalid("to: recipient refused as invalid"));
    }
    ctx.ledger.recordAccepted("custom", request.to);
    const messageId = ctx.ids.nextString();
    // custom-messages carries no custom_args: its reports are found by message_id.
    ctx.reports.accepted({ target: request.to, messageId });
    return jsonReply(200, { message_id: messageId, send_channel: request.channel });
  },
};
