import { recordAudit } from "../../../access/audit-log.ts";
import { cancelCampaign, pauseCampaign, resumeCampaign } from "../../../campaigns/campaign-control.ts";
import {
  getCampaignStatus,
  getFailureReasons,
  type CampaignStatusReport,
  type FailureReason,
} from "../../../campaigns/campaign-status.ts";
import { canTransition } from "../../../model/campaign-state.ts";
import { isUserError } from "../../../model/errors.ts";
import { roleAllows } from "../../../model/roles.ts";
import { isFinalStatus, type CampaignStatus } from "../../../model/states.ts";
import type { ApiContext } from "../../../runtime/api-context.ts";
import type { ApiApp } from "../../api-app.ts";
import { actorOf } from "../../auth.ts";
import { count, html, type Html } from "../html.ts";
import { csrfField, formatTime, notice, page, statusChip, table, type Viewer } from "../layout.ts";
import { sendPage } from "../respond.ts";

const REASON_WORDS: Readonly<Record<FailureReason["state"], string>> = {
  failed: "refused by the provider",
  undelivered: "not delivered to the handset",
  unknown: "outcome unknown",
  no_report: "no delivery report",
};

/** The counts a person reads, from the status report: every recipient in exactly one of them. */
function countsOf(report: CampaignStatusReport) {
  const r = report.recipients;
  const accepted = r.accepted + r.sent + r.delivered + r.undelivered + r.no_report;
  return {
    total: r.total,
    done: r.total - r.pending,
    accepted,
    delivered: r.delivered,
    undelivered: r.undelivered,
    awaitingReport: report.delivery.awaitingReport,
    noReport: r.no_report,
    failed: r.failed,
    unknown: r.unknown,
    pending: r.pending,
    cancelled: r.cancelled,
  };
}

function livePanel(report: CampaignStatusReport, failures: FailureReason[]): Html {
  const c = countsOf(report);
  const box = (key: string, label: string, value: number) =>
    html`<div>
      <dt>${label}</dt>
      <dd data-count="${key}">${count(value)}</dd>
    </div>`;
  return html`<div
    id="live"
    data-status="${report.status}"
    data-done="${c.done}"
    data-total="${c.total}"
    data-final="${isFinalStatus(report.status) ? "true" : "false"}"
  >
    <p class="hint">
      Created ${formatTime(report.createdAt)} · started ${formatTime(report.startedAt)} · finished
      ${formatTime(report.finishedAt)}
    </p>
    <p>
      Status:
      <span id="status">${statusChip(report.status)}</span>
      ${report.statusReason ? html`<span class="hint" id="status-reason">${report.statusReason}</span>` : ""}
    </p>
    ${
      report.readingList
        ? html`<p class="hint" id="reading-list">
            Still reading its list: the totals grow as it is read, and more batches will come.
          </p>`
        : ""
    }
    <label for="progress">Sent ${count(c.done)} of ${count(c.total)}</label>
    <progress id="progress" max="${Math.max(1, c.total)}" value="${c.done}">
      ${count(c.done)} of ${count(c.total)}
    </progress>
    <p class="hint" id="rate" aria-live="off"></p>
    <dl class="counts" id="counts">
      ${box("accepted", "Accepted", c.accepted)} ${box("delivered", "Delivered", c.delivered)}
      ${box("undelivered", "Undelivered", c.undelivered)} ${box("awaiting", "Awaiting report", c.awaitingReport)}
      ${box("failed", "Failed", c.failed)} ${box("unknown", "Unknown", c.unknown)}
      ${c.pending > 0 ? box("pending", "Waiting to send", c.pending) : ""}
      ${c.noReport > 0 ? box("no-report", "No report", c.noReport) : ""}
      ${c.cancelled > 0 ? box("cancelled", "Cancelled", c.cancelled) : ""}
    </dl>
    ${
      c.unknown > 0
        ? html`<p id="unknown-explained">
            ${count(c.unknown)} recipient${c.unknown === 1 ? "'s" : "s'"} outcome is unknown: a request left and no
            answer came back, so smsblast does not send again (which could text them twice); a delivery report settles
            them.
          </p>`
        : ""
    }
    ${
      failures.length > 0
        ? html`<h2>Why some did not get it</h2>
            ${table({
              id: "failures",
              headers: ["Reason", "Code", "Provider's words", "Recipients"],
              rows: failures.map((f) => [REASON_WORDS[f.state], f.code ?? "–", f.message ?? "–", count(f.count)]),
            })}`
        : ""
    }
  </div>`;
}

function controls(report: CampaignStatusReport, viewer: Viewer): Html {
  const status = report.status as CampaignStatus;
  const may = roleAllows(viewer.role, "campaigns:write");
  const post = (action: string, label: string, kind = "secondary") =>
    html`<form method="post" action="/campaigns/${report.id}/${action}" class="inline-form">
      ${csrfField(viewer)}<button type="submit" class="${kind}">${label}</button>
    </form>`;
  return html`<div id="controls" data-status="${status}">
    ${may && status !== "paused" && canTransition(status, "paused") ? post("pause", "Pause") : ""}
    ${may && status === "paused" ? post("resume", "Resume") : ""}
    ${
      may && canTransition(status, "cancelled")
        ? html`<a class="button secondary" href="/campaigns/${report.id}/cancel">Cancel…</a>`
        : ""
    }
  </div>`;
}

