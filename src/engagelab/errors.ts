import { describePlatform, platformOfApi } from "../config/platforms.ts";
import { UserError } from "../model/errors.ts";
import type { ProviderApi } from "../model/states.ts";

/** Which provider API a request went to; also the campaign's `provider` setting. */
export type ProviderApiName = ProviderApi | "templates";

export type ProviderFailureKind =
  | "network" // connection refused/reset, DNS, socket closed before a response
  | "timeout" // no complete response within PROVIDER_TIMEOUT_MS; the request may have been processed
  | "http" // the provider answered with an error status or a non-zero `code`
  | "invalid-response"; // the body is not the JSON the API documents

/**
 * What a v1/messages body says about the request as a whole (docs/engagelab-apis.md#messages-errors): error
 * bodies carry these too, and an error may come with `accepted_count > 0`.
 */
export interface PlanCounts {
  planId?: string;
  totalCount?: number;
  acceptedCount?: number;
}

/**
 * Every provider failure is one typed error carrying what the error policy needs: HTTP status, provider
 * code, provider message and Retry-After. The message never contains credentials or the Authorization header.
 */
export class ProviderError extends Error {
  override name = "ProviderError";
  readonly api: ProviderApiName;
  readonly kind: ProviderFailureKind;
  readonly status: number | undefined;
  readonly code: number | undefined;
  readonly providerMessage: string | undefined;
  readonly retryAfterMs: number | undefined;
  /** The parsed error body, for shapes that carry more (legacy partial success has failed_items). */
  readonly body: unknown;
  /** plan_id / total_count / accepted_count when the error body has any of them (v1/messages). */
  readonly counts: PlanCounts | undefined;
  /**
   * A transport failure after the request may have reached the provider (timeout, connection reset):
   * the provider may have sent it. False when no connection was ever made.
   */
  readonly requestMayHaveArrived: boolean;

  constructor(init: {
    api: ProviderApiName;
    kind: ProviderFailureKind;
    status?: number;
    code?: number;
    providerMessage?: string;
    retryAfterMs?: number;
    body?: unknown;
    counts?: PlanCounts;
    detail?: string;
    requestMayHaveArrived?: boolean;
  }) {
    const parts = [`EngageLab ${init.api} request failed (${init.kind})`];
    if (init.status !== undefined) parts.push(`HTTP ${init.status}`);
    if (init.code !== undefined) parts.push(`code ${init.code}`);
    if (init.providerMessage) parts.push(init.providerMessage);
    if (init.detail) parts.push(init.detail);
    super(parts.join(": "));
    this.api = init.api;
    this.kind = init.kind;
    this.status = init.status;
    this.code = init.code;
    this.providerMessage = init.providerMessage;
    this.retryAfterMs = init.retryAfterMs;
    this.body = init.body;
    this.counts = init.counts;
    this.requestMayHaveArrived = init.requestMayHaveArrived ?? false;
  }
}

/**
 * Where the credentials were refused, for a paused campaign's reason (" on the current SMS platform (v1/messages;
 * key pair …)"): the platform and the key pair to check, since each platform has its own
 * (docs/engagelab-apis.md#platforms-and-credentials). Never the credentials.
 */
export function refusingPlatform(error: unknown): string {
  return error instanceof ProviderError ? ` on ${describePlatform(platformOfApi(error.api))}` : "";
}

/** A request that was refused before it was sent (e.g. custom_args over 1 KB, schedule_time out of window). */
export class ProviderRequestError extends UserError {
  override name = "ProviderRequestError";
  declare readonly field: string;
  constructor(field: string, message: string) {
    super("invalid_request", `${field}: ${message}`, { field });
  }
}

/**
 * A provider failure that reached a front door through a use case (a template query refused, the API
 * unreachable): shown as one line with the provider's code, not as a stack trace.
 */
export class ProviderUnavailableError extends UserError {
  override name = "ProviderUnavailableError";
  constructor(readonly providerError: ProviderError) {
    const refused = providerError.status === 401 || providerError.status === 403;
    super(
      "provider_error",
      refused
        ? `${providerError.message} (credentials of ${describePlatform(platformOfApi(providerError.api))})`
        : providerError.message,
      { kind: "unavailable" },
    );
  }
}
