import { DEFAULT_LEGACY_VAR_MAX_CHARS } from "../config/config.ts";
import type { Logger } from "../config/logger.ts";
import { CampaignPurgedError, UserError } from "../model/errors.ts";
import { LEGACY_LINK_PATTERN, validateLegacyOptions, validateLegacyParams } from "../engagelab/legacy-send-api.ts";
import { assertScheduleTimeInWindow } from "../engagelab/messages-api.ts";
import { ProviderRequestError } from "../engagelab/errors.ts";
import type { TemplatesApi } from "../engagelab/templates-api.ts";
import { readCsvRecipientChunks } from "../recipients/csv-source.ts";
import { acceptsEmail } from "../recipients/email.ts";
import { resolveAudience, stageAudience } from "../store/audience-repository.ts";
import {
  countFailuresByCode,
  createCampaign,
  createCampaignWithRecipients,
  readCampaignDefinition,
  stageFailedRecipients,
  type EarlierLaunch,
  type IngestCheck,
  type IngestOptions,
  type IngestedCampaign,
  type NewCampaign,
} from "../store/campaign-repository.ts";
import type { Database } from "../store/database.ts";
import { isFinalStatus, type ProviderApi, type UnknownOutcomePolicy } from "../model/states.ts";
import { checkStringTemplate, checkTemplateReady, type TemplateCheckReport } from "./template-preflight.ts";
import { NO_COUNTRY_CODE_REASON } from "../recipients/phone.ts";
import { uploadForLaunch } from "./uploads.ts";
import { fileFingerprint } from "../recipients/file-fingerprint.ts";
import { launchWhileReading, type StreamedLaunchOptions } from "../store/streamed-launch.ts";
import { claimUploadForLaunch, finishUploadLaunch } from "../store/upload-repository.ts";
import type { SendOptions } from "../model/send-options.ts";

/** What every campaign launch needs, whatever its audience source. */
export interface CampaignLaunchInput {
  name: string;
  templateId: string;
  /** Constant template params (`--param`). */
  params: Record<string, string>;
  /** Template variable → CSV column or contact attribute (`--map`): per-recipient params. */
  paramColumns?: Record<string, string>;
  provider: ProviderApi;
  onUnknown: UnknownOutcomePolicy;
  batchSize: number;
  /** Legacy v1/send: characters per template variable value (LEGACY_VAR_MAX_CHARS, default 16); 0 = no check. */
  legacyVarMaxChars?: number;
  /** Provider-specific options: legacy from/msgType/labelId/customArgs, messages scheduleTime (Unix s). */
  sendOptions?: SendOptions;
  /** Plan and report the request count, then roll back: nothing stored, nothing sent. */
  dryRun?: boolean;
  /** Delayed launch: store now, start (and send) at this time. */
  startAt?: Date;
  /** Set for runs of a recurring schedule (unique per firing). */
  runKey?: string;
  /**
   * The template pre-flight (default on): legacy templates are checked with the legacy template API (exists,
   * approved, every `%var%` has a value); messages and custom templates as far as smsblast can see them.
   */
  templateCheck?: boolean;
  /** messages/custom: the template's text, so every `{{var}}` in it can be checked for a value. */
  templateContent?: string;
  /** Launch even if the same list (same fingerprint) was launched within the repeat window. */
  allowRepeat?: boolean;
  onProgress?: (rowsRead: number) => void;
}

export interface CsvCampaignInput extends CampaignLaunchInput {
  file: string;
  phoneColumn: string;
  countryColumn?: string;
  defaultRegion?: string;
  maxBytes?: number;
  /** Mapped variables whose cell may be empty; otherwise an empty mapped cell rejects its row. */
  allowEmpty?: string[];
  /**
   * `send --stream`: send while the file is still being read (launchWhileReading). Faster for big lists; a
   * launch that fails part-way is cancelled with what it sent recorded, not rolled back. Lists without
   * mapped columns, sent now.
   */
  sendWhileReading?: boolean;
  /** With sendWhileReading: how big a step is (tests and the benchmark; the defaults suit production). */
  streamSteps?: Pick<StreamedLaunchOptions, "recipientsPerStep" | "stepMaxMs" | "seenFilterLog2Bits">;
  /** With sendWhileReading: aborted (Ctrl-C), the launch stops at its next step and the campaign is cancelled. */
  signal?: AbortSignal;
}

