// The batch-send rules as pure functions: (what the claim found | the claimed batch) × (the provider's result
// or error) × (the attempt) → what to record and what to do next. send-batch.ts does the I/O around them;
// the repository applies a decision in one call. test/batch-decision.test.ts holds the table.
import { classifyProviderError } from "../engagelab/error-policy.ts";
import { ProviderError, ProviderRequestError, refusingPlatform } from "../engagelab/errors.ts";
import type { BatchSendResult } from "../engagelab/provider.ts";
import { SCHEDULE_MIN_LEAD_SECONDS } from "../engagelab/messages-api.ts";
import type {
  BatchOutcome,
  ClaimedBatch,
  ClaimResult,
  RecipientProgress,
  SendDecision,
} from "../store/batch-repository.ts";

export type { SendDecision };

export type ScheduleDecision =
  /** Send now; with `scheduleTime`, hand the provider that time. */
  | { kind: "send"; scheduleTime?: number }
  /** Too close to its time to hand it to the provider, too early to send: hold the batch until `untilMs`. */
  | { kind: "wait"; untilMs: number };

/**
 * A provider-scheduled batch (v1/messages `schedule_time`) as its request is about to leave: the provider
 * takes a time "strictly at least 3 minutes" ahead (seed 000). With 3 minutes plus `marginSeconds` left or
 * more, the time goes with the request. With less, sending it with schedule_time risks a refusal, and
 * sending it without would be early: the batch waits until its time, then goes without schedule_time. A
 * batch whose time has passed (after a pause, retries) goes at once.
 */
export function decideScheduleTime(
  scheduleTime: number | undefined,
  nowMs: number,
  marginSeconds: number,
): ScheduleDecision {
  if (scheduleTime === undefined) return { kind: "send" };
  const dueMs = scheduleTime * 1000;
  if (dueMs >= nowMs + (SCHEDULE_MIN_LEAD_SECONDS + marginSeconds) * 1000) return { kind: "send", scheduleTime };
  if (nowMs < dueMs) return { kind: "wait", untilMs: dueMs };
  return { kind: "send" };
}

/** Legacy `request_id` de-duplicates for one hour (docs/engagelab-apis.md#legacy-request); stay clear of the edge. */
export const LEGACY_REQUEST_ID_WINDOW_MS = 55 * 60 * 1000;

export interface AttemptInfo {
  /** No further retry will be scheduled after this attempt. */
  isLastAttempt: boolean;
}

/** The parts of a claimed batch the rules read. */
export type BatchFacts = Pick<
  ClaimedBatch,
  "id" | "campaignId" | "sequence" | "provider" | "onUnknown" | "attempts" | "firstClaimedAt" | "lastAttemptAmbiguous"
>;

export type ClaimDecision =
  | { kind: "send" }
  /** Another worker holds the batch right now: look again later without spending an attempt. */
  | { kind: "busy"; delayMs: number }
  /** A dead worker's claim: take it over (compare-and-set on `claimedAt`), then apply the stale-batch rule. */
  | { kind: "take-over"; staleClaimedAt: Date }
  /** Nothing to send. `settleCancelled` when a cancelled campaign's batch is left open and nobody is on it. */
  | { kind: "skip"; reason: string; settleCancelled?: { staleClaimedAt: Date | undefined } };

/** What to do with a job, given what the claim found. */
export function decideOnClaim(claim: ClaimResult, nowMs: number, staleAfterMs: number): ClaimDecision {
  if (claim.claimed) return { kind: "send" };
  const age = claim.claimedAt ? nowMs - claim.claimedAt.getTime() : undefined;
  if (claim.state === "sending" && claim.campaignStatus === "running" && claim.claimedAt && age !== undefined) {
    return age < staleAfterMs
      ? { kind: "busy", delayMs: staleAfterMs - age }
      : { kind: "take-over", staleClaimedAt: claim.claimedAt };
  }
  const reason = `batch is ${claim.state ?? "missing"}, campaign is ${claim.campaignStatus ?? "missing"}`;
  if (claim.campaignStatus === "cancelled") {
    // Left open by a send that failed after the cancel, or by a worker that died: settle it now. A batch
    // still `sending` with a fresh claim has a live worker, which settles it itself.
    const stale = claim.state === "sending" && age !== undefined && age >= staleAfterMs;
    if (claim.state !== "sending" || stale)
      return { kind: "skip", reason, settleCancelled: { staleClaimedAt: claim.claimedAt ?? undefined } };
  }
  return { kind: "skip", reason };
}

