import { z } from "zod";
import { CAMPAIGN_STATUSES, PROVIDER_APIS } from "../model/states.ts";
import { ErrorResponse } from "./errors.ts";

export const CampaignIdParams = z.object({ id: z.uuid().describe("campaign id") });

export const CampaignStatusSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    status: z.enum(CAMPAIGN_STATUSES),
    statusReason: z.string().nullable(),
    provider: z.enum(PROVIDER_APIS),
    templateId: z.string(),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    rows: z.object({ total: z.number(), rejected: z.number(), duplicates: z.number() }),
    recipients: z.object({
      total: z.number(),
      pending: z.number(),
      accepted: z.number(),
      failed: z.number(),
      unknown: z.number(),
      cancelled: z.number(),
      sent: z.number(),
      delivered: z.number(),
      undelivered: z.number(),
      no_report: z.number(),
    }),
    delivery: z
      .object({
        delivered: z.number(),
        undelivered: z.number(),
        noReport: z.number(),
        awaitingReport: z.number(),
        rate: z.number().nullable(),
      })
      .describe("from delivery reports; rate = delivered / (delivered + undelivered + no_report)"),
    batches: z.record(z.string(), z.number()).describe("batches by state, and `total`"),
    purgedAt: z
      .string()
      .nullable()
      .describe(
        "when `smsblast purge` deleted the recipient detail (the counts are kept; report.csv and rejects.csv answer 410)",
      ),
    readingList: z
      .boolean()
      .describe("`send --stream`: the launch is still reading its list; the totals grow and more batches will come"),
  })
  .meta({ id: "CampaignStatus" });

/** The refusals every authenticated route may answer, with the one error shape. */
export const AUTH_ERRORS = { 401: ErrorResponse, 403: ErrorResponse } as const;
export const COMMON_ERRORS = { 400: ErrorResponse, ...AUTH_ERRORS } as const;
