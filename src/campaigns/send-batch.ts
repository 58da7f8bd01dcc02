import type { Logger } from "../config/logger.ts";
import { classifyProviderError } from "../engagelab/error-policy.ts";
import { ProviderError, ProviderRequestError } from "../engagelab/errors.ts";
import type { BatchSendResult, SmsProvider } from "../engagelab/provider.ts";
import {
  BatchNotClaimedError,
  claimBatch,
  settleBatchOfCancelledCampaign,
  loadPendingRecipients,
  markBatchRetrying,
  pauseCampaignForBatch,
  releaseClaim,
  recordRecipientProgress,
  reclaimStaleBatch,
  recordBatchOutcome,
  touchClaim,
  type BatchOutcome,
  type CampaignProgress,
  type ClaimedBatch,
} from "../store/batch-repository.ts";
import type { Database } from "../store/database.ts";
import { isDatabaseUnavailable, retryWhileDatabaseUnavailable } from "../store/database-health.ts";
import type { ProviderApi } from "../model/states.ts";

/** Legacy `request_id` de-duplicates for one hour; stay clear of the edge. */
export const LEGACY_REQUEST_ID_WINDOW_MS = 55 * 60 * 1000;

export interface SendBatchDeps {
  db: Database;
  providers: Record<ProviderApi, SmsProvider>;
  log: Logger;
  /** The provider request timeout: a batch in `sending` for longer than this has no request in flight. */
  providerTimeoutMs: number;
}

export interface AttemptInfo {
  /** No further retry will be scheduled after this attempt. */
  isLastAttempt: boolean;
}

/** The batch should be tried again later; `rateLimited` asks every worker to back off together. */
export class RetryBatchError extends Error {
  override name = "RetryBatchError";
  constructor(
    message: string,
    readonly delayMs: number | undefined,
    readonly rateLimited: boolean,
  ) {
    super(message);
  }
}

/** Another worker holds the batch right now; look again after `delayMs` without spending an attempt. */
export class BatchBusyError extends Error {
  override name = "BatchBusyError";
  constructor(readonly delayMs: number) {
    super(`batch is being sent by another worker; checking again in ${delayMs} ms`);
  }
}

export type SendBatchResult =
  | { outcome: "recorded"; state: BatchOutcome["state"]; progress: CampaignProgress }
  | { outcome: "skipped"; reason: string };

/**
 * Sends one batch at most once: claim (committed before the HTTP call), send, record in one transaction.
 * Every path either records an outcome, schedules a retry, or leaves the batch untouched for its owner.
 */
