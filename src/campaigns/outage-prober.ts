import { recordAudit } from "../access/audit-log.ts";
import type { Logger } from "../config/logger.ts";
import type { ProbeResult } from "../engagelab/provider-probe.ts";
import type { ProviderApi } from "../model/states.ts";
import type { CampaignQueue } from "../queue/send-queue.ts";
import { listOutagePausedCampaigns, markAutoResumeExhausted } from "../store/campaign-repository.ts";
import type { Database } from "../store/database.ts";
import { autoResumeCampaign } from "./campaign-control.ts";
import type { OutageTracker } from "./send-batch.ts";

/** The longest wait between a pause and its automatic resume, however often it resumed before. */
export const AUTO_RESUME_BACKOFF_CAP_MS = 10 * 60 * 1000;

export interface AutoResumePolicy {
  /** AUTO_RESUME_MAX: automatic resumes per campaign before it waits for a person. */
  max: number;
  /** AUTO_RESUME_BACKOFF_MS: the wait after the first pause; it doubles with every automatic resume. */
  backoffMs: number;
}

export type AutoResumeDecision =
  /** Resumed by itself `max` times already: only `smsblast resume` continues it. */
  | { kind: "give-up" }
  | { kind: "wait"; untilMs: number }
  /** Due: probe its platform, and resume it if the platform answers. */
  | { kind: "probe" };

/**
 * When a campaign paused by an outage may resume by itself: `backoffMs × 2^autoResumes` (capped) after its
 * pause, so a provider that keeps failing is given longer each time, and never more than `max` times.
 */
export function decideAutoResume(
  campaign: { autoResumes: number; pausedAt: Date },
  nowMs: number,
  policy: AutoResumePolicy,
): AutoResumeDecision {
  if (campaign.autoResumes >= policy.max) return { kind: "give-up" };
  const waitMs = Math.min(policy.backoffMs * 2 ** campaign.autoResumes, AUTO_RESUME_BACKOFF_CAP_MS);
  const untilMs = campaign.pausedAt.getTime() + waitMs;
  return nowMs < untilMs ? { kind: "wait", untilMs } : { kind: "probe" };
}

export interface OutageProberDeps {
  db: Database;
  queue: Pick<CampaignQueue, "enqueue" | "scheduleStart">;
  log: Logger;
  probe: (api: ProviderApi) => Promise<ProbeResult>;
  outage: OutageTracker;
  policy: AutoResumePolicy;
  clock?: () => number;
}

/**
 * One round of the outage prober (one process at a time runs it: see the send worker): for every platform with
 * a campaign due, one probe that cannot send; when it answers, the streak is reset and each due campaign
 * resumes (logged and audited). Pauses of other kinds (a person's, refused credentials) are never listed.
 */
export async function probeAndResume(deps: OutageProberDeps): Promise<{ resumed: string[]; probed: ProviderApi[] }> {
  for (const campaignId of await markAutoResumeExhausted(deps.db, deps.policy.max)) {
    deps.log.error(
      { campaignId, max: deps.policy.max },
      "campaign paused by a provider outage has resumed by itself AUTO_RESUME_MAX times; `smsblast resume` continues it",
    );
  }
  const now = (deps.clock ?? Date.now)();
  const due = new Map<ProviderApi, Array<{ id: string; autoResumes: number; pausedAt: Date }>>();
  for (const campaign of await listOutagePausedCampaigns(deps.db, deps.policy.max)) {
    if (decideAutoResume(campaign, now, deps.policy).kind !== "probe") continue;
    due.set(campaign.provider, [...(due.get(campaign.provider) ?? []), campaign]);
  }
  const resumed: string[] = [];
  for (const [provider, campaigns] of due) {
    const probe = await deps.probe(provider);
    if (!probe.up) {
      deps.log.info({ provider, probe: probe.detail }, "provider still down; outage-paused campaigns stay paused");
      continue;
    }
    await deps.outage.recordUp(provider);
    for (const campaign of campaigns) {
      const result = await autoResumeCampaign(deps.db, deps.queue, campaign.id, deps.policy.max);
      if (!result) continue; // a person paused, resumed or cancelled it in between
      const autoResume = campaign.autoResumes + 1;
      resumed.push(campaign.id);
      deps.log.warn(
        { campaignId: campaign.id, provider, probe: probe.detail, autoResume, max: deps.policy.max },
        "provider answers again: campaign resumed by itself",
      );
      await recordAudit(deps.db, { kind: "system", name: "outage-prober" }, "campaign.auto-resume", {
        campaignId: campaign.id,
        details: {
          provider,
          probe: probe.detail,
          autoResume,
          max: deps.policy.max,
          pausedAt: campaign.pausedAt.toISOString(),
        },
      });
    }
  }
  return { resumed, probed: [...due.keys()] };
}
