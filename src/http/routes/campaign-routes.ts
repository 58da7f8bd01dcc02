import { once } from "node:events";
import { PassThrough, Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { recordAudit, type Actor } from "../../access/audit-log.ts";
import { cancelCampaign, pauseCampaign, resumeCampaign } from "../../campaigns/campaign-control.ts";
import { listCampaigns } from "../../campaigns/campaign-list.ts";
import { getCampaignStatus, type CampaignStatusReport } from "../../campaigns/campaign-status.ts";
import {
  launchAudienceCampaign,
  type CampaignLaunchInput,
  type LaunchDeps,
  type LaunchedCampaign,
} from "../../campaigns/launch-campaign.ts";
import { delayedStartOf, launchOnce, sendOptionsOf } from "../../campaigns/launch-request.ts";
import { exportRejects } from "../../campaigns/rejects-export.ts";
import { sendCampaignTest } from "../../campaigns/send-one.ts";
import { exportCampaignReport } from "../../campaigns/report-export.ts";
import { UserError } from "../../model/errors.ts";
import { MAX_CAMPAIGN_RATE_PER_SECOND } from "../../model/send-options.ts";
import { CAMPAIGN_STATUSES, isFinalStatus, PROVIDER_APIS } from "../../model/states.ts";
import type { ApiContext } from "../../runtime/api-context.ts";
import { writeRateLimit, type ApiApp, type AppLifecycle } from "../api-app.ts";
import { actorOf } from "../auth.ts";
import { ErrorResponse } from "../errors.ts";
import { AUTH_ERRORS, CampaignIdParams, CampaignStatusSchema, COMMON_ERRORS } from "../schemas.ts";

const StringMap = z.record(z.string().min(1), z.string());

export const CampaignCreateBody = z
  .object({
    name: z.string().min(1).max(200).optional(),
    uploadId: z.uuid().optional().describe("launch from an upload (POST /api/v1/uploads, then PUT …/mapping)"),
    audience: z.string().min(1).optional().describe("launch to a contact tag or saved segment"),
    templateId: z.string().min(1),
    params: StringMap.default({}).describe("template params for every recipient (`--param`)"),
    map: StringMap.default({}).describe(
      "template variable → contact attribute (`--map`); for uploads, set in the mapping",
    ),
    provider: z.enum(PROVIDER_APIS).default("messages"),
    onUnknown: z.enum(["mark-unknown", "resend"]).default("mark-unknown"),
    from: z.string().optional().describe("legacy: sender name"),
    msgType: z.number().int().nonnegative().optional().describe("legacy: msg_type"),
    labelId: z.number().int().nonnegative().optional().describe("legacy: SMS label id"),
    customArgs: StringMap.optional(),
    optOutKeywords: z
      .array(z.string())
      .max(10)
      .optional()
      .describe("replies that are exactly one of these words opt the recipient out, besides STOP and the like"),
    ratePerSecond: z
      .number()
      .positive()
      .max(MAX_CAMPAIGN_RATE_PER_SECOND)
      .optional()
      .describe(
        "this campaign's own send rate, messages per second across every worker (`--rate`), besides SEND_RATE_LIMIT",
      ),
    startAt: z.iso
      .datetime({ offset: true })
      .optional()
      .describe("a delayed launch (or, with providerSchedule, EngageLab's schedule_time)"),
    providerSchedule: z.boolean().default(false),
    dryRun: z.boolean().default(false),
    templateCheck: z.boolean().default(true),
    templateContent: z
      .string()
      .min(1)
      .optional()
      .describe(
        "messages/custom: the template's text, so that every {{variable}} in it is checked for a value (their approval cannot be checked)",
      ),
    allowRepeat: z
      .boolean()
      .default(false)
      .describe(
        "launch even if the same list, template and params were launched in the last 24 h (the repeat guard; 409 otherwise)",
      ),
  })
  .meta({ id: "CampaignCreate" });
export type CampaignCreate = z.infer<typeof CampaignCreateBody>;

const LaunchResult = z
  .object({
    campaignId: z.string().nullable().describe("null for a dry run"),
    dryRun: z.boolean(),
    enqueued: z.boolean(),
    rows: z.number(),
    recipients: z.number(),
    rejected: z.number(),
    suppressed: z.number(),
    duplicates: z.number(),
    requests: z.number(),
    templateCheck: z
      .object({
        templateId: z.string(),
        approvalChecked: z.boolean().describe("only legacy templates: the template API said it exists and is approved"),
        variablesChecked: z.boolean(),
        notChecked: z.array(z.string()).describe("what was not checked and why"),
      })
      .nullable()
      .describe("null when the check was skipped (templateCheck false)"),
  })
  .meta({ id: "LaunchResult" });
export type LaunchResult = z.infer<typeof LaunchResult>;

const CampaignSummary = z.object({
  id: z.string(),
  name: z.string(),
  status: z.enum(CAMPAIGN_STATUSES),
  provider: z.enum(PROVIDER_APIS),
  recipients: z.number(),
  accepted: z.number(),
  failed: z.number(),
  unknown: z.number(),
  createdAt: z.date(),
  scheduledAt: z.date().nullable(),
  finishedAt: z.date().nullable(),
});

/** How often an event stream looks at the campaign's counts. */
const EVENT_INTERVAL_MS = 1_000;

/**
 * Launches from an upload; registered by the upload routes (step b). Until then a launch names an audience.
 * Kept as a port so the campaign route does not know how uploads are stored.
 */
export type UploadLauncher = (
  deps: LaunchDeps,
  uploadId: string,
  input: CampaignLaunchInput,
) => Promise<LaunchedCampaign>;

export function registerCampaignRoutes(
  app: ApiApp,
  ctx: ApiContext,
  lifecycle: AppLifecycle,
  launchFromUpload?: UploadLauncher,
): void {
  const tags = ["campaigns"];

  app.get(
    "/api/v1/campaigns",
    {
      config: { permission: "campaigns:read" },
      schema: {
        tags,
        summary: "recent campaigns, newest first (smsblast campaigns)",
        querystring: z.object({
          status: z.enum(CAMPAIGN_STATUSES).optional(),
          limit: z.coerce.number().int().min(1).max(200).default(20),
          offset: z.coerce.number().int().min(0).default(0),
        }),
        response: {
          200: z.object({ campaigns: z.array(CampaignSummary), limit: z.number(), offset: z.number() }),
          ...COMMON_ERRORS,
        },
      },
    },
    async (request) => {
      const { status, limit, offset } = request.query;
      const campaigns = await listCampaigns(ctx.db, { status, limit, offset });
      return { campaigns: campaigns as z.infer<typeof CampaignSummary>[], limit, offset };
    },
  );

  app.post(
    "/api/v1/campaigns",
    {
      config: { permission: "campaigns:write", rateLimit: writeRateLimit(ctx) },
      schema: {
        tags,
        summary: "launch a campaign from an upload or a database audience (smsblast send)",
        description:
          "An `Idempotency-Key` header (kept 24 h per token) makes a retried create return the first campaign.",
        headers: z.object({ "idempotency-key": z.string().optional() }),
        body: CampaignCreateBody,
        response: {
          200: LaunchResult,
          201: LaunchResult,
          ...COMMON_ERRORS,
          404: ErrorResponse,
          409: ErrorResponse,
          422: ErrorResponse,
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const launch = () => launchAndAudit(ctx, actorOf(request), body, launchFromUpload);
      const key = request.headers["idempotency-key"];
      if (key === undefined || body.dryRun) return reply.code(201).send(await launch());
      const outcome = await launchOnce(ctx.db, { tokenId: request.apiToken!.id, key, request: body }, launch);
      if (outcome.replayed) reply.header("idempotent-replayed", "true");
      return reply.code(outcome.replayed ? 200 : 201).send(outcome.value);
    },
  );

  app.get(
    "/api/v1/campaigns/:id",
    {
      config: { permission: "campaigns:read" },
      schema: {
        tags,
        summary: "a campaign's status and counts (smsblast status --json)",
        params: CampaignIdParams,
        response: { 200: CampaignStatusSchema, ...COMMON_ERRORS, 404: ErrorResponse },
      },
    },
    async (request) => (await getCampaignStatus(ctx.db, request.params.id)) as z.infer<typeof CampaignStatusSchema>,
  );

  app.get(
    "/api/v1/campaigns/:id/events",
    {
      config: { permission: "campaigns:read" },
      schema: {
        tags,
        summary: "server-sent events: `progress` with the status every second until the campaign ends, then `end`",
        params: CampaignIdParams,
        produces: ["text/event-stream"],
        response: { 200: z.string().describe("text/event-stream"), ...COMMON_ERRORS, 404: ErrorResponse },
      },
    },
    async (request, reply) => {
      const first = await getCampaignStatus(ctx.db, request.params.id); // 404 before the stream starts
      const stop = AbortSignal.any([lifecycle.closing, abortedWhenClosed(request.raw)]);
      reply
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("cache-control", "no-cache")
        .header("x-accel-buffering", "no");
      // fastify pipes a stream as it is (no serializer), so its type is not the schema's.
      return reply.send(Readable.from(progressEvents(ctx, first, stop)) as unknown as string);
    },
  );

  const control = (action: "pause" | "resume" | "cancel", summary: string) =>
    app.post(
      `/api/v1/campaigns/:id/${action}`,
      {
        config: { permission: "campaigns:write", rateLimit: writeRateLimit(ctx) },
        schema: {
          tags,
          summary,
          params: CampaignIdParams,
          response: { 200: CampaignStatusSchema, ...COMMON_ERRORS, 404: ErrorResponse, 409: ErrorResponse },
        },
      },
      async (request) => {
        const id = request.params.id;
        if (action === "pause") await pauseCampaign(ctx.db, id, `paused by ${actorOf(request).name}`);
        else if (action === "cancel") await cancelCampaign(ctx.db, id, `cancelled by ${actorOf(request).name}`);
        else await resumeCampaign(ctx.db, ctx.queue, id);
        await recordAudit(ctx.db, actorOf(request), `campaign.${action}`, { campaignId: id });
        return (await getCampaignStatus(ctx.db, id)) as z.infer<typeof CampaignStatusSchema>;
      },
    );
  control("pause", "stop sending between batches (in-flight batches finish)");
  control("resume", "continue a paused campaign and re-queue its open batches");
  control("cancel", "cancel: batches not yet claimed are never sent");

  app.post(
    "/api/v1/campaigns/:id/test",
    {
      config: { permission: "campaigns:write", rateLimit: writeRateLimit(ctx) },
      schema: {
        tags,
        summary: "send the campaign's message to one number (or e-mail) through send-one (v1/custom-messages)",
        params: CampaignIdParams,
        body: z.object({
          to: z.string().min(1).max(320),
          params: StringMap.default({}).describe("values for the per-recipient variables"),
          region: z
            .string()
            .regex(/^[A-Za-z]{2}$/)
            .optional(),
        }),
        response: {
          200: z.object({
            campaignId: z.string().describe("the one-recipient campaign that recorded the test"),
            to: z.string(),
            state: z.string(),
            messageId: z.string().nullable(),
            sendChannel: z.string().nullable(),
            failureCode: z.number().nullable(),
            failureMessage: z.string().nullable(),
            statusReason: z.string().nullable(),
          }),
          ...COMMON_ERRORS,
          404: ErrorResponse,
        },
      },
    },
    async (request) => {
      const deps = {
        db: ctx.db,
        log: ctx.log,
        providers: ctx.providers,
        providerTimeoutMs: ctx.config.engagelab.timeoutMs,
        gate: ctx.sendGate,
      };
      const result = await sendCampaignTest(deps, request.params.id, {
        to: request.body.to,
        params: request.body.params,
        defaultRegion: request.body.region ?? ctx.config.defaultRegion,
      });
      await recordAudit(ctx.db, actorOf(request), "campaign.test", {
        campaignId: request.params.id,
        details: { testCampaignId: result.campaignId, state: result.state },
      });
      return result;
    },
  );

  const csvDownload = (file: "report.csv" | "rejects.csv", summary: string, write: typeof exportCampaignReport) =>
    app.get(
      `/api/v1/campaigns/:id/${file}`,
      {
        config: { permission: "reports:read" },
        schema: {
          tags,
          summary,
          params: CampaignIdParams,
          produces: ["text/csv"],
          response: { 200: z.string().describe("text/csv"), ...AUTH_ERRORS, 400: ErrorResponse, 404: ErrorResponse },
        },
      },
      async (request, reply) => {
        const out = new PassThrough();
        const done = write(ctx.db, request.params.id, out);
        // The export checks the campaign before it writes its header: an unknown id is still a 404 here.
        await Promise.race([once(out, "readable"), done]);
        done.then(
          () => out.end(),
          (error: unknown) => {
            request.log.error({ err: error }, "CSV export failed mid-stream");
            out.destroy(error as Error);
          },
        );
        return reply
          .header("content-type", "text/csv; charset=utf-8")
          .header("content-disposition", `attachment; filename="${request.params.id}-${file}"`)
          .send(out as unknown as string);
      },
    );
  csvDownload("report.csv", "every recipient's outcome as CSV, streamed (smsblast report --csv)", exportCampaignReport);
  csvDownload("rejects.csv", "the campaign's rejected rows as CSV, streamed (smsblast rejects)", exportRejects);
}

/** A launch as both the API route and the console's confirm button make it, recorded in the audit log. */
export async function launchAndAudit(
  ctx: ApiContext,
  actor: Actor,
  body: CampaignCreate,
  launchFromUpload: UploadLauncher | undefined,
): Promise<LaunchResult> {
  const launched = await launchCampaign(ctx, body, launchFromUpload);
  if (!launched.dryRun) {
    await recordAudit(ctx.db, actor, "campaign.create", {
      campaignId: launched.campaignId,
      details: {
        source: body.uploadId ? "upload" : "audience",
        recipients: launched.recipientCount,
        provider: body.provider,
      },
    });
  }
  return launchResultOf(launched);
}

async function launchCampaign(
  ctx: ApiContext,
  body: CampaignCreate,
  launchFromUpload: UploadLauncher | undefined,
): Promise<LaunchedCampaign> {
  if ((body.uploadId === undefined) === (body.audience === undefined)) {
    throw new UserError("invalid_source", "give either uploadId or audience, not both and not neither", {
      field: body.uploadId ? "audience" : "uploadId",
    });
  }
  const startAt = body.startAt === undefined ? undefined : new Date(body.startAt);
  const options = {
    from: body.from,
    msgType: body.msgType,
    labelId: body.labelId,
    customArgs: body.customArgs,
    startAt,
    providerSchedule: body.providerSchedule,
    optOutKeywords: body.optOutKeywords,
    ratePerSecond: body.ratePerSecond,
  };
  const input: CampaignLaunchInput = {
    name:
      body.name ??
      `${body.audience ? `audience ${body.audience}` : `upload ${body.uploadId}`} ${new Date().toISOString()}`,
    templateId: body.templateId,
    params: body.params,
    paramColumns: body.map,
    provider: body.provider,
    onUnknown: body.onUnknown === "resend" ? "resend" : "at_most_once",
    batchSize: ctx.config.send.batchSize,
    legacyVarMaxChars: ctx.config.send.legacyVarMaxChars,
    sendOptions: sendOptionsOf(options),
    dryRun: body.dryRun,
    templateCheck: body.templateCheck,
    templateContent: body.templateContent,
    allowRepeat: body.allowRepeat,
    startAt: delayedStartOf(options),
  };
  const deps: LaunchDeps = {
    db: ctx.db,
    log: ctx.log,
    enqueue: ctx.queue.enqueue,
    scheduleStart: ctx.queue.scheduleStart,
    templates: ctx.templates,
  };
  if (body.audience !== undefined) return launchAudienceCampaign(deps, { ...input, audience: body.audience });
  if (!launchFromUpload)
    throw new UserError("uploads_unavailable", "this server takes no uploads", {
      field: "uploadId",
      kind: "unavailable",
    });
  return launchFromUpload(deps, body.uploadId!, input);
}

function launchResultOf(launched: LaunchedCampaign): LaunchResult {
  return {
    campaignId: launched.dryRun ? null : launched.campaignId,
    dryRun: launched.dryRun,
    enqueued: launched.enqueued,
    rows: launched.totalRows,
    recipients: launched.recipientCount,
    rejected: launched.rejectedCount,
    suppressed: launched.suppressedCount,
    duplicates: launched.duplicateCount,
    requests: launched.batchIds.length,
    templateCheck: launched.templateCheck,
  };
}

function abortedWhenClosed(raw: NodeJS.EventEmitter): AbortSignal {
  const controller = new AbortController();
  raw.once("close", () => controller.abort());
  return controller.signal;
}

async function* progressEvents(
  ctx: ApiContext,
  first: CampaignStatusReport,
  stop: AbortSignal,
): AsyncGenerator<string> {
  let report = first;
  let last = "";
  for (;;) {
    const data = JSON.stringify(report);
    // Only changes are sent; a comment line every interval keeps proxies from closing an idle stream.
    yield data === last ? ": keep-alive\n\n" : `event: progress\ndata: ${data}\n\n`;
    last = data;
    if (isFinalStatus(report.status)) {
      yield `event: end\ndata: ${JSON.stringify({ status: report.status })}\n\n`;
      return;
    }
    try {
      await sleep(EVENT_INTERVAL_MS, undefined, { signal: stop });
    } catch {
      return; // the client went away, or the server is shutting down
    }
    report = await getCampaignStatus(ctx.db, report.id);
  }
}