export interface AudienceCampaignInput extends CampaignLaunchInput {
  /** A saved segment's name, or a contact tag. */
  audience: string;
}

export interface LaunchDeps {
  db: Database;
  log: Logger;
  /** Hands the planned batches to the queue (jobId = batch id, so repeating it is harmless). */
  enqueue: (campaignId: string, batchIds: readonly string[]) => Promise<void>;
  /** Schedules the start of a delayed campaign (needed only with `startAt`). */
  scheduleStart?: (campaignId: string, at: Date) => Promise<void>;
  /** The legacy template API, for the pre-flight of legacy campaigns; without it their check is skipped. */
  templates?: Pick<TemplatesApi, "get">;
}

export interface LaunchedCampaign extends IngestedCampaign {
  enqueued: boolean;
  dryRun: boolean;
  /** What the template pre-flight checked; null when it was skipped. */
  templateCheck: TemplateCheckReport | null;
  /** Things the person launching should know, said once (e.g. most rows had no country code). */
  notes: string[];
}

/** CSV → campaign: every row streamed, judged and stored with the batch plan in one transaction, then queued. */
export async function launchCsvCampaign(deps: LaunchDeps, input: CsvCampaignInput): Promise<LaunchedCampaign> {
  if (input.sendWhileReading) refuseStreamedOptions(input);
  const templateCheck = await preflight(deps, input);
  const fingerprint = input.runKey === undefined ? await fileFingerprint(input.file, input, input.maxBytes) : null;
  const rows = readCsvRecipientChunks(input.file, {
    phoneColumn: input.phoneColumn,
    countryColumn: input.countryColumn,
    defaultRegion: input.defaultRegion,
    paramColumns: input.paramColumns,
    maxBytes: input.maxBytes,
    acceptEmail: acceptsEmail(input.provider),
    allowEmpty: input.allowEmpty,
  });
  const notes: string[] = [];
  // Streamed, the recipients' repeat check runs once the file is read, after batches went out: its own words.
  const checks = launchChecks(
    input,
    "the file",
    notes,
    fingerprint ?? undefined,
    input.sendWhileReading ? RepeatFoundOnceReadError : RepeatLaunchError,
  );
  if (input.sendWhileReading) {
    const log = deps.log.child({ file: input.file });
    const streamed = await launchWhileReading(deps.db, newCampaign(input, input.file), rows, {
      ...input.streamSteps,
      signal: input.signal,
      batchSize: input.batchSize,
      onProgress: input.onProgress,
      enqueue: deps.enqueue,
      onAfterCommitError: (what, error) =>
        what === "enqueue"
          ? log.error({ err: error }, "batches stored but not queued; run `smsblast reconcile` once Redis is reachable")
          : log.warn({ err: error }, "campaign stored; its completion is checked again as its batches are recorded"),
      repeatGuard:
        checks.repeatGuard && fingerprint ? { ...checks.repeatGuard, fileFingerprint: fingerprint } : undefined,
      beforeFirstBatch: ({ earlierLaunch }) => {
        if (earlierLaunch && !input.allowRepeat) return Promise.reject(new RepeatLaunchError(earlierLaunch));
        return Promise.resolve();
      },
      beforeLastStep: checks.beforeCommit,
    });
    log
      .child({ campaignId: streamed.campaignId })
      .info(
        { recipients: streamed.recipientCount, requests: streamed.batchIds.length, steps: streamed.steps },
        "campaign stored and queued while reading",
      );
    return { ...streamed, dryRun: false, templateCheck, notes };
  }
  const ingested = await createCampaignWithRecipients(deps.db, newCampaign(input, input.file), rows, {
    ...ingestOptions(input),
    ...checks,
  });
  return enqueueLaunched(deps, ingested, input, templateCheck, notes);
}

/** What sending while reading cannot do, refused by name before anything is read or stored. */
function refuseStreamedOptions(input: CsvCampaignInput): void {
  const refuse = (what: string, field: string) => {
    throw new UserError("stream_not_possible", `sending while reading (--stream) cannot be combined with ${what}`, {
      field,
    });
  };
  if (input.dryRun) refuse("a dry run: a dry run stores and sends nothing, so there is nothing to stream", "dryRun");
  if (input.startAt) refuse("a start time: a delayed campaign is stored first and sent later", "startAt");
  if (Object.keys(input.paramColumns ?? {}).length > 0)
    refuse(
      "mapped columns (--map): recipients with their own params are grouped into batches once the whole list is read",
      "paramColumns",
    );
}