function campaignPage(viewer: Viewer, report: CampaignStatusReport, failures: FailureReason[], error?: string): Html {
  const downloads = roleAllows(viewer.role, "reports:read");
  return page({
    title: report.name,
    viewer,
    section: "campaigns",
    body: html`<h1>${report.name}</h1>
      <p class="hint">Template ${report.templateId} (${report.provider})</p>
      ${error ? notice("error", error) : ""}
      <section
        aria-label="Progress"
        data-live="/campaigns/${report.id}/live"
        data-events="/api/v1/campaigns/${report.id}/events"
        data-poll="/api/v1/campaigns/${report.id}"
      >
        ${livePanel(report, failures)}
      </section>
      ${controls(report, viewer)}
      ${
        report.purgedAt
          ? html`<h2>Downloads</h2>
              <p id="purged">
                The recipient detail of this campaign was purged on ${formatTime(report.purgedAt)} (retention): the
                counts above are kept, the per-recipient report and the rejected rows are not.
              </p>`
          : downloads
            ? html`<h2>Downloads</h2>
                <ul>
                  <li>
                    <a href="/api/v1/campaigns/${report.id}/report.csv" download>Every recipient's outcome (CSV)</a>
                  </li>
                  <li>
                    <a href="/api/v1/campaigns/${report.id}/rejects.csv" download>Rejected rows (CSV)</a>:
                    ${count(report.rows.rejected)} rejected, ${count(report.rows.duplicates)} duplicates
                  </li>
                </ul>`
            : ""
      }
      <p><a href="/campaigns">All campaigns</a></p>`,
  });
}

export function registerCampaignPage(scope: ApiApp, ctx: ApiContext): void {
  const show = async (id: string) => {
    const report = await getCampaignStatus(ctx.db, id);
    return { report, failures: await getFailureReasons(ctx.db, id) };
  };

  scope.get<{ Params: { id: string } }>(
    "/campaigns/:id",
    { config: { console: "campaigns:read" }, schema: { hide: true } },
    async (request, reply) => {
      const { report, failures } = await show(request.params.id);
      return sendPage(reply, campaignPage(request.viewer!, report, failures));
    },
  );

  // The live part alone, fetched by the page's script on every server-sent event.
  scope.get<{ Params: { id: string } }>(
    "/campaigns/:id/live",
    { config: { console: "campaigns:read" }, schema: { hide: true } },
    async (request, reply) => {
      const { report, failures } = await show(request.params.id);
      return sendPage(reply, html`${livePanel(report, failures)}${controls(report, request.viewer!)}`);
    },
  );

  const act = (action: "pause" | "resume" | "cancel") =>
    scope.post<{ Params: { id: string } }>(
      `/campaigns/:id/${action}`,
      { config: { console: "campaigns:write" }, schema: { hide: true } },
      async (request, reply) => {
        const id = request.params.id;
        const actor = actorOf(request);
        try {
          if (action === "pause") await pauseCampaign(ctx.db, id, `paused by ${actor.name}`);
          else if (action === "cancel") await cancelCampaign(ctx.db, id, `cancelled by ${actor.name}`);
          else await resumeCampaign(ctx.db, ctx.queue, id);
        } catch (error) {
          if (!isUserError(error) || error.kind !== "conflict") throw error;
          const { report, failures } = await show(id);
          return sendPage(
            reply.code(409),
            campaignPage(request.viewer!, report, failures, `Not done: ${error.message}`),
          );
        }
        await recordAudit(ctx.db, actor, `campaign.${action}`, { campaignId: id });
        return reply.redirect(`/campaigns/${id}`, 303);
      },
    );
  act("pause");
  act("resume");
  act("cancel");

  scope.get<{ Params: { id: string } }>(
    "/campaigns/:id/cancel",
    { config: { console: "campaigns:write" }, schema: { hide: true } },
    async (request, reply) => {
      const report = await getCampaignStatus(ctx.db, request.params.id);
      const viewer = request.viewer!;
      return sendPage(
        reply,
        page({
          title: `Cancel ${report.name}`,
          viewer,
          section: "campaigns",
          body: html`<h1>Cancel ${report.name}?</h1>
            <p>
              Recipients not yet sent to (${count(report.recipients.pending)}) will never get this message. Batches
              already on their way finish. A cancelled campaign cannot be resumed.
            </p>
            <form method="post" action="/campaigns/${report.id}/cancel">
              ${csrfField(viewer)}
              <button type="submit" class="danger">Yes, cancel the campaign</button>
              <a class="button secondary" href="/campaigns/${report.id}">No, keep it</a>
            </form>`,
        }),
      );
    },
  );
}
