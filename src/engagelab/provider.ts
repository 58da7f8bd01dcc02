import type { SendOptions } from "../model/send-options.ts";
import type { ProviderApi } from "../model/states.ts";

/** One request's worth of recipients sharing one set of template params (at most 1000 for bulk APIs). */
export interface BatchSendRequest {
  campaignId: string;
  batchId: string;
  sequence: number;
  campaignName: string;
  templateId: string;
  /** Template params shared by the whole request (bulk APIs take one set per request). */
  params: Record<string, string>;
  /** Targets in file order; `params` are per-recipient values (used by the single-recipient API). */
  recipients: BatchRecipient[];
  /** Stable across retries of the same batch: legacy `request_id`. */
  idempotencyKey: string;
  /** Unix seconds; v1/messages `schedule_time`, sent as given (decideScheduleTime has judged it). */
  scheduleTime?: number;
  sendOptions: SendOptions;
  /** Single-recipient APIs: awaited before each request leaves (the campaign's rate, the shared limits). */
  beforeEachRequest?: () => Promise<void>;
}

export interface BatchRecipient {
  phone: string;
  params: Record<string, string> | null;
}

export interface AcceptedRecipient {
  phone: string;
  smsId?: string;
  messageId?: string;
  sendChannel?: string;
}

export interface FailedRecipient {
  phone: string;
  code?: number;
  message: string;
}

/** What the provider said about one request. */
export interface BatchSendResult {
  planId?: string;
  messageId?: string;
  taskId?: string;
  totalCount: number;
  acceptedCount: number;
  /** Recipients known accepted (all of them, when the answer accounts for every number). */
  accepted: AcceptedRecipient[];
  /** Recipients the provider named as refused, each with its own reason. */
  failed: FailedRecipient[];
  /**
   * How many of the request's numbers the answer leaves unattributed: neither in `accepted` nor in `failed`
   * (v1/messages with accepted_count < total_count says how many, not which). The batch rules make them
   * `unknown` when anything was accepted, `failed` when nothing was. 0 or absent: every number accounted for.
   */
  unaccountedFor?: number;
  /** Single-recipient APIs: requests that may have reached the provider but got no answer (timeout, reset). */
  ambiguous?: FailedRecipient[];
  /**
   * Single-recipient APIs settle recipients one by one; when some could not be settled (a retryable or
   * account-wide error), this carries that error. Settled recipients are recorded and never re-sent.
   */
  unsettled?: { error: unknown; count: number };
}

/** The seam between the send worker and one EngageLab API. */
export interface SmsProvider {
  readonly name: ProviderApi;
  sendBatch(request: BatchSendRequest): Promise<BatchSendResult>;
}

/** Both bulk APIs take 1 to 1000 numbers per request. */
export const MAX_NUMBERS_PER_REQUEST = 1000;

/** The batch's numbers for a bulk request; a planner bug (empty or oversized batch) fails loudly here. */
export function bulkTargets(request: BatchSendRequest, api: string): string[] {
  const phones = request.recipients.map((r) => r.phone);
  if (phones.length === 0 || phones.length > MAX_NUMBERS_PER_REQUEST) {
    throw new RangeError(
      `batch ${request.batchId} has ${phones.length} numbers; ${api} takes 1 to ${MAX_NUMBERS_PER_REQUEST}`,
    );
  }
  return phones;
}
