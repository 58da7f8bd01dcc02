/**
 * POST /v1/messages (seed 000), the current bulk send API.
 *
 * Magic template ids (see magic-templates.ts): "missing*" → 4001, "rate-limited"/"freq-*" → 3004,
 * "fail-*" → 5001; an id the sandbox was told does not exist (MessagesTemplates) → 4001; any other id is
 * accepted. The legacy template store is never consulted: it is another platform's.
 * Scheduled sends are recorded in the ledger at once (the sandbox does not wait for schedule_time); the
 * request log's `sendsAt` says when they are due. Its clock (`clock` option) decides the window.
 */
import { refusesNumber, type SandboxContext } from "./context.ts";
import { isPlainObject, looksLikePhone, type Reply } from "./http.ts";
import { magicTemplateFailure } from "./magic-templates.ts";
import type { ErrorCode, SendEndpoint } from "./send-endpoint.ts";

export const MAX_TARGETS_PER_REQUEST = 1000;
const MIN_SCHEDULE_LEAD_SECONDS = 180;
const MAX_SCHEDULE_LEAD_SECONDS = 30 * 24 * 60 * 60;

const INVALID_PARAMETER = 3002;

function invalid(message: string): ErrorCode {
  return { code: INVALID_PARAMETER, message };
}

interface MessagesRequest {
  to: string[];
  templateId: string;
  scheduleTime?: number;
  customArgs?: Record<string, unknown>;
}

function validate(body: unknown, nowMs: number): MessagesRequest | ErrorCode {
  if (!isPlainObject(body)) return { code: 3001, message: "request body must be a JSON object" };
  const { to, template, plan_name, schedule_time, custom_args } = body;
  if (!Array.isArray(to)) return invalid("to: required, an array of phone numbers");
  if (to.length === 0) return invalid("to: at least one number is required");
  if (to.length > MAX_TARGETS_PER_REQUEST) {
    return invalid(`to: at most ${MAX_TARGETS_PER_REQUEST} numbers per request`);
  }
  const badIndex = to.findIndex((entry) => typeof entry !== "string");
  if (badIndex !== -1) return invalid(`to[${badIndex}]: must be a string`);
  if (!isPlainObject(template)) return invalid("template: required, an object with id and params");
  if (typeof template.id !== "string" || template.id.length === 0) {
    return invalid("template.id: required non-empty string");
  }
  if (template.params !== undefined && !isPlainObject(template.params)) {
    return invalid("template.params: must be an object");
  }
  if (plan_name !== undefined && typeof plan_name !== "string") return invalid("plan_name: must be a string");
  if (custom_args !== undefined && !isPlainObject(custom_args)) return invalid("custom_args: must be an object");
  if (schedule_time !== undefined) {
    if (typeof schedule_time !== "number" || !Number.isInteger(schedule_time) || schedule_time <= 0) {
      return invalid("schedule_time: must be a positive integer unix timestamp in seconds");
    }
    // "Strictly at least 3 minutes later than the current time" (seed 000): exactly 3 minutes is refused.
    const leadMs = schedule_time * 1000 - nowMs;
    if (leadMs <= MIN_SCHEDULE_LEAD_SECONDS * 1000) {
      return invalid("schedule_time: must be strictly more than 3 minutes after the current time");
    }
    if (leadMs > MAX_SCHEDULE_LEAD_SECONDS * 1000) {
      return invalid("schedule_time: must be at most 30 days after the current time");
    }
  }
  return { to: to as string[], templateId: template.id, scheduleTime: schedule_time, customArgs: custom_args };
}

function targetCount(body: unknown): number {
  return isPlainObject(body) && Array.isArray(body.to) ? body.to.length : 0;
}

const MAGIC_FAILURES = {
  "not-found": { code: 4001, message: "template not found" },
  "frequency-limit": {
    code: 3004,
    message:
      "Exceeded frequency limit, cannot send again to the same target user with the same template within the validity period of the verification code",
  },
  "delivery-failed": { code: 5001, message: "Message delivery failed" },
} satisfies Record<string, ErrorCode>;

/** Every /v1/messages error carries the plan fields too, per the seed (accepted_count > 0 is possible). */
function messagesError(
  ctx: SandboxContext,
  status: number,
  error: ErrorCode,
  body?: unknown,
  acceptedCount = 0,
): Reply {
  return {
    status,
    text: JSON.stringify({
      plan_id: ctx.ids.nextString(),
      total_count: targetCount(body),
      accepted_count: acceptedCount,
      code: error.code,
      message: error.message,
    }),
  };
}

export const messagesEndpoint: SendEndpoint = {
  api: "messages",
  platform: "messages",
  path: "/v1/messages",
  unauthorized: { code: 2001, message: "Authentication failed, incorrect token provided" },
  invalidJson: {
    code: 3001,
    message: "Invalid request parameter format, please check if it conforms to the required JSON format",
  },
  invalidParameter: INVALID_PARAMETER,

  errorReply: messagesError,

  send(ctx, body): Reply {
    const request = validate(body, ctx.nowMs());
    if ("code" in request) return messagesError(ctx, 400, request, body);
    const failure = magicTemplateFailure(request.templateId);
    if (failure) return messagesError(ctx, 400, MAGIC_FAILURES[failure], body);
    // This platform's own templates: never the legacy template store.
    if (!ctx.messagesTemplates.exists(request.templateId))
      return messagesError(ctx, 400, MAGIC_FAILURES["not-found"], body);

    let acceptedCount = 0;
    const singleMessageId = request.to.length === 1 ? ctx.ids.nextString() : undefined;
    for (const target of request.to) {
      if (refusesNumber(ctx, target, looksLikePhone(target))) {
        ctx.ledger.count("rejectedNumbers");
        // Not accepted (not in accepted_count); v1/messages names no code per number.
        ctx.ledger.recordRefused("messages", target, INVALID_PARAMETER);
        continue;
      }
      ctx.ledger.recordAccepted("messages", target);
      if (ctx.reports.enabled) {
        ctx.reports.accepted({
          target,
          messageId: singleMessageId ?? ctx.ids.nextString(),
          customArgs: request.customArgs,
        });
      }
      acceptedCount += 1;
    }

    const summary = {
      plan_id: ctx.ids.nextString(),
      total_count: request.to.length,
      accepted_count: acceptedCount,
    };
    if (request.scheduleTime === undefined) {
      const singleAccepted = request.to.length === 1 && acceptedCount === 1;
      return {
        status: 200,
        text: JSON.stringify(singleAccepted ? { ...summary, message_id: singleMessageId } : summary),
      };
    }
    // The provider sends task_id as a bare integer above 2^53, which JSON.stringify cannot emit;
    // splicing it in by hand keeps clients honest about lossless parsing. Like the seed's
    // scheduled example, no message_id is returned for scheduled sends.
    const taskId = ctx.ids.next().toString();
    const head = JSON.stringify(summary).slice(0, -1);
    return { status: 200, text: `${head},"schedule_info":{"task_id":${taskId}}}` };
  },
};
