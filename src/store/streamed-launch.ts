import type pg from "pg";
import { completeCampaignIfDone } from "./batch-repository.ts";
import {
  anySuppressed,
  applySuppressions,
  cancelCampaignRecord,
  chunkIterator,
  combineFingerprint,
  fingerprintParts,
  insertBatches,
  insertCampaignRow,
  insertEvenBatches,
  insertStagedRejects,
  lockAndFindEarlierLaunch,
  moveSuppressedRecipients,
  rejectReasonCounts,
  settleHeldRows,
  streamRecipients,
  type EarlierLaunch,
  type IngestCheck,
  type IngestedCampaign,
  type IngestOptions,
  type IngestRowChunks,
  type NewCampaign,
} from "./campaign-repository.ts";
import { withConnection, withTransaction, type Database } from "./database.ts";
import { lockAgainstErasure, prepareForgottenCheck } from "./forgotten-number-repository.ts";
import {
  InterruptedWhileReadingError,
  StoppedWhileReadingError,
  StreamedLaunchStoppedError,
  UserError,
  type StoppedReading,
} from "../model/errors.ts";
import { InvalidTransitionError } from "../model/campaign-state.ts";

/**
 * `smsblast send --stream`: what a launch that sends while it reads needs besides a planned launch's options.
 * Only lists without per-recipient params, sent now (no dry run, no start time).
 */
export interface StreamedLaunchOptions extends Pick<
  IngestOptions,
  "batchSize" | "onProgress" | "progressEvery" | "seenFilterLog2Bits"
> {
  /** Hands each committed step's batches to the queue; a failure is logged and left to the reconciler. */
  enqueue: (campaignId: string, batchIds: readonly string[]) => Promise<void>;
  /**
   * Said when something after a commit failed without undoing it: queueing a step's batches (they are stored,
   * and `smsblast reconcile` queues them), or the completion check once the list is read (the next batch
   * recorded, or the next reconcile, does it).
   */
  onAfterCommitError?: (what: "enqueue" | "completion", error: unknown) => void;
  /** Recipients per step: one commit, and its batches queued (default 50,000). */
  recipientsPerStep?: number;
  /** A step ends after this long even short of recipientsPerStep (default 1 s): slow input still goes out. */
  stepMaxMs?: number;
  /** The repeat guard: before the first batch by the file's bytes, once read by the recipients too. */
  repeatGuard?: { windowMs: number; fileFingerprint: string };
  /** In the first transaction, before any batch exists: an error it throws stores nothing. */
  beforeFirstBatch?: (check: { earlierLaunch?: EarlierLaunch }) => Promise<void>;
  /** Once the whole list is read, before the last step commits: an error it throws cancels what is not sent. */
  beforeLastStep?: (check: IngestCheck) => Promise<void>;
  /** Ctrl-C: the open step is rolled back and the launch stops as if the file broke there (cancelled). */
  signal?: AbortSignal;
}

/** What a streamed launch adds to a planned one's result. */
export interface StreamedCampaign extends IngestedCampaign {
  /** Steps committed, each one transaction whose batches were queued at once. */
  steps: number;
  /** ms from the launch call to the first step's commit: when sending could start. */
  firstStepMs: number | null;
  /** False when queueing some step's batches failed: they are stored; `smsblast reconcile` queues them. */
  enqueued: boolean;
}

const DEFAULT_RECIPIENTS_PER_STEP = 50_000;
const DEFAULT_STEP_MAX_MS = 1_000;

/**
 * A launch that sends while it reads its list: recipients stream into `recipients` as in the planned launch
 * (streamRecipients), but every ~50,000 of them (or every second) a step commits the complete batches so far,
 * with their suppressions applied, and queues them. What the planned launch does once for the whole list is
 * done per step or at the end:
 * - suppressions: per step, for that step's batches (a forget waits for a step, not the whole list);
 * - de-duplication: the SeenFilter sends a number's first row at once; rows it may have seen wait in a session
 *   temp table and are settled after the last row (a first occurrence goes out in the last batches);
 * - the repeat guard: before the first batch by the file's bytes (repeatGuard.fileFingerprint), and by the
 *   recipients' fingerprint once the list is read (beforeLastStep decides; its error cancels the rest);
 * - completion: `reading_heartbeat_at` is set until the last step, and blocks it.
 * What it gives up is all-or-nothing: a launch that fails part-way (a broken file, a lost connection) has sent
 * some batches. It is then cancelled: nothing more is sent, and what was sent is recorded, as for any cancel.
 * A launch that fails before its first batch stores nothing. A producer that dies part-way leaves a stale
 * heartbeat, and the reconciler cancels the campaign (cancelStaleReadings).
 */
