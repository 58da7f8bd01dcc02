import type { Logger } from "../config/logger.ts";
import { validateLegacyOptions, type LegacySendOptions } from "../engagelab/legacy-send-api.ts";
import { assertScheduleTimeInWindow } from "../engagelab/messages-api.ts";
import { ProviderRequestError } from "../engagelab/errors.ts";
import { readCsvRecipients } from "../recipients/csv-source.ts";
import { createCampaignWithRecipients, type IngestedCampaign } from "../store/campaign-repository.ts";
import type { Database } from "../store/database.ts";
import type { ProviderApi, UnknownOutcomePolicy } from "../store/generated/enums.ts";

export interface CsvCampaignInput {
  file: string;
  name: string;
  templateId: string;
  params: Record<string, string>;
  phoneColumn: string;
  provider: ProviderApi;
  onUnknown: UnknownOutcomePolicy;
  defaultRegion?: string;
  batchSize: number;
  /** Provider-specific options: legacy from/msgType/labelId/customArgs, messages scheduleTime (Unix s). */
  sendOptions?: Record<string, unknown>;
  onProgress?: (rowsRead: number) => void;
}

export interface LaunchDeps {
  db: Database;
  log: Logger;
  /** Hands the planned batches to the queue (jobId = batch id, so repeating it is harmless). */
  enqueue: (campaignId: string, batchIds: readonly string[]) => Promise<void>;
}

export interface LaunchedCampaign extends IngestedCampaign {
  enqueued: boolean;
}

/**
 * CSV → campaign: stream and judge every row, store recipients and the batch plan in one transaction,
 * then enqueue. If enqueueing fails the campaign is still complete in Postgres and `smsblast reconcile`
 * (or any worker's start-up reconcile) queues it again.
 */
export async function launchCsvCampaign(deps: LaunchDeps, input: CsvCampaignInput): Promise<LaunchedCampaign> {
  const sendOptions = input.sendOptions ?? {};
  validateSendOptions(input.provider, input.templateId, sendOptions);
  const rows = readCsvRecipients(input.file, { phoneColumn: input.phoneColumn, defaultRegion: input.defaultRegion });
  const ingested = await createCampaignWithRecipients(
    deps.db,
    {
      name: input.name,
      templateId: input.templateId,
      templateParams: input.params,
      provider: input.provider,
      onUnknown: input.onUnknown,
      sendOptions,
      source: input.file,
    },
    rows,
    { batchSize: input.batchSize, groupByParams: input.provider !== "custom", initialStatus: "running", onProgress: input.onProgress },
  );
  const log = deps.log.child({ campaignId: ingested.campaignId });
  log.info(
    { recipients: ingested.recipientCount, rejected: ingested.rejectedCount, duplicates: ingested.duplicateCount, batches: ingested.batchIds.length },
    "campaign stored",
  );
  try {
    await deps.enqueue(ingested.campaignId, ingested.batchIds);
    return { ...ingested, enqueued: true };
  } catch (error) {
    log.error({ err: error }, "campaign stored but not queued; run `smsblast reconcile` once Redis is reachable");
    return { ...ingested, enqueued: false };
  }
}

/** Refuses, before anything is stored, options the chosen API would refuse for every batch. */
export function validateSendOptions(provider: ProviderApi, templateId: string, sendOptions: Record<string, unknown>): void {
  if (provider === "legacy") validateLegacyOptions(templateId, sendOptions as LegacySendOptions);
  if (sendOptions.scheduleTime !== undefined) {
    if (provider !== "messages") {
      throw new ProviderRequestError("schedule_time", "provider-side scheduling exists only on the messages API (--provider messages)");
    }
    assertScheduleTimeInWindow(sendOptions.scheduleTime as number);
  }
}
