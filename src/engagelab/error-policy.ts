import { ProviderError, ProviderRequestError } from "./errors.ts";

export type ErrorAction =
  | "retry" // transient: back off and try the same batch again
  | "pause-campaign" // the account is refused: nothing more is sent until `smsblast resume`
  | "fail-batch" // the request itself is wrong: record the provider's code and message, no retry
  | "fail-recipients" // the provider refused these recipients (frequency limit), not the campaign
  | "mark-unknown"; // the provider may have sent it, but its answer is unreadable: never resend blindly

export interface ErrorDecision {
  action: ErrorAction;
  /** Set when the provider said how long to wait (HTTP 429 Retry-After). */
  retryAfterMs?: number;
  /** True when every worker should back off together (rate limit), not just this job. */
  rateLimited: boolean;
  reason: string;
}

/**
 * The one table that decides what a provider failure means. Codes are the union of the three send APIs'
 * documented codes (seeds 000-002).
 */
const CODE_ACTIONS: ReadonlyMap<number, ErrorAction> = new Map([
  [1000, "retry"], // internal error
  [2001, "pause-campaign"], // authentication failed
  [2002, "pause-campaign"], // token expired or disabled
  [2004, "pause-campaign"], // no permission for this API
  [30000, "pause-campaign"], // legacy: unauthorized
  [3001, "fail-batch"], // malformed JSON
  [3002, "fail-batch"], // invalid parameters
  [3003, "fail-batch"], // business validation failed
  [3004, "fail-recipients"], // frequency limit for this number and template
  [4001, "fail-batch"], // template or other resource does not exist
  [5001, "fail-batch"], // delivery failed
  [32002, "fail-batch"], // legacy: invalid phone number format (every number refused)
]);

export interface ClassifyOptions {
  /**
   * Whether sending the same request again cannot duplicate messages: legacy v1/send (request_id) or a
   * campaign that chose at-least-once. Decides what an ambiguous transport failure means.
   */
  resendIsSafe: boolean;
}

export function classifyProviderError(error: unknown, options: ClassifyOptions): ErrorDecision {
  if (error instanceof ProviderRequestError) {
    return { action: "fail-batch", rateLimited: false, reason: `invalid request: ${error.field}` };
  }
  if (!(error instanceof ProviderError)) {
    return { action: "fail-batch", rateLimited: false, reason: "unexpected error" };
  }
  if (error.kind === "network" || error.kind === "timeout") {
    // A timeout or reset after the request left may mean the provider sent it. Without request_id
    // de-duplication, retrying could text the batch twice; at most once makes it `unknown` instead.
    if (error.requestMayHaveArrived && !options.resendIsSafe) {
      return { action: "mark-unknown", rateLimited: false, reason: `${error.kind} after the request was sent` };
    }
    return { action: "retry", rateLimited: false, reason: error.kind };
  }
  if (error.status === 429) {
    return { action: "retry", retryAfterMs: error.retryAfterMs, rateLimited: true, reason: "HTTP 429" };
  }
  const byCode = error.code === undefined ? undefined : CODE_ACTIONS.get(error.code);
  if (byCode) return { action: byCode, rateLimited: false, reason: `code ${error.code}` };
  if (error.status !== undefined && error.status >= 500) {
    return { action: "retry", rateLimited: false, reason: `HTTP ${error.status}` };
  }
  if (error.status === 401 || error.status === 403) {
    return { action: "pause-campaign", rateLimited: false, reason: `HTTP ${error.status}` };
  }
  // v1/messages answers some failures with HTTP 200 and a code it does not document: the request was
  // accepted for processing, so it may have been sent.
  if (error.kind === "invalid-response" || (error.status !== undefined && error.status >= 200 && error.status < 300)) {
    return { action: "mark-unknown", rateLimited: false, reason: "unreadable success response" };
  }
  // Other 4xx and a 2xx body that is not what the API documents: sending the same request again cannot help.
  return { action: "fail-batch", rateLimited: false, reason: error.status ? `HTTP ${error.status}` : error.kind };
}