/** Database audience → campaign: staged with one INSERT … SELECT from `contacts`, then planned and queued. */
export async function launchAudienceCampaign(
  deps: LaunchDeps,
  input: AudienceCampaignInput,
): Promise<LaunchedCampaign> {
  const templateCheck = await preflight(deps, input);
  const filter = await resolveAudience(deps.db, input.audience);
  const ingested = await createCampaign(
    deps.db,
    newCampaign(input, filter.name),
    stageAudience(filter, input.paramColumns ?? {}),
    {
      ...ingestOptions(input),
      ...launchChecks(input, `audience ${filter.name}`),
    },
  );
  return enqueueLaunched(deps, ingested, input, templateCheck);
}

/** Failure codes worth sending again: temporary provider trouble, a per-number frequency limit, legacy failed items. */
export const RETRYABLE_FAILURE_CODES: readonly number[] = [1000, 5001, 3004, 41031];

export interface RetryFailedInput {
  campaignId: string;
  /** Failure codes to send again (default RETRYABLE_FAILURE_CODES). */
  codes?: readonly number[];
  batchSize: number;
  name?: string;
  dryRun?: boolean;
  allowRepeat?: boolean;
}

/**
 * A new campaign of the recipients of a finished campaign that ended `failed` with a retryable code, with
 * their own params, linked to the original (`retry_of`). Accepted and unknown recipients are never in it:
 * an unknown one may well have received the message. Suppressions are applied again, and the repeat guard
 * refuses a second retry of the same failures.
 */
export async function launchRetryOfFailed(deps: LaunchDeps, input: RetryFailedInput): Promise<LaunchedCampaign> {
  const original = await readCampaignDefinition(deps.db, input.campaignId);
  if (!isFinalStatus(original.status))
    throw new UserError(
      "campaign_not_finished",
      `campaign ${input.campaignId} is ${original.status}; retry its failures once it has finished (or cancel it)`,
      { kind: "conflict" },
    );
  if (original.purged)
    throw new CampaignPurgedError(input.campaignId, original.purged.at, "its failed recipients cannot be sent again");
  const codes = [...(input.codes ?? RETRYABLE_FAILURE_CODES)];
  const failures = await countFailuresByCode(deps.db, input.campaignId);
  if (!failures.some((f) => f.code !== null && codes.includes(f.code)))
    throw new NothingToSendError(
      `nothing to retry: campaign ${input.campaignId} has no failed recipient with code ${codes.join(", ")}` +
        (failures.length === 0
          ? " (it has no failed recipients)"
          : ` (its failures: ${failures.map((f) => `${f.count} × ${f.code ?? "no code"}`).join(", ")}; --codes chooses others)`) +
        "; nothing was stored",
    );
  const launch: CampaignLaunchInput = {
    name: input.name ?? `${original.name} (retry of failures)`,
    templateId: original.templateId,
    params: original.templateParams,
    provider: original.provider,
    onUnknown: original.onUnknown,
    batchSize: input.batchSize,
    sendOptions: original.sendOptions,
    dryRun: input.dryRun,
    allowRepeat: input.allowRepeat,
    // The original passed the pre-flight; a retry goes out as it did.
    templateCheck: false,
  };
  const source = `retry of campaign ${input.campaignId}`;
  const ingested = await createCampaign(
    deps.db,
    { ...newCampaign(launch, source), retryOf: input.campaignId },
    stageFailedRecipients(input.campaignId, codes),
    {
      ...ingestOptions(launch),
      // Recipients keep their own params: group them as the original did.
      groupByParams: launch.provider !== "custom",
      ...launchChecks(launch, `the failures of campaign ${input.campaignId} with code ${codes.join(", ")}`),
    },
  );
  // The pre-flight is skipped for a retry (templateCheck false): nothing to report.
  return enqueueLaunched(deps, ingested, launch, null);
}

export class UploadAlreadyLaunchedError extends UserError {
  override name = "UploadAlreadyLaunchedError";
  constructor(
    uploadId: string,
    readonly campaignId: string | null,
  ) {
    super(
      "upload_already_launched",
      campaignId
        ? `upload ${uploadId} was already launched as campaign ${campaignId}`
        : `upload ${uploadId} is being launched by another request`,
      { field: "uploadId", kind: "conflict" },
    );
  }
}