export async function sendBatch(deps: SendBatchDeps, batchId: string, attempt: AttemptInfo): Promise<SendBatchResult> {
  const claim = await claimBatch(deps.db.pool, batchId);
  let batch: ClaimedBatch;
  if (claim.claimed) {
    batch = claim.batch;
  } else if (claim.state === "sending" && claim.campaignStatus === "running" && claim.claimedAt) {
    const resolved = await resolveUnknownOutcome(deps, batchId, claim.claimedAt);
    if (resolved.kind !== "resend") return resolved.result;
    batch = resolved.batch;
  } else {
    if (claim.campaignStatus === "cancelled") {
      // Left open by a send that failed after the cancel, or by a worker that died: settle it now.
      const stale = claim.state === "sending" && claim.claimedAt && Date.now() - claim.claimedAt.getTime() >= deps.providerTimeoutMs + 5_000;
      if (claim.state !== "sending" || stale) await settleBatchOfCancelledCampaign(deps.db.pool, batchId, claim.claimedAt ?? undefined);
    }
    return { outcome: "skipped", reason: `batch is ${claim.state ?? "missing"}, campaign is ${claim.campaignStatus ?? "missing"}` };
  }

  const log = deps.log.child({ campaignId: batch.campaignId, batchId: batch.id, sequence: batch.sequence });
  if (batch.provider === "legacy" && batch.lastAttemptAmbiguous && Date.now() - batch.firstClaimedAt.getTime() >= LEGACY_REQUEST_ID_WINDOW_MS) {
    // A retry long after an unanswered attempt (e.g. the campaign sat paused): the provider no longer
    // de-duplicates this request_id, so sending again could text the batch twice.
    const message = "the last attempt went unanswered and the provider's one-hour request_id window has passed; not re-sent";
    log.warn(message);
    return record(deps, { ...baseOutcome(batch), state: "unknown", errorMessage: message, rest: { state: "unknown", message } });
  }
  let recipients: Awaited<ReturnType<typeof loadPendingRecipients>>;
  try {
    recipients = await loadPendingRecipients(deps.db.pool, batch.campaignId, batch.sequence);
  } catch (error) {
    // Nothing has been sent yet: give the claim back so the batch is simply retried once Postgres is up.
    if (isDatabaseUnavailable(error)) {
      await retryWhileDatabaseUnavailable(deps.db.pool, () => releaseClaim(deps.db.pool, batch.id, batch.claimedAt), RECORD_DEADLINE_MS);
    }
    throw error;
  }
  if (recipients.length === 0) {
    return record(deps, { ...baseOutcome(batch), state: "sent", rest: { state: "accepted" } });
  }

  let result: BatchSendResult;
  const started = performance.now();
  // A long batch (1000 single-recipient requests) must not look stale to another worker while it runs.
  const heartbeat = setInterval(() => {
    touchClaim(deps.db.pool, batch.id).catch(() => {});
  }, Math.max(1_000, Math.round(deps.providerTimeoutMs / 2)));
  try {
    result = await deps.providers[batch.provider].sendBatch({
      campaignId: batch.campaignId,
      batchId: batch.id,
      sequence: batch.sequence,
      campaignName: batch.campaignName,
      templateId: batch.templateId,
      params: batch.params,
      recipients,
      idempotencyKey: batch.idempotencyKey,
      scheduleTime: typeof batch.sendOptions.scheduleTime === "number" ? batch.sendOptions.scheduleTime : undefined,
      sendOptions: batch.sendOptions,
    });
  } catch (error) {
    clearInterval(heartbeat);
    return handleSendError(deps, log, batch, error, attempt);
  }
  clearInterval(heartbeat);
  log.debug({ ms: Math.round(performance.now() - started), size: recipients.length, planId: result.planId }, "batch sent");

  if (result.unsettled) {
    // Some recipients were settled before an error stopped the batch: keep them. Requests that may have
    // arrived unanswered follow the unknown-outcome rule one by one; the recipients never tried are handled
    // by the error's own rule, and resending those can duplicate nothing.
    const atMostOnce = batch.onUnknown !== "resend";
    const unknown = atMostOnce ? (result.ambiguous ?? []) : [];
    await retryWhileDatabaseUnavailable(
      deps.db.pool,
      () =>
        recordRecipientProgress(
          deps.db.pool,
          { batchId: batch.id, campaignId: batch.campaignId, sequence: batch.sequence },
          result.accepted,
          result.failed,
          unknown,
        ),
      RECORD_DEADLINE_MS,
    );
    return handleSendError(deps, log, batch, result.unsettled.error, attempt, { untriedOnly: true });
  }

  const shortfall = result.totalCount - result.acceptedCount;
  return record(deps, {
    ...baseOutcome(batch),
    state: result.failed.length > 0 || shortfall > 0 ? "partial" : "sent",
    planId: result.planId,
    messageId: result.messageId,
    taskId: result.taskId,
    totalCount: result.totalCount,
    acceptedCount: result.acceptedCount,
    errorMessage: shortfall > 0 && result.failed.length === 0 ? `provider accepted ${result.acceptedCount} of ${result.totalCount} numbers` : null,
    accepted: result.accepted,
    failed: result.failed,
    rest: { state: "accepted" },
  });
}

