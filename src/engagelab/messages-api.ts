import { ProviderError, ProviderRequestError } from "./errors.ts";
import type { EngageLabHttpClient } from "./http-client.ts";
import { isRecord, readId, readInt } from "./json-body.ts";
import { bulkTargets, type BatchSendRequest, type BatchSendResult, type SmsProvider } from "./provider.ts";

/** Seed 000: schedule_time must be "strictly at least 3 minutes" and at most 30 days after the current time. */
export const SCHEDULE_MIN_LEAD_SECONDS = 3 * 60;
export const SCHEDULE_MAX_LEAD_SECONDS = 30 * 24 * 3600;

/**
 * Checked at launch: schedule_time must be in the future and at most 30 days ahead (seed 000). Less than
 * 3 minutes (plus the margin) ahead is allowed: those batches are held back until their time instead.
 */
export function assertScheduleTimeInWindow(scheduleTime: number, nowMs = Date.now()): void {
  const lead = scheduleTime - Math.floor(nowMs / 1000);
  if (!Number.isInteger(scheduleTime) || scheduleTime <= 0) {
    throw new ProviderRequestError("schedule_time", `must be a positive Unix time in seconds, got ${scheduleTime}`);
  }
  if (lead <= 0) {
    throw new ProviderRequestError(
      "schedule_time",
      `${new Date(scheduleTime * 1000).toISOString()} is in the past; leave out the start time to send now`,
    );
  }
  if (lead > SCHEDULE_MAX_LEAD_SECONDS) {
    throw new ProviderRequestError(
      "schedule_time",
      `${new Date(scheduleTime * 1000).toISOString()} is more than 30 days ahead`,
    );
  }
}

/** POST /v1/messages: the current bulk send API (seed 000). */
export class MessagesApiProvider implements SmsProvider {
  readonly name = "messages" as const;

  constructor(
    private readonly http: EngageLabHttpClient,
    private readonly baseUrl: string,
  ) {}

  async sendBatch(request: BatchSendRequest): Promise<BatchSendResult> {
    const phones = bulkTargets(request, "v1/messages");
    const payload: Record<string, unknown> = {
      to: phones,
      template: { id: request.templateId, params: request.params },
      plan_name: `${request.campaignName} #${request.sequence}`.slice(0, 128),
    };
    // Set only when enough time remains (decideScheduleTime); otherwise the batch waited for its time.
    if (request.scheduleTime !== undefined) payload.schedule_time = request.scheduleTime;
    const customArgs = request.sendOptions.customArgs ?? {};
    payload.custom_args = { ...customArgs, campaign_id: request.campaignId, batch_id: request.batchId };

    const { status, body } = await this.http.call(
      "messages",
      "POST",
      new URL("/v1/messages", this.baseUrl).href,
      payload,
    );
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
    // v1/messages reports how many numbers it accepted but not which: only a full acceptance names them.
    // With a shortfall no number is listed, and the batch rules make every one of them `unknown`.
    const allAccepted = acceptedCount >= phones.length && totalCount >= phones.length;
    return {
      planId,
      messageId,
      taskId,
      totalCount,
      acceptedCount,
      accepted: allAccepted
        ? phones.map((phone) => ({ phone, messageId: phones.length === 1 ? messageId : undefined }))
        : [],
      failed: [],
      unaccountedFor: allAccepted ? 0 : phones.length,
    };
  }
}