export async function launchWhileReading(
  db: Database,
  campaign: NewCampaign,
  rows: IngestRowChunks,
  options: StreamedLaunchOptions,
): Promise<StreamedCampaign> {
  const started = performance.now();
  const { campaignId, suppressions } = await openCampaign(db, campaign, options);
  const progress = {
    batchIds: [] as string[],
    recipients: 0,
    suppressed: 0,
    steps: 0,
    firstStepMs: null as number | null,
  };
  let enqueued = true;
  let queueing = Promise.resolve();
  let result: Awaited<ReturnType<typeof readAndStep>>;
  // In order, without holding up the next step; a failure leaves the batches to the reconciler.
  const enqueue = (batchIds: string[]) => {
    if (batchIds.length === 0) return;
    queueing = queueing.then(() =>
      options.enqueue(campaignId, batchIds).catch((error: unknown) => {
        enqueued = false;
        options.onAfterCommitError?.("enqueue", error);
      }),
    );
  };
  try {
    result = await withConnection(
      db.pool,
      async (client) => {
        try {
          return await readAndStep(client);
        } catch (error) {
          // While the session (and its temp table) is still there: the committed steps' rejects are kept.
          await keepRejectsOfCommittedSteps(client, campaignId).catch(() => {});
          throw error;
        }
      },
      { discardTemp: true },
    );
    await queueing;
  } catch (error) {
    await queueing;
    const stopped = await stopReading(db, campaignId, describe(error), { deleteIfNothingQueued: true }).catch(
      () => null,
    );
    // Nothing was queued, so nothing was stored: the same outcome, and error, as a planned launch's.
    if (stopped?.deleted) throw error;
    throw new StreamedLaunchStoppedError(
      error,
      campaignId,
      stopped ?? { deleted: false, batches: progress.batchIds.length, recipients: progress.recipients, unknown: true },
    );
  }
  // Every batch may have finished before the list was closed: then nobody else completes the campaign. The
  // launch itself is complete by now: an error here must not look like a failed launch.
  await completeCampaignIfDone(db.pool, campaignId).catch((error: unknown) =>
    options.onAfterCommitError?.("completion", error),
  );
  return {
    campaignId,
    ...result,
    batchIds: progress.batchIds,
    steps: progress.steps,
    firstStepMs: progress.firstStepMs,
    enqueued,
  };

  async function readAndStep(client: pg.PoolClient) {
    await client.query(
      `CREATE TEMP TABLE ingest_rows (row_number int NOT NULL, phone text, raw text, reject_reason text, params jsonb)`,
    );
    let fromSequence = 0;
    let stepStarted = performance.now();
    const perStep = options.recipientsPerStep ?? DEFAULT_RECIPIENTS_PER_STEP;
    const maxMs = options.stepMaxMs ?? DEFAULT_STEP_MAX_MS;
    /** Commits the open step: its batches up to `toSequence`, the counters and the heartbeat; then queues them. */
    const commitStep = async (planned: number, toSequence: number, totalRows: number) => {
      const step = await stepBatches(client, db, campaignId, campaign, {
        from: fromSequence,
        to: toSequence,
        batchSize: options.batchSize,
        planned,
        suppressions,
      });
      await stillOpen(
        client,
        campaignId,
        `UPDATE campaigns SET recipient_count = recipient_count + $2, batch_count = batch_count + $3,
           suppressed_count = suppressed_count + $4, total_rows = $5, reading_heartbeat_at = now(), updated_at = now()
         WHERE id = $1 AND status IN ('running', 'paused') RETURNING id`,
        [campaignId, step.recipients, step.batchIds.length, step.suppressed, totalRows],
      );
      await client.query("COMMIT");
      progress.batchIds.push(...step.batchIds);
      progress.recipients += step.recipients;
      progress.suppressed += step.suppressed;
      progress.steps++;
      if (step.batchIds.length > 0) progress.firstStepMs ??= Math.round(performance.now() - started);
      enqueue(step.batchIds);
      fromSequence = toSequence;
    };
    await beginStep(client);
    const stageStarted = performance.now();
    const staged = await streamRecipients(client, campaignId, chunkIterator(rows), options, {
      full: (planned) =>
        planned - fromSequence * options.batchSize >= perStep ||
        performance.now() - stepStarted >= maxMs ||
        options.signal?.aborted === true,
      end: async (planned, totalRows) => {
        if (options.signal?.aborted) throw new InterruptedWhileReadingError(totalRows);
        // Complete batches only: the one still filling goes with a later step.
        await commitStep(planned, Math.floor(planned / options.batchSize), totalRows);
        await beginStep(client);
        stepStarted = performance.now();
      },
    });
    // The list is read: everything streamed goes out now, the last batch short, before the held rows are
    // settled (0.5-0.8 s at 1M, while the workers send).
    const streamedSequences = Math.ceil(staged.streamed!.planned / options.batchSize);
    await commitStep(staged.streamed!.planned, streamedSequences, staged.totalRows);
    const planStarted = performance.now();
    await client.query("BEGIN");
    const last = await lastStep(client, db, campaignId, campaign, staged, streamedSequences, options, progress);
    await client.query("COMMIT");
    progress.steps++;
    progress.batchIds.push(...last.batchIds);
    enqueue(last.batchIds);
    return {
      ...last,
      timings: {
        stageMs: Math.round(planStarted - stageStarted),
        planMs: Math.round(performance.now() - planStarted),
      },
    };
  }
}

