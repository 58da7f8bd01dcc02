import { ProviderError } from "./errors.ts";
import type { EngageLabHttpClient } from "./http-client.ts";
import { isRecord, readId, readInt } from "./json-body.ts";
import type { BatchSendRequest, BatchSendResult, SmsProvider } from "./provider.ts";

export const MAX_NUMBERS_PER_REQUEST = 1000;

/** POST /v1/messages: the current bulk send API (seed 000). */
export class MessagesApiProvider implements SmsProvider {
  readonly name = "messages" as const;

  constructor(
    private readonly http: EngageLabHttpClient,
    private readonly baseUrl: string,
  ) {}

  async sendBatch(request: BatchSendRequest): Promise<BatchSendResult> {
    if (request.phones.length === 0 || request.phones.length > MAX_NUMBERS_PER_REQUEST) {
      throw new RangeError(`batch ${request.batchId} has ${request.phones.length} numbers; v1/messages takes 1 to 1000`);
    }
    const payload: Record<string, unknown> = {
      to: request.phones,
      template: { id: request.templateId, params: request.params },
      plan_name: `${request.campaignName} #${request.sequence}`.slice(0, 128),
      custom_args: { campaign_id: request.campaignId, batch_id: request.batchId },
    };
    if (request.scheduleTime !== undefined) payload.schedule_time = request.scheduleTime;

    const { status, body } = await this.http.call("messages", "POST", new URL("/v1/messages", this.baseUrl).href, payload);
    const planId = isRecord(body) ? readId(body.plan_id) : undefined;
    const totalCount = isRecord(body) ? readInt(body.total_count) : undefined;
    const acceptedCount = isRecord(body) ? readInt(body.accepted_count) : undefined;
    if (!isRecord(body) || planId === undefined || totalCount === undefined || acceptedCount === undefined) {
      throw new ProviderError({
        api: "messages",
        kind: "invalid-response",
        status,
        detail: "success body lacks plan_id, total_count or accepted_count",
      });
    }
    const messageId = readId(body.message_id);
    const taskId = isRecord(body.schedule_info) ? readId(body.schedule_info.task_id) : undefined;
    // v1/messages reports how many numbers it accepted but not which; a shortfall is recorded on the batch.
    return {
      planId,
      messageId,
      taskId,
      totalCount,
      acceptedCount,
      accepted: request.phones.map((phone) => ({ phone, messageId: request.phones.length === 1 ? messageId : undefined })),
      failed: [],
    };
  }
}
