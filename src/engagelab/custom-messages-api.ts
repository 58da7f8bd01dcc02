import pLimit from "p-limit";
import { ProviderError } from "./errors.ts";
import type { EngageLabHttpClient } from "./http-client.ts";
import { isRecord, readId } from "./json-body.ts";
import type { AcceptedRecipient, BatchSendRequest, BatchSendResult, FailedRecipient, SmsProvider } from "./provider.ts";

/** Codes that concern one recipient's request only; anything else stops the rest of the batch. */
const PER_RECIPIENT_CODES = new Set([3002, 3003, 3004, 5001]);

export interface CustomMessageResult {
  messageId: string;
  sendChannel: string;
}

/**
 * POST /v1/custom-messages (seed 002): one recipient (phone or e-mail) per request with its own params.
 * A batch becomes up to 1000 requests, at most `parallelism` in flight (p-limit).
 */
export class CustomMessagesApiProvider implements SmsProvider {
  readonly name = "custom" as const;

  constructor(
    private readonly http: EngageLabHttpClient,
    private readonly baseUrl: string,
    private readonly parallelism: number,
  ) {}

  async sendOne(to: string, templateId: string, params: Record<string, string>): Promise<CustomMessageResult> {
    const { status, body } = await this.http.call("custom", "POST", new URL("/v1/custom-messages", this.baseUrl).href, {
      to,
      template: { id: templateId, params },
    });
    const messageId = isRecord(body) ? readId(body.message_id) : undefined;
    if (!isRecord(body) || messageId === undefined) {
      throw new ProviderError({
        api: "custom",
        kind: "invalid-response",
        status,
        detail: "success body lacks message_id",
      });
    }
    return { messageId, sendChannel: typeof body.send_channel === "string" ? body.send_channel : "unknown" };
  }

  async sendBatch(request: BatchSendRequest): Promise<BatchSendResult> {
    const limit = pLimit(this.parallelism);
    const accepted: AcceptedRecipient[] = [];
    const failed: FailedRecipient[] = [];
    const ambiguous: FailedRecipient[] = [];
    let stopError: unknown;
    await Promise.all(
      request.recipients.map((recipient) =>
        limit(async () => {
          // After an account-wide or transient error, leave the rest pending for the retry or the resume.
          if (stopError !== undefined) return;
          await request.beforeEachRequest?.();
          if (stopError !== undefined) return;
          try {
            const result = await this.sendOne(recipient.phone, request.templateId, {
              ...request.params,
              ...recipient.params,
            });
            accepted.push({ phone: recipient.phone, messageId: result.messageId, sendChannel: result.sendChannel });
          } catch (error) {
            if (error instanceof ProviderError && error.code !== undefined && PER_RECIPIENT_CODES.has(error.code)) {
              failed.push({
                phone: recipient.phone,
                code: error.code,
                message: error.providerMessage ?? error.message,
              });
            } else {
              // Those not yet tried stay pending. Only this recipient's request may have been sent (a timeout, or a body saying it was accepted).
              if (
                error instanceof ProviderError &&
                (error.requestMayHaveArrived || (error.counts?.acceptedCount ?? 0) > 0)
              )
                ambiguous.push({ phone: recipient.phone, message: error.message });
              stopError ??= error;
            }
          }
        }),
      ),
    );
    const unsettled = request.recipients.length - accepted.length - failed.length;
    return {
      totalCount: request.recipients.length,
      acceptedCount: accepted.length,
      accepted,
      failed,
      ambiguous,
      ...(stopError !== undefined ? { unsettled: { error: stopError, count: unsettled } } : {}),
    };
  }
}
