import type { Logger } from "../config/logger.ts";
import type { BatchSendResult, SmsProvider } from "../engagelab/provider.ts";
import { DEFAULT_SCHEDULE_MARGIN_SECONDS } from "../config/config.ts";
import { staleClaimAfterMs, type ProviderApi } from "../model/states.ts";
import {
  applySendDecision,
  claimBatch,
  loadPendingRecipients,
  reclaimStaleBatch,
  releaseClaim,
  settleBatchOfCancelledCampaign,
  touchClaim,
  type BatchOutcome,
  type CampaignProgress,
  type ClaimedBatch,
  type SendDecision,
} from "../store/batch-repository.ts";
import type { Database } from "../store/database.ts";
import { isDatabaseUnavailable, retryWhileDatabaseUnavailable } from "../store/database-health.ts";
import {
  decideAfterSend,
  decideBeforeSend,
  decideOnClaim,
  decideScheduleTime,
  decideStaleBatch,
  nothingLeftToSend,
  type AttemptInfo,
} from "./batch-decision.ts";

export interface SendBatchDeps {
  db: Database;
  providers: Record<ProviderApi, SmsProvider>;
  log: Logger;
  /** The provider request timeout: a batch in `sending` for longer than this has no request in flight. */
  providerTimeoutMs: number;
  /** The clock the schedule_time rule reads (default Date.now); tests move it instead of waiting minutes. */
  clock?: () => number;
  /** PROVIDER_SCHEDULE_MARGIN_S (default 60): seconds beyond the provider's 3 minutes. */
  scheduleMarginSeconds?: number;
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

/** A provider-scheduled batch too close to its time to hand over: run it again at `dueAtMs` (by `clock`). */
export class BatchNotDueError extends Error {
  override name = "BatchNotDueError";
  constructor(readonly dueAtMs: number) {
    super(`batch is due at ${new Date(dueAtMs).toISOString()}; held until then`);
  }
}

/** Another worker holds the batch right now; look again after `delayMs` without spending an attempt. */
export class BatchBusyError extends Error {
  override name = "BatchBusyError";
  constructor(readonly delayMs: number) {
    super(`batch is being sent by another worker; checking again in ${delayMs} ms`);
  }
}

/**
 * The job names a batch this database does not have: it belongs to another deployment sharing the Redis (or
 * to a database since reset). It must never be completed as if done: the batch's own deployment still has to
 * send it.
 */
export class BatchNotInDatabaseError extends Error {
  override name = "BatchNotInDatabaseError";
  constructor(readonly batchId: string) {
    super(`batch ${batchId} is not in this deployment's database`);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type SendBatchResult =
  | { outcome: "recorded"; state: BatchOutcome["state"]; progress: CampaignProgress }
  | { outcome: "skipped"; reason: string };

/** How long a claim is given back for while Postgres is down before anything was sent. */
const RELEASE_DEADLINE_MS = 60_000;

/**
 * Sends one batch at most once: claim (committed before the HTTP call), send, record in one transaction.
 * Every path either records an outcome, schedules a retry, or leaves the batch untouched for its owner.
 * The rules are the pure functions of batch-decision.ts; this function only does the I/O between them.
 */
export async function sendBatch(deps: SendBatchDeps, batchId: string, attempt: AttemptInfo): Promise<SendBatchResult> {
  if (!UUID.test(batchId)) throw new BatchNotInDatabaseError(batchId);
  const claim = await claimBatch(deps.db.pool, batchId);
  if (!claim.claimed && claim.state === null) throw new BatchNotInDatabaseError(batchId);
  const onClaim = decideOnClaim(claim, Date.now(), staleClaimAfterMs(deps.providerTimeoutMs));
  let batch: ClaimedBatch;
  switch (onClaim.kind) {
    case "busy":
      throw new BatchBusyError(onClaim.delayMs);
    case "skip":
      if (onClaim.settleCancelled)
        await settleBatchOfCancelledCampaign(deps.db.pool, batchId, onClaim.settleCancelled.staleClaimedAt);
      return { outcome: "skipped", reason: onClaim.reason };
    case "take-over": {
      const taken = await reclaimStaleBatch(deps.db.pool, batchId, onClaim.staleClaimedAt);
      if (!taken) return { outcome: "skipped", reason: "another worker took over the stale batch" };
      const stale = decideStaleBatch(taken, Date.now());
      const log = batchLog(deps, taken);
      if (stale.kind === "record") {
        log.warn(
          { provider: taken.provider },
          "batch outcome unknown after a crash; marking recipients unknown (at most once)",
        );
        return apply(deps, log, taken, { kind: "record", outcome: stale.outcome });
      }
      log.warn(
        { provider: taken.provider, onUnknown: taken.onUnknown },
        "batch outcome unknown after a crash; re-sending",
      );
      batch = taken;
      break;
    }
    case "send":
      if (!claim.claimed) throw new Error("unreachable: a send decision without a claim");
      batch = claim.batch;
  }

  const log = batchLog(deps, batch);
  const beforeSend = decideBeforeSend(batch, Date.now());
  if (beforeSend.kind === "record") {
    log.warn(beforeSend.outcome.errorMessage);
    return apply(deps, log, batch, { kind: "record", outcome: beforeSend.outcome });
  }

  let recipients: Awaited<ReturnType<typeof loadPendingRecipients>>;
  try {
    // A number suppressed since the launch (a STOP reply) is skipped, unless an earlier attempt may have sent it.
    recipients = await loadPendingRecipients(deps.db.pool, batch.campaignId, batch.sequence, {
      skipSuppressed: batch.attempts === 1,
    });
  } catch (error) {
    // Nothing has been sent yet: give the claim back so the batch is simply retried once Postgres is up.
    if (isDatabaseUnavailable(error)) {
      await retryWhileDatabaseUnavailable(
        deps.db.pool,
        () => releaseClaim(deps.db.pool, batch.id, batch.claimedAt),
        RELEASE_DEADLINE_MS,
      );
    }
    throw error;
  }
  if (recipients.length === 0) return apply(deps, log, batch, nothingLeftToSend(batch));

  // As late as possible before the request leaves: is there still time to hand schedule_time over?
  const schedule = decideScheduleTime(
    batch.sendOptions.scheduleTime,
    (deps.clock ?? Date.now)(),
    deps.scheduleMarginSeconds ?? DEFAULT_SCHEDULE_MARGIN_SECONDS,
  );
  if (schedule.kind === "wait") {
    // Nothing was sent: the batch goes back to `queued`, its attempt not counted, and waits for its time.
    await releaseClaim(deps.db.pool, batch.id, batch.claimedAt, "queued");
    log.info({ dueAt: new Date(schedule.untilMs).toISOString() }, "too close to its schedule_time; held until then");
    throw new BatchNotDueError(schedule.untilMs);
  }

  const started = performance.now();
  // A long batch (1000 single-recipient requests) must not look stale to another worker while it runs.
  const heartbeat = setInterval(
    () => void touchClaim(deps.db.pool, batch.id).catch(() => undefined),
    Math.max(1_000, Math.round(deps.providerTimeoutMs / 2)),
  );
  let sent: { result: BatchSendResult } | { error: unknown };
  try {
    sent = {
      result: await deps.providers[batch.provider].sendBatch({
        campaignId: batch.campaignId,
        batchId: batch.id,
        sequence: batch.sequence,
        campaignName: batch.campaignName,
        templateId: batch.templateId,
        params: batch.params,
        recipients,
        idempotencyKey: batch.idempotencyKey,
        scheduleTime: schedule.scheduleTime,
        sendOptions: batch.sendOptions,
      }),
    };
    log.debug(
      { ms: Math.round(performance.now() - started), size: recipients.length, planId: sent.result.planId },
      "batch sent",
    );
  } catch (error) {
    sent = { error };
  } finally {
    clearInterval(heartbeat);
  }
  return apply(deps, log, batch, decideAfterSend(batch, sent, attempt));
}

function batchLog(deps: SendBatchDeps, batch: ClaimedBatch): Logger {
  return deps.log.child({ campaignId: batch.campaignId, batchId: batch.id, sequence: batch.sequence });
}

/** Applies a decision in one repository call, logs it, and turns a retry into the error the queue acts on. */
async function apply(
  deps: SendBatchDeps,
  log: Logger,
  batch: ClaimedBatch,
  decision: SendDecision,
): Promise<SendBatchResult> {
  if (decision.unexpected) log.error({ decision: decision.kind }, "unexpected error while sending batch");
  const applied = await applySendDecision(
    deps.db.pool,
    { batchId: batch.id, campaignId: batch.campaignId, sequence: batch.sequence },
    decision,
  );
  if (applied.kind === "not-claimed") return { outcome: "skipped", reason: applied.reason };
  switch (decision.kind) {
    case "pause":
      log.error({ code: decision.code, reason: decision.reason }, "campaign paused; `smsblast resume` continues it");
      return { outcome: "skipped", reason: decision.reason };
    case "retry":
      if (applied.kind === "retrying" && applied.cancelled) return { outcome: "skipped", reason: "campaign cancelled" };
      log.warn(
        { reason: decision.reason, code: decision.code, retryAfterMs: decision.retryAfterMs },
        "batch will be retried",
      );
      throw new RetryBatchError(decision.message, decision.retryAfterMs, decision.rateLimited);
    case "record": {
      const outcome = decision.outcome;
      if (outcome.state === "unknown" && outcome.errorCode !== undefined)
        log.error({ code: outcome.errorCode }, "batch outcome unknown; not re-sending");
      else if (outcome.state === "partial" && outcome.rest.state === "unknown")
        log.warn(
          { code: outcome.errorCode, planId: outcome.planId, acceptedCount: outcome.acceptedCount },
          `batch partly accepted: ${outcome.errorMessage ?? ""}; its recipients are unknown, not re-sent`,
        );
      else if (outcome.state === "failed")
        log.warn({ code: outcome.errorCode }, `batch failed: ${outcome.errorMessage ?? ""}`);
      if (applied.kind !== "recorded") throw new Error(`unreachable: a record decision applied as ${applied.kind}`);
      return { outcome: "recorded", state: outcome.state, progress: applied.progress };
    }
  }
}