/** A batch taken over from a dead worker: nobody knows whether the provider sent it. */
export function decideStaleBatch(
  batch: BatchFacts,
  nowMs: number,
): { kind: "resend" } | { kind: "record"; outcome: BatchOutcome } {
  // Legacy v1/send answers a repeated request_id with the first result for one hour: resending is safe.
  const legacyWindowOpen =
    batch.provider === "legacy" && nowMs - batch.firstClaimedAt.getTime() < LEGACY_REQUEST_ID_WINDOW_MS;
  if (legacyWindowOpen || batch.onUnknown === "resend") return { kind: "resend" };
  return {
    kind: "record",
    outcome: unknownOutcome(
      batch,
      "worker stopped during the provider request; the provider may or may not have sent it",
    ),
  };
}

/**
 * Before the request: a legacy retry long after an unanswered attempt (e.g. the campaign sat paused) is past
 * the provider's request_id window, so sending again could text the batch twice.
 */
export function decideBeforeSend(
  batch: BatchFacts,
  nowMs: number,
): { kind: "send" } | { kind: "record"; outcome: BatchOutcome } {
  if (
    batch.provider === "legacy" &&
    batch.lastAttemptAmbiguous &&
    nowMs - batch.firstClaimedAt.getTime() >= LEGACY_REQUEST_ID_WINDOW_MS
  ) {
    return {
      kind: "record",
      outcome: unknownOutcome(
        batch,
        "the last attempt went unanswered and the provider's one-hour request_id window has passed; not re-sent",
      ),
    };
  }
  return { kind: "send" };
}

/** A claimed batch with no pending recipient left (all settled by an earlier, interrupted attempt). */
export function nothingLeftToSend(batch: BatchFacts): SendDecision {
  return { kind: "record", outcome: { ...baseOutcome(batch), state: "sent", rest: { state: "accepted" } } };
}

/** After the provider answered (or failed to). */
export function decideAfterSend(
  batch: BatchFacts,
  sent: { result: BatchSendResult } | { error: unknown },
  attempt: AttemptInfo,
): SendDecision {
  if ("error" in sent) return decideOnError(batch, sent.error, attempt, false);
  const result = sent.result;
  if (result.unsettled) {
    // Some recipients were settled before an error stopped the batch: keep them. Requests that may have
    // arrived unanswered follow the unknown-outcome rule one by one; the recipients never tried are handled
    // by the error's own rule, and resending those can duplicate nothing.
    const progress: RecipientProgress = {
      accepted: result.accepted,
      failed: result.failed,
      unknown: batch.onUnknown !== "resend" ? (result.ambiguous ?? []) : [],
    };
    return { ...decideOnError(batch, result.unsettled.error, attempt, true), progress };
  }
  const ids = { planId: result.planId, messageId: result.messageId, taskId: result.taskId };
  const counts = { totalCount: result.totalCount, acceptedCount: result.acceptedCount };
  // Numbers the provider neither accepted nor named as refused: v1/messages says how many it took, not which.
  if (!result.unaccountedFor) {
    return {
      kind: "record",
      outcome: {
        ...baseOutcome(batch),
        state: result.failed.length > 0 ? "partial" : "sent",
        ...ids,
        ...counts,
        errorMessage: null,
        accepted: result.accepted,
        failed: result.failed,
        rest: { state: "accepted" },
      },
    };
  }
  if (result.acceptedCount <= 0) {
    // The provider took none of them: nothing was sent, so `failed` is the truth and a re-send is safe.
    const message = `provider accepted 0 of ${result.totalCount} numbers`;
    return {
      kind: "record",
      outcome: {
        ...baseOutcome(batch),
        state: "failed",
        ...ids,
        ...counts,
        errorMessage: message,
        failed: result.failed,
        rest: { state: "failed", message },
      },
    };
  }
  // Some taken, unknown which (seen: 300 reported, 267 received): every number not proven accepted
  // (by its own id) or refused is `unknown`, never re-sent; delivery reports settle them.
  return { kind: "record", outcome: partialOutcome(batch, { ...ids, ...counts }, null, result) };
}

/**
 * A provider failure → pause the campaign (account refused, or the provider down past the last attempt),
 * retry later, or record the batch unknown, partial or failed.
 * `untriedOnly`: the recipients still pending were never sent (a single-recipient batch stopped part-way).
 */
