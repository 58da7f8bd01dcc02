import type { EngageLabHttpClient } from "./http-client.ts";

/** One request's worth of recipients sharing one set of template params (at most 1000 for bulk APIs). */
export interface BatchSendRequest {
  campaignId: string;
  batchId: string;
  sequence: number;
  campaignName: string;
  templateId: string;
  params: Record<string, string>;
  phones: string[];
  /** Stable across retries of the same batch: legacy `request_id`. */
  idempotencyKey: string;
  /** Unix seconds; v1/messages `schedule_time`. */
  scheduleTime?: number;
  sendOptions: Record<string, unknown>;
}

export interface AcceptedRecipient {
  phone: string;
  smsId?: string;
  messageId?: string;
}

export interface FailedRecipient {
  phone: string;
  code?: number;
  message: string;
}

export interface BatchSendResult {
  planId?: string;
  messageId?: string;
  taskId?: string;
  totalCount: number;
  acceptedCount: number;
  accepted: AcceptedRecipient[];
  failed: FailedRecipient[];
}

/** The seam between the send worker and one EngageLab API. */
export interface SmsProvider {
  readonly name: "messages" | "legacy" | "custom";
  sendBatch(request: BatchSendRequest): Promise<BatchSendResult>;
}

export interface ProviderContext {
  http: EngageLabHttpClient;
  messagesUrl: string;
  smsUrl: string;
  otpUrl: string;
}