/**
 * A stopped launch's open step is rolled back; the rows its committed steps rejected (invalid, suppressed)
 * wait in the temp table until the last step, so they are written now, as for a finished launch. The rows
 * held as possible repeats are not settled: none of them was sent.
 */
async function keepRejectsOfCommittedSteps(client: pg.PoolClient, campaignId: string): Promise<void> {
  await client.query("ROLLBACK");
  const rejected = await insertStagedRejects(client, campaignId);
  await client.query(`UPDATE campaigns SET rejected_count = $2, updated_at = now() WHERE id = $1`, [
    campaignId,
    rejected,
  ]);
}

/** The campaign, `running` from the start, with its heartbeat; the repeat guard by the file, before any batch. */
async function openCampaign(
  db: Database,
  campaign: NewCampaign,
  options: StreamedLaunchOptions,
): Promise<{ campaignId: string; suppressions: boolean }> {
  return withTransaction(db.pool, async (client) => {
    const campaignId = await insertCampaignRow(client, campaign, { reading: true });
    const guard = options.repeatGuard;
    const earlierLaunch = guard
      ? await lockAndFindEarlierLaunch(client, { fileFingerprint: guard.fileFingerprint }, guard.windowMs)
      : undefined;
    await options.beforeFirstBatch?.({ earlierLaunch });
    if (guard) {
      await client.query(`INSERT INTO launch_guards (campaign_id, file_fingerprint) VALUES ($1, $2)`, [
        campaignId,
        guard.fileFingerprint,
      ]);
    }
    return { campaignId, suppressions: await anySuppressed(client) };
  });
}

/**
 * A step commits without waiting for its WAL to reach the disk (synchronous_commit off): it sends nothing
 * itself, and a worker's claim of one of its batches is a synchronous commit, which flushes the WAL up to
 * there, the step's included, before that batch can go out. A crash loses at most steps nobody claimed yet,
 * whose queue jobs then find no batch; the campaign's heartbeat goes stale and the reconciler cancels it.
 * Per-step flushes cost 0.3 s of a 1M launch. The last step (lastStep) commits synchronously.
 */
async function beginStep(client: pg.PoolClient): Promise<void> {
  await client.query("BEGIN");
  await client.query("SET LOCAL synchronous_commit = off");
}

/**
 * A step's last statement updates the campaign's row, and only while it is running or paused: a cancel (a
 * person's, or the reconciler's) that committed first makes the step roll back, with what it would have added.
 * The row is not held while the step reads: a stalled producer must not hold up a cancel or a pause.
 */