function decideOnError(batch: BatchFacts, error: unknown, attempt: AttemptInfo, untriedOnly: boolean): SendDecision {
  const resendIsSafe = untriedOnly || batch.provider === "legacy" || batch.onUnknown === "resend";
  const policy = classifyProviderError(error, { resendIsSafe });
  const code = error instanceof ProviderError ? (error.code ?? null) : null;
  const known = error instanceof ProviderError || error instanceof ProviderRequestError;
  const message =
    error instanceof ProviderError
      ? (error.providerMessage ?? error.message)
      : known
        ? (error as Error).message
        : "unexpected error while sending";
  const mayHaveArrived = policy.mayHaveSent && !untriedOnly;

  if (policy.action === "partial-acceptance" && !untriedOnly && error instanceof ProviderError) {
    // Even with --on-unknown resend: the provider said it sent some of them, so a resend is a known duplicate.
    const counts = error.counts ?? {};
    const outcome = partialOutcome(
      batch,
      { planId: counts.planId, totalCount: counts.totalCount, acceptedCount: counts.acceptedCount ?? 0 },
      { code, message },
    );
    return { kind: "record", outcome, unexpected: false };
  }
  if (policy.action === "pause-campaign") {
    return {
      kind: "pause",
      code,
      reason: `provider refused the account (${code !== null ? `code ${code}` : policy.reason})${refusingPlatform(error)}: ${message}`,
      unexpected: !known,
    };
  }
  // A single-recipient batch stopped by a request that reported an acceptance: that request is recorded
  // unknown by the adapter (ambiguous), and the untried rest is simply sent again.
  const retryable = policy.action === "retry" || (policy.action === "partial-acceptance" && untriedOnly);
  if (retryable && (!attempt.isLastAttempt || policy.rateLimited)) {
    return {
      kind: "retry",
      code,
      message,
      ambiguous: mayHaveArrived || batch.lastAttemptAmbiguous,
      retryAfterMs: policy.retryAfterMs,
      rateLimited: policy.rateLimited,
      reason: policy.reason,
      unexpected: !known,
    };
  }
  // Out of attempts after a request that may have arrived: the recipients may have the message. `failed`
  // would invite a re-send by hand, so they are `unknown`.
  if (policy.action === "mark-unknown" || (retryable && mayHaveArrived)) {
    return {
      kind: "record",
      outcome: {
        ...baseOutcome(batch),
        state: "unknown",
        errorCode: code,
        errorMessage: message,
        rest: { state: "unknown", code, message },
      },
      unexpected: !known,
    };
  }
  if (retryable) {
    // Out of attempts on a failure that sent nothing (connection refused, 5xx, code 1000): the provider is
    // down, not the batch bad. Failing it would end the campaign for good; pausing keeps every recipient
    // for `smsblast resume`. The batch goes back to `queued` untouched.
    return {
      kind: "pause",
      code,
      reason: `provider unreachable since ${batch.firstClaimedAt.toISOString()} (${code !== null ? `code ${code}: ` : ""}${message}; ${batch.attempts} attempts); resume once it answers`,
      unexpected: !known,
    };
  }
  // fail-batch, and fail-recipients (3004 with nothing accepted): the batch's recipients fail with the
  // provider's code; the campaign goes on with its other batches.
  return {
    kind: "record",
    outcome: {
      ...baseOutcome(batch),
      state: "failed",
      errorCode: code,
      errorMessage: message,
      rest: { state: "failed", code, message },
    },
    unexpected: !known,
  };
}

/** `partial: N of M accepted`, the reason every recipient of a partly accepted batch is `unknown`. */
export function partialReason(acceptedCount: number, totalCount: number | undefined): string {
  return `partial: ${acceptedCount} of ${totalCount ?? "?"} accepted`;
}

/**
 * The provider took some of the batch without saying which: recipients it named (accepted with their own
 * id, or refused) keep that outcome, every other one is `unknown`, never re-sent.
 */
function partialOutcome(
  batch: BatchFacts,
  plan: { planId?: string; messageId?: string; taskId?: string; totalCount?: number; acceptedCount: number },
  error: { code: number | null; message: string } | null,
  named: Pick<BatchSendResult, "accepted" | "failed"> = { accepted: [], failed: [] },
): BatchOutcome {
  const reason = partialReason(plan.acceptedCount, plan.totalCount);
  return {
    ...baseOutcome(batch),
    state: "partial",
    planId: plan.planId,
    messageId: plan.messageId,
    taskId: plan.taskId,
    totalCount: plan.totalCount,
    acceptedCount: plan.acceptedCount,
    errorCode: error?.code ?? null,
    errorMessage: error ? `${reason}; provider said: ${error.message}` : reason,
    accepted: named.accepted,
    failed: named.failed,
    rest: { state: "unknown", code: error?.code ?? null, message: reason },
  };
}

function unknownOutcome(batch: BatchFacts, message: string): BatchOutcome {
  return { ...baseOutcome(batch), state: "unknown", errorMessage: message, rest: { state: "unknown", message } };
}

function baseOutcome(
  batch: BatchFacts,
): Pick<BatchOutcome, "batchId" | "campaignId" | "sequence" | "accepted" | "failed"> {
  return { batchId: batch.id, campaignId: batch.campaignId, sequence: batch.sequence, accepted: [], failed: [] };
}