/**
 * Mapped upload → campaign: the judged rows go into the same staging table as a file's, so suppression,
 * de-duplication and planning are createCampaign's. The upload's mapping supplies the columns; the launch
 * must name the provider and template the upload was checked with. One upload launches once.
 */
export async function launchUploadCampaign(
  deps: LaunchDeps,
  uploadId: string,
  input: CampaignLaunchInput,
): Promise<LaunchedCampaign> {
  const { upload, mapping, stage } = await uploadForLaunch(deps.db, uploadId);
  if (mapping.provider !== input.provider) {
    throw new UserError(
      "upload_mapping_mismatch",
      `the upload was mapped for provider ${mapping.provider}, not ${input.provider}; map it again or launch with the same`,
      {
        field: "provider",
        kind: "conflict",
      },
    );
  }
  if (mapping.templateId !== undefined && mapping.templateId !== input.templateId) {
    throw new UserError(
      "upload_mapping_mismatch",
      `the upload was checked with template ${mapping.templateId}, not ${input.templateId}; map it again or launch with the same`,
      {
        field: "templateId",
        kind: "conflict",
      },
    );
  }
  const launch: CampaignLaunchInput = {
    ...input,
    params: { ...mapping.params, ...input.params },
    paramColumns: mapping.map,
    // The text the upload was checked with; a legacy template's own text is read from the template API.
    templateContent: input.templateContent ?? (input.provider === "legacy" ? undefined : mapping.templateContent),
  };
  const templateCheck = await preflight(deps, launch);
  const claim = await claimUploadForLaunch(deps.db, uploadId);
  if (!claim.claimed) throw new UploadAlreadyLaunchedError(uploadId, claim.campaignId);
  let campaignId: string | null = null;
  try {
    const ingested = await createCampaign(
      deps.db,
      newCampaign(launch, `upload:${upload.filename ?? upload.id}`),
      stage,
      ingestOptions(launch),
    );
    if (!launch.dryRun) campaignId = ingested.campaignId;
    return await enqueueLaunched(deps, ingested, launch, templateCheck);
  } finally {
    await finishUploadLaunch(deps.db, uploadId, campaignId);
  }
}

async function preflight(deps: LaunchDeps, input: CampaignLaunchInput): Promise<TemplateCheckReport | null> {
  const sendOptions = input.sendOptions ?? {};
  // One variable from two places: which one wins would be a silent surprise.
  const twice = Object.keys(input.paramColumns ?? {}).find((variable) => Object.hasOwn(input.params, variable));
  if (twice !== undefined)
    throw new UserError(
      "variable_given_twice",
      `template variable "${twice}" is given twice: as a fixed param (${twice}=${input.params[twice]}) and mapped to column "${input.paramColumns![twice]}"; keep one`,
      { field: twice },
    );
  if (input.startAt) {
    if (!deps.scheduleStart) throw new Error("a delayed launch needs a queue that can schedule the start");
    if (input.startAt.getTime() <= Date.now()) {
      throw new UserError(
        "start_time_in_past",
        `start time ${input.startAt.toISOString()} is in the past; leave it out to send now`,
        {
          field: "startAt",
        },
      );
    }
  }
  validateSendOptions(input.provider, input.templateId, sendOptions);
  if (input.provider === "legacy") validateLegacyParams(input.params, legacyVarMaxChars(input));
  return checkCampaignTemplate(deps.templates, input);
}

/**
 * The template pre-flight on the template's own platform: the legacy template API (seed 003) knows legacy
 * templates only; messages and custom template ids are strings on other platforms and are never looked up there.
 */
export async function checkCampaignTemplate(
  templates: Pick<TemplatesApi, "get"> | undefined,
  input: Pick<
    CampaignLaunchInput,
    "provider" | "templateId" | "params" | "paramColumns" | "templateCheck" | "templateContent"
  >,
): Promise<TemplateCheckReport | null> {
  if (input.provider === "legacy" && input.templateContent !== undefined) {
    throw new UserError(
      "template_content_not_used",
      "a legacy template's text is read from the template API; the template text is given only for messages or custom campaigns",
      { field: "templateContent" },
    );
  }
  if (input.templateCheck === false) return null;
  const available = {
    params: Object.keys(input.params),
    mappedColumns: Object.keys(input.paramColumns ?? {}),
  };
  if (input.provider !== "legacy")
    return checkStringTemplate(input.provider, input.templateId, input.templateContent, available);
  if (!templates) return null;
  const template = await checkTemplateReady(templates, input.templateId, available);
  return { templateId: template.templateId, approvalChecked: true, variablesChecked: true, notChecked: [] };
}

