import { ProviderError, ProviderRequestError } from "./errors.ts";
import type { EngageLabHttpClient } from "./http-client.ts";
import { isRecord, readInt } from "./json-body.ts";
import {
  bulkTargets,
  type BatchSendRequest,
  type BatchSendResult,
  type FailedRecipient,
  type SmsProvider,
} from "./provider.ts";
import type { SendOptions } from "../model/send-options.ts";

export const LEGACY_PARTIAL_SUCCESS = 41031;
const MAX_CUSTOM_ARGS_BYTES = 1024;
const MAX_REQUEST_ID_LENGTH = 128;

/** Options a legacy campaign may set (stored in Campaign.sendOptions). */
export type LegacySendOptions = Pick<SendOptions, "from" | "msgType" | "labelId" | "customArgs">;

/** Checks what the legacy API would refuse, before anything is stored or sent. */
export function validateLegacyOptions(templateId: string, options: LegacySendOptions): void {
  // Sent as a JSON number: at most 15 digits stay exact.
  if (!/^\d{1,15}$/.test(templateId)) {
    throw new ProviderRequestError(
      "template",
      `the legacy v1/send API takes a numeric template id, got "${templateId}"`,
    );
  }
  if (options.from !== undefined && !/^[A-Za-z0-9]{3,11}$/.test(options.from)) {
    throw new ProviderRequestError("from", "sender name must be 3-11 English letters or digits");
  }
  const size = Buffer.byteLength(
    JSON.stringify(
      legacyCustomArgs(options, "00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000"),
    ),
  );
  if (size > MAX_CUSTOM_ARGS_BYTES) {
    throw new ProviderRequestError(
      "custom_args",
      `is ${size} bytes with the campaign and batch ids; the limit is 1 KB`,
    );
  }
}

function legacyCustomArgs(options: LegacySendOptions, campaignId: string, batchId: string): Record<string, unknown> {
  return { ...options.customArgs, campaign_id: campaignId, batch_id: batchId };
}

/**
 * Legacy POST /v1/send (seed 001). `request_id` is the batch's idempotency key: the provider answers a
 * repeat within one hour with the first result, so a retry after a lost response cannot send twice.
 */
export class LegacySendApiProvider implements SmsProvider {
  readonly name = "legacy" as const;

  constructor(
    private readonly http: EngageLabHttpClient,
    private readonly baseUrl: string,
  ) {}

  async sendBatch(request: BatchSendRequest): Promise<BatchSendResult> {
    const phones = bulkTargets(request, "v1/send");
    if (request.idempotencyKey.length > MAX_REQUEST_ID_LENGTH) {
      throw new ProviderRequestError("request_id", `is longer than ${MAX_REQUEST_ID_LENGTH} characters`);
    }
    const options: LegacySendOptions = request.sendOptions;
    const customArgs = legacyCustomArgs(options, request.campaignId, request.batchId);
    if (Buffer.byteLength(JSON.stringify(customArgs)) > MAX_CUSTOM_ARGS_BYTES) {
      throw new ProviderRequestError("custom_args", "is over the 1 KB limit");
    }
    const body: Record<string, unknown> = { template_id: Number(request.templateId), vars: request.params };
    if (options.msgType !== undefined) body.msg_type = options.msgType;
    if (options.labelId !== undefined) body.label_id = options.labelId;
    const payload: Record<string, unknown> = {
      to: phones,
      body,
      custom_args: customArgs,
      request_id: request.idempotencyKey,
    };
    if (options.from) payload.from = options.from;

    const response = await this.http.call("legacy", "POST", new URL("/v1/send", this.baseUrl).href, payload, [
      LEGACY_PARTIAL_SUCCESS,
    ]);
    const reply = response.body;
    if (!isRecord(reply) || !Array.isArray(reply.sms_ids)) {
      throw new ProviderError({
        api: "legacy",
        kind: "invalid-response",
        status: response.status,
        detail: "success body lacks sms_ids",
      });
    }
    // Each sms_id ends with "$" + the number as sent, which is how an id finds its recipient.
    const smsIdByPhone = new Map<string, string>();
    for (const smsId of reply.sms_ids) {
      if (typeof smsId !== "string") continue;
      const dollar = smsId.lastIndexOf("$");
      if (dollar >= 0) smsIdByPhone.set(smsId.slice(dollar + 1), smsId);
    }
    const failed: FailedRecipient[] = [];
    if (Array.isArray(reply.failed_items)) {
      for (const item of reply.failed_items) {
        if (!isRecord(item) || typeof item.phone !== "string") continue;
        failed.push({
          phone: item.phone,
          code: readInt(reply.code),
          message: typeof item.message === "string" ? item.message : "refused by the provider",
        });
      }
    }
    const failedPhones = new Set(failed.map((f) => f.phone));
    const accepted = phones
      .filter((p) => !failedPhones.has(p))
      .map((phone) => ({ phone, smsId: smsIdByPhone.get(phone) }));
    return {
      totalCount: phones.length,
      acceptedCount: readInt(reply.success_count) ?? accepted.length,
      accepted,
      failed,
    };
  }
}
