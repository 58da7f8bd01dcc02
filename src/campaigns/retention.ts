import { formatDuration } from "../model/duration.ts";
import type { Database } from "../store/database.ts";
import {
  deleteDeliveryEventChunk,
  deleteRecipientChunk,
  deleteRejectChunk,
  deleteUploadRecord,
  deleteUploadRowChunk,
  keepCountsForPurge,
  listPurgeCandidates,
  markCampaignPurged,
  PURGED_TABLES,
  tableSizes,
  uploadsOfCampaign,
  vacuumTables,
  withPurgeLock,
  type RecipientKey,
} from "../store/retention-repository.ts";

export interface PurgeOptions {
  /** Campaigns that finished longer ago than this lose their recipient detail. */
  olderThanMs: number;
  /** Rows per delete statement (PURGE_CHUNK_ROWS). */
  chunkRows: number;
  /** List what would be purged; delete nothing. */
  dryRun?: boolean;
  /** Stops between two chunks (Ctrl-C, a shutdown); the next run resumes. */
  signal?: AbortSignal;
  onProgress?: (progress: PurgeProgress) => void;
  now?: Date;
}

export interface PurgeProgress {
  /** 1-based index of the campaign being purged, of `campaigns`. */
  campaign: number;
  campaigns: number;
  /** Rows deleted so far, of about `rowsTotal` (the campaigns' recipients and rejects at launch). */
  rowsDeleted: number;
  rowsTotal: number;
}

export interface PurgeReport {
  olderThan: string;
  cutoff: Date;
  /** Campaigns whose detail was deleted (or, dry run, would be). */
  campaigns: number;
  recipients: number;
  rejects: number;
  deliveryEvents: number;
  uploadRows: number;
  /** Dry run: rows the campaigns had at launch (nothing deleted). */
  rowsAtLaunch: number;
  dryRun: boolean;
  /** Stopped by the signal before the end; running it again finishes. */
  stopped: boolean;
  ms: number;
}

/**
 * Deletes the recipients, rejects, uploads and raw delivery events of every campaign that is completed,
 * failed or cancelled and finished more than `olderThanMs` ago, keeping the campaign row and its counts
 * (taken first, under the campaign's lock). Running, paused and scheduled campaigns are never touched. One
 * purge at a time across processes; null when another one holds the lock.
 */
export async function purgeFinishedCampaigns(db: Database, options: PurgeOptions): Promise<PurgeReport | null> {
  return withPurgeLock(db, () => purgeUnderLock(db, options));
}

async function purgeUnderLock(db: Database, options: PurgeOptions): Promise<PurgeReport> {
  const started = performance.now();
  const cutoff = new Date((options.now ?? new Date()).getTime() - options.olderThanMs);
  const candidates = await listPurgeCandidates(db, cutoff);
  const report: PurgeReport = {
    olderThan: formatDuration(options.olderThanMs),
    cutoff,
    campaigns: 0,
    recipients: 0,
    rejects: 0,
    deliveryEvents: 0,
    uploadRows: 0,
    rowsAtLaunch: candidates.reduce((sum, c) => sum + c.rows, 0),
    dryRun: options.dryRun ?? false,
    stopped: false,
    ms: 0,
  };
  if (options.dryRun) {
    report.campaigns = candidates.length;
    report.ms = Math.round(performance.now() - started);
    return report;
  }
  const progress: PurgeProgress = {
    campaign: 0,
    campaigns: candidates.length,
    rowsDeleted: 0,
    rowsTotal: report.rowsAtLaunch,
  };
  const stopping = () => options.signal?.aborted === true;
  const deleted = (n: number) => {
    progress.rowsDeleted += n;
    options.onProgress?.(progress);
  };
  for (const candidate of candidates) {
    if (stopping()) break;
    progress.campaign += 1;
    options.onProgress?.(progress);
    if (!(await keepCountsForPurge(db, candidate.id, cutoff))) continue;
    const limit = options.chunkRows;

    let after: RecipientKey | null = null;
    for (;;) {
      if (stopping()) break;
      const chunk = await deleteRecipientChunk(db, candidate.id, after, limit);
      report.recipients += chunk.deleted;
      deleted(chunk.deleted);
      if (chunk.last === null) break;
      after = chunk.last;
    }
    let fromRow = 0;
    for (;;) {
      if (stopping()) break;
      const chunk = await deleteRejectChunk(db, candidate.id, fromRow, limit);
      report.rejects += chunk.deleted;
      deleted(chunk.deleted);
      if (chunk.lastRow === null) break;
      fromRow = chunk.lastRow;
    }
    for (;;) {
      if (stopping()) break;
      const n = await deleteDeliveryEventChunk(db, candidate.id, limit);
      report.deliveryEvents += n;
      if (n === 0) break;
    }
    for (const uploadId of await uploadsOfCampaign(db, candidate.id)) {
      let afterRow = 0;
      for (;;) {
        if (stopping()) break;
        const chunk = await deleteUploadRowChunk(db, uploadId, afterRow, limit);
        report.uploadRows += chunk.deleted;
        if (chunk.lastRow === null) break;
        afterRow = chunk.lastRow;
      }
      if (!stopping()) await deleteUploadRecord(db, uploadId);
    }
    if (stopping()) break;
    await markCampaignPurged(db, candidate.id);
    report.campaigns += 1;
  }
  report.stopped = stopping();
  report.ms = Math.round(performance.now() - started);
  return report;
}

/** The tables a purge empties, with their size on disk (heap, indexes, TOAST) and live rows. */
export function purgedTableSizes(db: Database): Promise<Array<{ table: string; bytes: number; rows: number }>> {
  return tableSizes(db, PURGED_TABLES);
}

/**
 * VACUUM (ANALYZE) of those tables: the deleted rows' space becomes reusable by new campaigns at once, instead
 * of when autovacuum next gets to them. The files do not shrink (only VACUUM FULL, which locks, does that).
 */
export function vacuumPurgedTables(db: Database): Promise<void> {
  return vacuumTables(db, PURGED_TABLES);
}
