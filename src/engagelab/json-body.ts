import { parse, isSafeNumber } from "lossless-json";
import type { PlanCounts } from "./errors.ts";

/** Provider bodies larger than this are refused rather than parsed (a 1000-number legacy reply is ~60 KB). */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

export class ResponseParseError extends Error {
  override name = "ResponseParseError";
}

// Ids such as schedule_info.task_id are bare 64-bit integers that JSON.parse rounds silently
// (1972492621368553472 -> 1972492621368553500). Unsafe integers are kept as their exact digits.
function parseNumberLosslessly(value: string): number | string {
  return isSafeNumber(value) ? Number(value) : value;
}

/** Parses a provider response body without losing precision; never throws anything but ResponseParseError. */
export function parseProviderJson(text: string): unknown {
  if (text.length > MAX_RESPONSE_BYTES) {
    throw new ResponseParseError(`response body of ${text.length} bytes exceeds the ${MAX_RESPONSE_BYTES}-byte limit`);
  }
  try {
    return parse(text, null, parseNumberLosslessly);
  } catch (error) {
    if (error instanceof RangeError) throw new ResponseParseError("response body is nested too deeply to parse");
    const reason = error instanceof Error ? error.message : String(error);
    const excerpt = text.length > 80 ? `${text.slice(0, 80)}…` : text;
    throw new ResponseParseError(
      `response body is not valid JSON (${reason}); body starts: ${JSON.stringify(excerpt)}`,
    );
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Reads an id that may arrive as a JSON string or a (lossless) number; always returns text. */
export function readId(value: unknown): string | undefined {
  if (typeof value === "string" && value !== "") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return undefined;
}

export function readInt(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isInteger(value)) return value;
  if (typeof value === "string" && /^-?\d{1,15}$/.test(value)) return Number(value);
  return undefined;
}

/** plan_id, total_count and accepted_count of a v1/messages body (success or error); undefined when it has none. */
export function readPlanCounts(body: unknown): PlanCounts | undefined {
  if (!isRecord(body)) return undefined;
  const counts: PlanCounts = {};
  const planId = readId(body.plan_id);
  const totalCount = readInt(body.total_count);
  const acceptedCount = readInt(body.accepted_count);
  if (planId !== undefined) counts.planId = planId;
  if (totalCount !== undefined) counts.totalCount = totalCount;
  if (acceptedCount !== undefined) counts.acceptedCount = acceptedCount;
  return Object.keys(counts).length > 0 ? counts : undefined;
}