async function stillOpen(client: pg.PoolClient, campaignId: string, sql: string, params: unknown[]): Promise<void> {
  const { rowCount } = await client.query(sql, params);
  if (rowCount) return;
  const { rows } = await client.query<{ status: string }>(`SELECT status FROM campaigns WHERE id = $1`, [campaignId]);
  throw new StoppedWhileReadingError(campaignId, rows[0]?.status);
}

/** A step's batches [from, to): suppressed recipients taken out, then one batch per sequence still holding any. */
async function stepBatches(
  client: pg.PoolClient,
  db: Database,
  campaignId: string,
  campaign: NewCampaign,
  /** `planned`: recipients streamed so far, numbered 0 … planned − 1 into batches of `batchSize`. */
  step: { from: number; to: number; batchSize: number; planned: number; suppressions: boolean },
): Promise<{ batchIds: string[]; recipients: number; suppressed: number }> {
  const { from, to } = step;
  if (to <= from) return { batchIds: [], recipients: 0, suppressed: 0 };
  await lockAgainstErasure(client);
  const forgotten = await prepareForgottenCheck(client, db.phoneHasher, "this launch");
  const suppressed = await moveSuppressedRecipients(client, campaignId, forgotten, { from, to }, step.suppressions);
  // Nothing taken out: the sizes follow from the numbering; else they are counted from the recipients.
  const batches =
    suppressed === 0
      ? await insertEvenBatches(client, campaignId, campaign.templateParams, step.planned, step.batchSize, "queued", {
          from,
          to,
        })
      : await insertBatches(client, campaignId, campaign.templateParams, false, "queued", { from, to });
  return { ...batches, suppressed };
}

/**
 * The list is read and every streamed recipient batched: the held rows are settled (suppressed, duplicates
 * rejected, a filter's false positive appended as a recipient in batches from `fromSequence` on), the
 * recipients fingerprinted, the counters set from what was stored, and the heartbeat cleared.
 */
async function lastStep(
  client: pg.PoolClient,
  db: Database,
  campaignId: string,
  campaign: NewCampaign,
  staged: Awaited<ReturnType<typeof streamRecipients>>,
  fromSequence: number,
  options: StreamedLaunchOptions,
  progress: { batchIds: string[]; recipients: number; suppressed: number },
) {
  // Settling the held rows hashes them against every recipient so far.
  await client.query(`SET LOCAL work_mem = '256MB'`);
  await lockAgainstErasure(client);
  const forgotten = await prepareForgottenCheck(client, db.phoneHasher, "this launch");
  // The streamed recipients are committed: their part of the fingerprint is summed on a connection of its
  // own while this one settles the held rows (2.5 s of each at 10M, one after the other before).
  const streamedPart = options.repeatGuard
    ? fingerprintParts(db.pool, campaignId, campaign, { from: 0, to: fromSequence })
    : undefined;
  streamedPart?.catch(() => {}); // awaited below; this only keeps an early error from going unhandled
  const heldSuppressed = await applySuppressions(client, forgotten);
  const rejectedCount = await insertStagedRejects(client, campaignId);
  // A held row that is a first occurrence joins the recipients in batches of its own, after the streamed ones.
  const plan = await settleHeldRows(
    client,
    campaignId,
    { planned: fromSequence * options.batchSize, held: staged.streamed!.held },
    0,
    options.batchSize,
  );
  const rest = await insertBatches(client, campaignId, campaign.templateParams, false, "queued", {
    from: fromSequence,
    to: null,
  });
  const counts = {
    totalRows: staged.totalRows,
    recipientCount: progress.recipients + rest.recipients,
    rejectedCount,
    duplicateCount: plan.duplicateCount ?? 0,
    suppressedCount: progress.suppressed + heldSuppressed,
  };
  const fingerprint = streamedPart
    ? combineFingerprint(campaign, [
        await streamedPart,
        await fingerprintParts(client, campaignId, campaign, { from: fromSequence, to: 2 ** 31 - 1 }),
      ])
    : undefined;
  const earlierLaunch =
    fingerprint && options.repeatGuard
      ? await lockAndFindEarlierLaunch(client, { fingerprint }, options.repeatGuard.windowMs)
      : undefined;
  await options.beforeLastStep?.({ counts, earlierLaunch, rejectReasons: () => rejectReasonCounts(client) });
  if (fingerprint) {
    await client.query(`UPDATE launch_guards SET fingerprint = $2 WHERE campaign_id = $1`, [campaignId, fingerprint]);
  }
  const batchCount = progress.batchIds.length + rest.batchIds.length;
  await stillOpen(
    client,
    campaignId,
    `UPDATE campaigns SET total_rows = $2, recipient_count = $3, rejected_count = $4, duplicate_count = $5,
       batch_count = $6, suppressed_count = $7, reading_heartbeat_at = NULL, updated_at = now(),
       status = CASE WHEN $6 = 0 THEN 'completed'::"CampaignStatus" ELSE status END,
       finished_at = CASE WHEN $6 = 0 THEN now() END
     WHERE id = $1 AND status IN ('running', 'paused') RETURNING id`,
    [
      campaignId,
      counts.totalRows,
      counts.recipientCount,
      counts.rejectedCount,
      counts.duplicateCount,
      batchCount,
      counts.suppressedCount,
    ],
  );
  return { ...counts, batchIds: rest.batchIds };
}