/** A second launch of the same list inside this window is refused unless the user allows a repeat. */
export const REPEAT_GUARD_WINDOW_MS = 24 * 3600 * 1000;

/**
 * The checks of a launch by hand, run inside its transaction before it commits. Firings of a recurring
 * schedule are exempt from both: each is unique by its run key, and an empty audience is a recorded,
 * empty run rather than an error nobody sees.
 */
function launchChecks(
  input: CampaignLaunchInput,
  source: string,
  notes: string[] = [],
  fileFingerprint?: string,
  RepeatError: new (earlier: EarlierLaunch) => UserError = RepeatLaunchError,
): Pick<IngestOptions, "beforeCommit" | "repeatGuard"> {
  if (input.runKey !== undefined) return {};
  const refuseEmpty = refuseNothingToSend(source);
  return {
    repeatGuard: { windowMs: REPEAT_GUARD_WINDOW_MS, fileFingerprint },
    beforeCommit: async (check) => {
      await refuseEmpty(check);
      if (check.earlierLaunch && !input.allowRepeat) throw new RepeatError(check.earlierLaunch);
      notes.push(...(await mostlyWithoutCountryCode(check)));
    },
  };
}

/** When most rows were rejected for a missing country code, the fix is one flag: say so once, not per row. */
async function mostlyWithoutCountryCode({ counts, rejectReasons }: IngestCheck): Promise<string[]> {
  if (counts.rejectedCount * 2 <= counts.totalRows) return [];
  const noRegion = (await rejectReasons()).find((r) => r.reason === NO_COUNTRY_CODE_REASON);
  if (!noRegion || noRegion.count * 2 <= counts.totalRows) return [];
  return [
    `${noRegion.count} of ${counts.totalRows} rows have numbers without a country code: if they are national numbers, ` +
      `send again with --region (e.g. --region SG) or a country column (--country-column)`,
  ];
}

export class RepeatLaunchError extends UserError {
  override name = "RepeatLaunchError";
  constructor(readonly earlier: EarlierLaunch) {
    super(
      "repeat_launch",
      `the same recipients with the same template and params were already launched as campaign ${earlier.campaignId} ` +
        `(${earlier.status}, created ${earlier.createdAt.toISOString()}); nothing was stored`,
      { kind: "conflict", field: "allowRepeat" },
    );
  }
}

/**
 * `send --stream`, once the whole file is read: its recipients are those of an earlier launch although the
 * file's bytes differ (another order, other columns), so the guard could not tell before the first batch.
 */
export class RepeatFoundOnceReadError extends UserError {
  override name = "RepeatFoundOnceReadError";
  constructor(readonly earlier: EarlierLaunch) {
    super(
      "repeat_launch",
      `once read, the file turned out to hold the same recipients with the same template and params as campaign ` +
        `${earlier.campaignId} (${earlier.status}, created ${earlier.createdAt.toISOString()}), in a file that is not ` +
        `byte for byte the same, so --stream could not tell before sending`,
      { kind: "conflict", field: "allowRepeat" },
    );
  }
}

export class NothingToSendError extends UserError {
  override name = "NothingToSendError";
  constructor(message: string) {
    super("nothing_to_send", message);
  }
}

/**
 * A launch with no recipient left (every row rejected, or no rows at all) would only create a campaign that
 * is "completed" at once: refused, with what went wrong, before anything is stored.
 */
function refuseNothingToSend(source: string) {
  return async ({ counts, rejectReasons }: IngestCheck): Promise<void> => {
    if (counts.recipientCount > 0) return;
    if (counts.totalRows === 0)
      throw new NothingToSendError(
        `nothing to send: ${source} has no rows${source === "the file" ? " below its header" : ""}; nothing was stored`,
      );
    const reasons = (await rejectReasons()).map((r) => `${r.count} × ${r.reason} (first at row ${r.firstRow})`);
    throw new NothingToSendError(
      `nothing to send: all ${counts.totalRows} row(s) of ${source} were rejected: ${reasons.join("; ")}` +
        (counts.duplicateCount > 0 ? `; ${counts.duplicateCount} duplicate(s)` : "") +
        "; nothing was stored",
    );
  };
}