async function handleSendError(
  deps: SendBatchDeps,
  log: Logger,
  batch: ClaimedBatch,
  error: unknown,
  attempt: AttemptInfo,
  options: { untriedOnly?: boolean } = {},
): Promise<SendBatchResult> {
  const resendIsSafe = options.untriedOnly === true || batch.provider === "legacy" || batch.onUnknown === "resend";
  const decision = classifyProviderError(error, { resendIsSafe });
  const code = error instanceof ProviderError ? (error.code ?? null) : null;
  const message =
    error instanceof ProviderError
      ? (error.providerMessage ?? error.message)
      : error instanceof ProviderRequestError
        ? error.message
        : "unexpected error while sending";
  if (!(error instanceof ProviderError) && !(error instanceof ProviderRequestError)) {
    log.error({ err: error }, "unexpected error while sending batch");
  }

  if (decision.action === "pause-campaign") {
    const reason = `provider refused the account (${code !== null ? `code ${code}` : decision.reason}): ${message}`;
    await retryWhileDatabaseUnavailable(
      deps.db.pool,
      () => pauseCampaignForBatch(deps.db.pool, { batchId: batch.id, campaignId: batch.campaignId }, code, reason),
      RECORD_DEADLINE_MS,
    );
    log.error({ code }, "campaign paused: the provider refused the credentials; fix them, then `smsblast resume`");
    await settleBatchOfCancelledCampaign(deps.db.pool, batch.id);
    return { outcome: "skipped", reason };
  }

  if (decision.action === "retry" && (!attempt.isLastAttempt || decision.rateLimited)) {
    const mayHaveArrived = error instanceof ProviderError && error.requestMayHaveArrived && !options.untriedOnly;
    await retryWhileDatabaseUnavailable(
      deps.db.pool,
      () => markBatchRetrying(deps.db.pool, batch.id, code, message, mayHaveArrived || batch.lastAttemptAmbiguous),
      RECORD_DEADLINE_MS,
    );
    if (await settleBatchOfCancelledCampaign(deps.db.pool, batch.id)) return { outcome: "skipped", reason: "campaign cancelled" };
    log.warn({ reason: decision.reason, code, retryAfterMs: decision.retryAfterMs }, "batch will be retried");
    throw new RetryBatchError(message, decision.retryAfterMs, decision.rateLimited);
  }
  // Out of attempts after a request that may have arrived: the recipients may have the message. `failed`
  // would invite a re-send by hand, so they are `unknown`.
  const ambiguous = error instanceof ProviderError && error.requestMayHaveArrived && !options.untriedOnly;
  if (decision.action === "mark-unknown" || (decision.action === "retry" && ambiguous)) {
    log.error({ reason: decision.reason }, "batch outcome unknown; not re-sending");
    return record(deps, { ...baseOutcome(batch), state: "unknown", errorCode: code, errorMessage: message, rest: { state: "unknown", code, message } });
  }
  const exhausted = decision.action === "retry" ? ` (gave up after ${batch.attempts} attempts)` : "";
  log.warn({ reason: decision.reason, code }, `batch failed${exhausted}`);
  return record(deps, {
    ...baseOutcome(batch),
    state: "failed",
    errorCode: code,
    errorMessage: message + exhausted,
    rest: { state: "failed", code, message },
  });
}

type UnknownResolution = { kind: "resend"; batch: ClaimedBatch } | { kind: "done"; result: SendBatchResult };

/**
 * A batch found in `sending`: either another worker is sending it right now (recent claim), or a worker
 * died mid-request and nobody knows whether the provider sent it.
 */
async function resolveUnknownOutcome(deps: SendBatchDeps, batchId: string, claimedAt: Date): Promise<UnknownResolution> {
  const staleAfterMs = deps.providerTimeoutMs + 5_000;
  const age = Date.now() - claimedAt.getTime();
  if (age < staleAfterMs) throw new BatchBusyError(staleAfterMs - age);

  const batch = await reclaimStaleBatch(deps.db.pool, batchId, claimedAt);
  if (!batch) return { kind: "done", result: { outcome: "skipped", reason: "another worker took over the stale batch" } };
  const log = deps.log.child({ campaignId: batch.campaignId, batchId: batch.id });

  // Legacy v1/send answers a repeated request_id with the first result for one hour: resending is safe.
  const legacyWindowOpen = batch.provider === "legacy" && Date.now() - batch.firstClaimedAt.getTime() < LEGACY_REQUEST_ID_WINDOW_MS;
  if (legacyWindowOpen || batch.onUnknown === "resend") {
    log.warn({ provider: batch.provider, onUnknown: batch.onUnknown }, "batch outcome unknown after a crash; re-sending");
    return { kind: "resend", batch };
  }
  log.warn({ provider: batch.provider }, "batch outcome unknown after a crash; marking recipients unknown (at most once)");
  const message = "worker stopped during the provider request; the provider may or may not have sent it";
  return {
    kind: "done",
    result: await record(deps, { ...baseOutcome(batch), state: "unknown", errorMessage: message, rest: { state: "unknown", message } }),
  };
}

function baseOutcome(batch: ClaimedBatch): Pick<BatchOutcome, "batchId" | "campaignId" | "sequence" | "accepted" | "failed"> {
  return { batchId: batch.id, campaignId: batch.campaignId, sequence: batch.sequence, accepted: [], failed: [] };
}

/** How long a worker holds on to a provider result while Postgres is down, rather than lose it. */
const RECORD_DEADLINE_MS = 60_000;

async function record(deps: SendBatchDeps, outcome: BatchOutcome): Promise<SendBatchResult> {
  try {
    // The provider has answered: losing this write would turn a known outcome into an unknown one.
    const progress = await retryWhileDatabaseUnavailable(deps.db.pool, () => recordBatchOutcome(deps.db.pool, outcome), RECORD_DEADLINE_MS);
    return { outcome: "recorded", state: outcome.state, progress };
  } catch (error) {
    if (error instanceof BatchNotClaimedError) return { outcome: "skipped", reason: error.message };
    throw error;
  }
}