/**
 * Ends a streamed launch that cannot go on: deleted when none of its batches was queued, otherwise
 * cancelled (unless a person already cancelled it), its recipients that never got a batch deleted, and the
 * heartbeat cleared.
 */
export async function stopReading(
  db: Database,
  campaignId: string,
  reason: string,
  options: { deleteIfNothingQueued: boolean },
): Promise<StoppedReading> {
  if (options.deleteIfNothingQueued) {
    const deleted = await withTransaction(db.pool, async (client) => {
      const { rowCount } = await client.query(
        `DELETE FROM campaigns WHERE id = $1 AND status = 'running' AND batch_count = 0`,
        [campaignId],
      );
      // recipients has no foreign key to campaigns (migration 20261126030000): they go explicitly.
      if (rowCount) await client.query(`DELETE FROM recipients WHERE campaign_id = $1`, [campaignId]);
      return (rowCount ?? 0) > 0;
    });
    if (deleted) return { deleted: true, batches: 0, recipients: 0 };
  }
  // A person, or another process's reconcile, may have cancelled it meanwhile: then there is nothing to do.
  await cancelCampaignRecord(db, campaignId, reason).catch((error: unknown) => {
    if (!(error instanceof InvalidTransitionError)) throw error;
  });
  return withTransaction(db.pool, async (client) => {
    await client.query(
      `DELETE FROM recipients r WHERE r.campaign_id = $1
         AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.campaign_id = r.campaign_id AND b.sequence = r.batch_sequence)`,
      [campaignId],
    );
    const { rows: counts } = await client.query<{ batches: number; recipients: number }>(
      `UPDATE campaigns SET reading_heartbeat_at = NULL, updated_at = now() WHERE id = $1
       RETURNING batch_count AS batches, recipient_count AS recipients`,
      [campaignId],
    );
    return { deleted: false, batches: counts[0]?.batches ?? 0, recipients: counts[0]?.recipients ?? 0 };
  }).then(async (stopped) => {
    // The counters of a cancelled campaign are set once nothing is open; its heartbeat kept them back.
    await completeCampaignIfDone(db.pool, campaignId);
    return stopped;
  });
}

/** The reconciler's side: streamed launches whose producer stopped stepping this long ago are cancelled. */
export async function cancelStaleReadings(db: Database, staleAfterMs: number, campaignId?: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ id: string; heartbeat: Date }>(
    `SELECT id, reading_heartbeat_at AS heartbeat FROM campaigns
     WHERE reading_heartbeat_at < now() - make_interval(secs => $1::double precision / 1000)
       AND ($2::uuid IS NULL OR id = $2::uuid)`,
    [staleAfterMs, campaignId ?? null],
  );
  const cancelled: string[] = [];
  for (const row of rows) {
    // One campaign's trouble must not end the reconcile round for the others.
    await stopReading(
      db,
      row.id,
      `its launch stopped reading the list part-way (no step since ${row.heartbeat.toISOString()}): ` +
        `the rows after the last step were not read and are not sent`,
      { deleteIfNothingQueued: false },
    ).then(
      () => cancelled.push(row.id),
      () => {},
    );
  }
  return cancelled;
}

export const STALE_READING_AFTER_MS = 5 * 60_000;

function describe(error: unknown): string {
  return error instanceof UserError
    ? `the launch stopped part-way: ${error.message}`
    : "the launch stopped part-way on an internal error";
}
