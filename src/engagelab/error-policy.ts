import { ProviderError, ProviderRequestError } from "./errors.ts";

export type ErrorAction =
  | "retry" // transient: back off and try the same batch again
  | "pause-campaign" // the account is refused: nothing more is sent until `smsblast resume`
  | "fail-batch" // the request itself is wrong: record the provider's code and message, no retry
  | "fail-recipients" // the provider refused these recipients (frequency limit), not the campaign
  | "partial-acceptance" // the error body says some numbers were accepted: record it, never resend
  | "mark-unknown"; // the provider may have sent it, but its answer is unreadable: never resend blindly

export interface ErrorDecision {
  action: ErrorAction;
  /** Set when the provider said how long to wait (HTTP 429 Retry-After). */
  retryAfterMs?: number;
  /** True when every worker should back off together (rate limit), not just this job. */
  rateLimited: boolean;
  /**
   * The provider may have acted on the request (a timeout after it left, a v1/messages 5xx that does not
   * say `accepted_count: 0`): sending it again may text someone twice.
   */
  mayHaveSent: boolean;
  reason: string;
}

/**
 * The one table that decides what a provider failure means. Codes are the union of the three send APIs'
 * documented codes (seeds 000-002).
 */
const CODE_ACTIONS: ReadonlyMap<number, ErrorAction> = new Map([
  [1000, "retry"], // internal error (a server failure: see serverFailure for when it is safe)
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
   * campaign that chose at-least-once. Decides what an ambiguous failure means.
   */
  resendIsSafe: boolean;
}

export function classifyProviderError(error: unknown, options: ClassifyOptions): ErrorDecision {
  if (error instanceof ProviderRequestError) {
    return decision("fail-batch", `invalid request: ${error.field}`);
  }
  if (!(error instanceof ProviderError)) return decision("fail-batch", "unexpected error");

  // Whatever the code or status: the provider says it took some numbers (docs/engagelab-apis.md#messages-errors),
  // without saying which. Resending would text those twice; failing would invite a re-send by hand.
  const accepted = error.counts?.acceptedCount;
  if (accepted !== undefined && accepted > 0) {
    return {
      action: "partial-acceptance",
      rateLimited: false,
      mayHaveSent: true,
      reason: `accepted_count ${accepted}`,
    };
  }
  if (error.kind === "network" || error.kind === "timeout") {
    // A timeout or reset after the request left may mean the provider sent it. Without request_id
    // de-duplication, retrying could text the batch twice; at most once makes it `unknown` instead.
    return ambiguousUnless(
      !error.requestMayHaveArrived,
      options,
      `${error.kind} after the request was sent`,
      error.kind,
    );
  }
  if (error.status === 429) {
    return { ...decision("retry", "HTTP 429"), retryAfterMs: error.retryAfterMs, rateLimited: true };
  }
  const byCode = error.code === undefined ? undefined : CODE_ACTIONS.get(error.code);
  const serverFailure =
    byCode === "retry" || (byCode === undefined && error.status !== undefined && error.status >= 500);
  if (serverFailure) return classifyServerFailure(error, options);
  if (byCode) return decision(byCode, `code ${error.code}`);
  if (error.status === 401 || error.status === 403) return decision("pause-campaign", `HTTP ${error.status}`);
  // v1/messages answers some failures with HTTP 200 and a code it does not document: the request was
  // accepted for processing, so it may have been sent, unless the body itself says nothing was accepted.
  if (error.kind === "invalid-response" || (error.status !== undefined && error.status >= 200 && error.status < 300)) {
    if (accepted === 0) return decision("fail-batch", `HTTP ${error.status ?? "2xx"} with accepted_count 0`);
    return { ...decision("mark-unknown", "unreadable success response"), mayHaveSent: true };
  }
  // Other 4xx and a 2xx body that is not what the API documents: sending the same request again cannot help.
  return decision("fail-batch", error.status ? `HTTP ${error.status}` : error.kind);
}

/**
 * HTTP 5xx or code 1000. v1/messages has no idempotency key, and its error bodies say how many numbers
 * were accepted: only `accepted_count: 0` proves a retry cannot duplicate. A 5xx without that count (a
 * gateway's HTML page, a body cut short) may come after the provider sent the batch. Legacy v1/send
 * retries under its request_id, and v1/custom-messages documents no counts, so for them a 5xx is retried.
 */
function classifyServerFailure(error: ProviderError, options: ClassifyOptions): ErrorDecision {
  const what = error.code !== undefined ? `code ${error.code}` : `HTTP ${error.status}`;
  if (error.counts?.acceptedCount === 0 || error.api !== "messages") return decision("retry", what);
  return ambiguousUnless(false, options, `${what} without accepted_count`, what);
}

/** A failure after which the provider may have sent the request: retried only where resending is safe. */
function ambiguousUnless(
  provablyNotSent: boolean,
  options: ClassifyOptions,
  ambiguousReason: string,
  retryReason: string,
): ErrorDecision {
  if (provablyNotSent) return decision("retry", retryReason);
  if (!options.resendIsSafe) return { ...decision("mark-unknown", ambiguousReason), mayHaveSent: true };
  return { ...decision("retry", retryReason), mayHaveSent: true };
}

function decision(action: ErrorAction, reason: string): ErrorDecision {
  return { action, rateLimited: false, mayHaveSent: false, reason };
}