function newCampaign(input: CampaignLaunchInput, source: string): NewCampaign {
  return {
    name: input.name,
    templateId: input.templateId,
    templateParams: input.params,
    provider: input.provider,
    onUnknown: input.onUnknown,
    sendOptions: input.sendOptions ?? {},
    source,
    runKey: input.runKey,
  };
}

function legacyVarMaxChars(input: CampaignLaunchInput): number {
  return input.legacyVarMaxChars ?? DEFAULT_LEGACY_VAR_MAX_CHARS;
}

/**
 * Legacy v1/send refuses a long or linked `vars` value for the whole request: a row whose own (mapped)
 * value breaks the rule becomes a reject naming the variable and its column, so the rest can go.
 */
function paramLimitsOf(input: CampaignLaunchInput): IngestOptions["paramLimits"] {
  if (input.provider !== "legacy" || Object.keys(input.paramColumns ?? {}).length === 0) return undefined;
  const maxChars = legacyVarMaxChars(input);
  return {
    maxChars,
    forbiddenPattern: LEGACY_LINK_PATTERN,
    sources: input.paramColumns ?? {},
    tooLong: `template variable "%1$s" (from "%2$s") has %3$s characters; legacy v1/send takes at most ${maxChars} per variable (LEGACY_VAR_MAX_CHARS)`,
    forbidden: `template variable "%1$s" (from "%2$s") contains a link; legacy v1/send refuses links in variables`,
  };
}

function ingestOptions(input: CampaignLaunchInput) {
  return {
    paramLimits: paramLimitsOf(input),
    batchSize: input.batchSize,
    groupByParams: input.provider !== "custom",
    initialStatus: input.startAt ? ("scheduled" as const) : ("running" as const),
    scheduledAt: input.startAt,
    onProgress: input.onProgress,
    dryRun: input.dryRun,
  };
}

/**
 * If enqueueing fails the campaign is still complete in Postgres, and `smsblast reconcile` (or any
 * worker's start-up reconcile) queues it again.
 */
async function enqueueLaunched(
  deps: LaunchDeps,
  ingested: IngestedCampaign,
  input: CampaignLaunchInput,
  templateCheck: TemplateCheckReport | null,
  notes: string[] = [],
): Promise<LaunchedCampaign> {
  const log = deps.log.child({ campaignId: ingested.campaignId });
  const summary = {
    recipients: ingested.recipientCount,
    rejected: ingested.rejectedCount,
    suppressed: ingested.suppressedCount,
    duplicates: ingested.duplicateCount,
    requests: ingested.batchIds.length,
  };
  if (input.dryRun) {
    log.info(summary, "dry run: campaign planned and rolled back");
    return { ...ingested, enqueued: false, dryRun: true, templateCheck, notes };
  }
  log.info(summary, "campaign stored");
  try {
    if (input.startAt) await deps.scheduleStart!(ingested.campaignId, input.startAt);
    else await deps.enqueue(ingested.campaignId, ingested.batchIds);
    return { ...ingested, enqueued: true, dryRun: false, templateCheck, notes };
  } catch (error) {
    log.error({ err: error }, "campaign stored but not queued; run `smsblast reconcile` once Redis is reachable");
    return { ...ingested, enqueued: false, dryRun: false, templateCheck, notes };
  }
}

/** Refuses, before anything is stored, options the chosen API would refuse for every batch. */
export function validateSendOptions(provider: ProviderApi, templateId: string, sendOptions: SendOptions): void {
  if (provider === "legacy") validateLegacyOptions(templateId, sendOptions);
  for (const legacyOnly of ["from", "msgType", "labelId"] as const) {
    if (provider !== "legacy" && sendOptions[legacyOnly] !== undefined) {
      throw new ProviderRequestError(legacyOnly, "is an option of the legacy v1/send API only (provider legacy)");
    }
  }
  if (provider === "custom" && sendOptions.customArgs !== undefined) {
    throw new ProviderRequestError("custom_args", "v1/custom-messages takes no custom_args");
  }
  if (sendOptions.scheduleTime !== undefined) {
    if (provider !== "messages") {
      throw new ProviderRequestError(
        "schedule_time",
        "provider-side scheduling exists only on the messages API (provider messages)",
      );
    }
    assertScheduleTimeInWindow(sendOptions.scheduleTime);
  }
}
