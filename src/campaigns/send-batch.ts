import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../config/logger.ts";
import type { BatchSendResult, SmsProvider } from "../engagelab/provider.ts";
import { DEFAULT_SCHEDULE_MARGIN_SECONDS } from "../config/config.ts";
import { staleClaimAfterMs, type ProviderApi } from "../model/states.ts";
import {
  applySendDecision,
  campaignOfBatch,
  claimBatch,
  pauseRunningCampaign,
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
import { platformOfApi, type Platform } from "../config/platforms.ts";
import type { GateDecision, GateRequest, Lane } from "../queue/rate-gate.ts";
import {
  decideAfterSend,
  decideBeforeClaim,
  decideBeforeSend,
  describeFailure,
  providerHealthOf,
  type OutageStreak,
  decideOnClaim,
  decideScheduleTime,
  decideStaleBatch,
  nothingLeftToSend,
  type AttemptInfo,
} from "./batch-decision.ts";

/**
 * Consecutive outage-like failures per platform, shared by every worker process of the deployment (a Redis
 * counter under the queue prefix): any answer from the provider resets it.
 */
export interface OutageTracker {
  read(provider: ProviderApi): Promise<OutageStreak>;
  recordDown(provider: ProviderApi, error: string): Promise<void>;
  recordUp(provider: ProviderApi): Promise<void>;
}

/** The shared provider rates (src/queue/rate-gate.ts): global, per platform, per campaign, across lanes. */
export interface SendRateGate {
  acquire(request: GateRequest): Promise<GateDecision>;
  /** Whether requests to the platform are paced one by one (a `custom` batch paces each of its requests). */
  pacesRequests(platform: Platform): boolean;
  /** Waits for the slot of one request (bulk books at most BULK_MAX_WAIT_MS ahead, priority at once). */
  hold(platform: Platform, lane: Lane): Promise<number>;
  /** A 429: nothing goes to the platform, from any lane, for `ms`. */
  penalize(platform: Platform, ms: number): Promise<void>;
}

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
  /** Without it, every batch is claimed whatever happened to the ones before (in-process tests). */
  outage?: OutageTracker;
  /** Without it, nothing is paced (in-process tests, a CLI send-one with no limit set). */
  gate?: SendRateGate;
  /** `bulk` (default): a batch over a limit is handed back to the queue; `priority`: it waits for its slot. */
  lane?: Lane;
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

/**
 * Over a rate limit before anything was claimed: the job comes back after `delayMs` (no attempt spent, the batch
 * untouched in Postgres, so it can never be sent twice for it).
 */
export class BatchRateLimitedError extends Error {
  override name = "BatchRateLimitedError";
  constructor(readonly delayMs: number) {
    super(`over a send rate limit; trying again in ${delayMs} ms`);
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
  const found = deps.outage || deps.gate ? await campaignOfBatch(deps.db.pool, batchId) : null;
  const paused = found ? await pauseIfProviderDown(deps, found) : undefined;
  if (paused) return paused;
  // Before the claim: a batch over a limit goes back to the queue with nothing in Postgres changed. Its slot is
  // waited for only right before the request leaves.
  const slotAt = found ? await passRateGate(deps, batchId, found) : undefined;
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
    const skipSuppressed = batch.attempts === 1 && batch.suppressedSinceLaunch;
    recipients =
      batch.pendingNumbers !== undefined && !skipSuppressed
        ? batch.pendingNumbers.map((phone) => ({ phone, params: null }))
        : await loadPendingRecipients(deps.db.pool, batch.campaignId, batch.sequence, { skipSuppressed });
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

  if (slotAt !== undefined && slotAt > Date.now()) await sleep(slotAt - Date.now());
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
        beforeEachRequest: batch.provider === "custom" ? requestPacer(deps, batch) : undefined,
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
  await recordHealth(deps, log, batch.provider, sent);
  return apply(deps, log, batch, decideAfterSend(batch, sent, attempt));
}

/**
 * Before the claim: OUTAGE_STREAK_LIMIT failures in a row on the batch's platform pause its campaign (kind
 * `outage`, so the prober resumes it), and the batch stays queued untouched. A counter that cannot be read
 * never stops a send.
 */
async function pauseIfProviderDown(
  deps: SendBatchDeps,
  found: { campaignId: string; provider: ProviderApi },
): Promise<SendBatchResult | undefined> {
  if (!deps.outage) return undefined;
  let streak: OutageStreak;
  try {
    streak = await deps.outage.read(found.provider);
  } catch (error) {
    deps.log.warn({ err: error }, "could not read the provider outage counter; sending anyway");
    return undefined;
  }
  const gate = decideBeforeClaim(streak, found.provider);
  if (gate.kind === "claim") return undefined;
  if (await pauseRunningCampaign(deps.db.pool, found.campaignId, gate.reason, "outage")) {
    deps.log.error(
      { campaignId: found.campaignId, provider: found.provider, failures: streak.failures, reason: gate.reason },
      "campaign paused: the provider keeps failing; it resumes by itself once a probe succeeds",
    );
  }
  return { outcome: "skipped", reason: gate.reason };
}

type BatchOfCampaign = NonNullable<Awaited<ReturnType<typeof campaignOfBatch>>>;

/**
 * The shared rates, before the claim. A bulk request (messages, legacy) is one request for the whole batch; a
 * `custom` batch is one request per recipient, paced one by one while it sends (requestPacer), so here it only
 * books its campaign's slot and checks that the platform is not held back. A Redis that cannot answer never
 * stops a send: the limits are protection, the claim is what keeps a batch from going twice. Returns when the
 * slot comes (this process's Date.now()): sendBatch waits for it right before the request leaves, so the
 * provider sees the gate's spacing and not the claim's and the recipients' load's round trips on top of it.
 */
async function passRateGate(deps: SendBatchDeps, batchId: string, found: BatchOfCampaign): Promise<number | undefined> {
  if (!deps.gate) return undefined;
  const lane = deps.lane ?? "bulk";
  const platform = platformOfApi(found.provider);
  // A one-off custom send waits once, for its request's own slot (requestPacer), not first for bulk's bookings.
  if (lane === "priority" && found.provider === "custom" && deps.gate.pacesRequests(platform)) return undefined;
  let decision: GateDecision;
  try {
    decision = await deps.gate.acquire({
      platform,
      requests: found.provider === "custom" ? 0 : 1,
      campaign:
        found.ratePerSecond === undefined
          ? undefined
          : { id: found.campaignId, batchId, messagesPerSecond: found.ratePerSecond, messages: found.size },
      lane,
    });
  } catch (error) {
    deps.log.warn({ err: error }, "could not read the send rate limits; sending anyway");
    return undefined;
  }
  if (decision.kind === "later") throw new BatchRateLimitedError(decision.delayMs);
  // When the slot comes, by this process's clock (the gate answered in Redis's).
  return Date.now() + decision.waitMs;
}

/**
 * What a `custom` batch waits for before each of its requests: the campaign's own rate, spaced in this process
 * (its slot for the whole batch is booked before the claim), and the shared limits, paced in Redis.
 */
function requestPacer(deps: SendBatchDeps, batch: ClaimedBatch): (() => Promise<void>) | undefined {
  const platform = platformOfApi(batch.provider);
  const shared = deps.gate?.pacesRequests(platform) ? deps.gate : undefined;
  const rate = batch.sendOptions.ratePerSecond;
  const lane = deps.lane ?? "bulk";
  if (!shared && rate === undefined) return undefined;
  let next = 0;
  return async () => {
    if (rate !== undefined) {
      const now = Date.now();
      const at = Math.max(now, next);
      next = at + 1000 / rate;
      if (at > now) await new Promise((resolve) => setTimeout(resolve, at - now));
    }
    if (shared) await shared.hold(platform, lane).catch(() => 0);
  };
}

async function recordHealth(
  deps: SendBatchDeps,
  log: Logger,
  provider: ProviderApi,
  sent: { result: BatchSendResult } | { error: unknown },
): Promise<void> {
  if (!deps.outage) return;
  const health = providerHealthOf(sent);
  try {
    if (health === "up") await deps.outage.recordUp(provider);
    else if (health === "down") {
      const error = "error" in sent ? sent.error : sent.result.unsettled?.error;
      await deps.outage.recordDown(provider, describeFailure(error));
    }
  } catch (error) {
    log.warn({ err: error }, "could not update the provider outage counter");
  }
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
      // A 429 holds the platform for every lane and process, send-one included, not only this worker.
      if (decision.rateLimited && deps.gate)
        await deps.gate
          .penalize(platformOfApi(batch.provider), decision.retryAfterMs ?? 1_000)
          .catch((error: unknown) => log.warn({ err: error }, "could not hold the platform back after a 429"));
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
