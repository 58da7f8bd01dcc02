import { isEmailTarget, normaliseEmail } from "../recipients/email.ts";
import { normalisePhone } from "../recipients/phone.ts";
import { findCampaignMessage, findSingleRecipientOutcome } from "../store/campaign-report-repository.ts";
import { createCampaignWithRecipients } from "../store/campaign-repository.ts";
import { RetryBatchError, sendBatch, type SendBatchDeps, type SendBatchResult } from "./send-batch.ts";
import { UserError } from "../model/errors.ts";

const SEND_ONE_ATTEMPTS = 3;

export class RecipientInputError extends UserError {
  override name = "RecipientInputError";
  constructor(message: string) {
    super("invalid_recipient", message, { field: "to" });
  }
}

export interface SendOneInput {
  to: string;
  templateId: string;
  params: Record<string, string>;
  defaultRegion?: string;
}

export interface SendOneResult {
  campaignId: string;
  to: string;
  state: string;
  messageId: string | null;
  sendChannel: string | null;
  failureCode: number | null;
  failureMessage: string | null;
  statusReason: string | null;
}

/**
 * One OTP or notification through v1/custom-messages, recorded like any campaign (one recipient, one batch)
 * so it has the same audit trail, and sent inline by the same claim → send → record path as the workers.
 * Inline is the priority lane: no queue, so never behind bulk batches; with `deps.gate` it takes the next
 * slot of the shared rates and waits for it (bulk books at most BULK_MAX_WAIT_MS ahead).
 */
export async function sendOneMessage(deps: SendBatchDeps, input: SendOneInput): Promise<SendOneResult> {
  deps = { ...deps, lane: "priority" };
  const to = normaliseTarget(input.to, input.defaultRegion);
  const ingested = await createCampaignWithRecipients(
    deps.db,
    {
      name: `send-one ${new Date().toISOString()}`,
      templateId: input.templateId,
      templateParams: input.params,
      provider: "custom",
      onUnknown: "at_most_once",
      sendOptions: {},
      source: "send-one",
    },
    [[{ rowNumber: 1, raw: input.to, phone: to, rejectReason: null, params: null }]],
    { batchSize: 1, groupByParams: false, initialStatus: "running" },
  );
  const batchId = ingested.batchIds[0];
  if (batchId === undefined) {
    // The number is suppressed (or an opted-out contact): recorded as a reject, never sent.
    return {
      campaignId: ingested.campaignId,
      to,
      state: "suppressed",
      messageId: null,
      sendChannel: null,
      failureCode: null,
      failureMessage: "on the suppression list or an opted-out contact",
      statusReason: null,
    };
  }
  let result: SendBatchResult;
  for (let attempt = 1; ; attempt++) {
    try {
      result = await sendBatch(deps, batchId, { isLastAttempt: attempt >= SEND_ONE_ATTEMPTS });
      break;
    } catch (error) {
      // Only what the error policy marked retryable is tried again; anything else is a real failure.
      if (!(error instanceof RetryBatchError)) throw error;
      await new Promise((resolve) => setTimeout(resolve, error.delayMs ?? 500 * attempt));
    }
  }
  const outcome = await findSingleRecipientOutcome(deps.db, ingested.campaignId);
  return {
    campaignId: ingested.campaignId,
    to,
    state: outcome.state,
    messageId: outcome.messageId,
    sendChannel: outcome.sendChannel,
    failureCode: outcome.failureCode,
    failureMessage: outcome.failureMessage,
    statusReason: result.outcome === "skipped" ? outcome.statusReason : null,
  };
}

/**
 * A campaign's message to one number before (or while) it goes out: its template and fixed params, with
 * `params` for the per-recipient variables, through send-one (recorded as its own one-recipient campaign).
 */
export async function sendCampaignTest(
  deps: SendBatchDeps,
  campaignId: string,
  input: { to: string; params: Record<string, string>; defaultRegion?: string },
): Promise<SendOneResult> {
  const message = await findCampaignMessage(deps.db, campaignId);
  return sendOneMessage(deps, {
    to: input.to,
    templateId: message.templateId,
    params: { ...message.templateParams, ...input.params },
    defaultRegion: input.defaultRegion,
  });
}

/** The custom API takes a phone number or an e-mail address, judged as a custom campaign's list judges them. */
export function normaliseTarget(raw: string, defaultRegion?: string): string {
  const trimmed = raw.trim();
  if (isEmailTarget(trimmed)) {
    const email = normaliseEmail(trimmed);
    if (!email.ok) throw new RecipientInputError(`"${raw}" is not a valid e-mail address`);
    return email.address;
  }
  const phone = normalisePhone(trimmed, defaultRegion);
  if (!phone.ok) throw new RecipientInputError(`"${raw}" is not a valid phone number: ${phone.reason}`);
  return phone.e164;
}
