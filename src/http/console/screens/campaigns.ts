import { listCampaigns } from "../../../campaigns/campaign-list.ts";
import { CAMPAIGN_STATUSES, type CampaignStatus } from "../../../model/states.ts";
import { roleAllows } from "../../../model/roles.ts";
import type { ApiContext } from "../../../runtime/api-context.ts";
import type { ApiApp } from "../../api-app.ts";
import { count, html } from "../html.ts";
import { formatTime, page, statusChip, table } from "../layout.ts";
import { sendPage } from "../respond.ts";

const PAGE_SIZE = 20;

export function registerCampaignList(scope: ApiApp, ctx: ApiContext): void {
  scope.get<{ Querystring: { status?: string; page?: string } }>(
    "/campaigns",
    { config: { console: "campaigns:read" }, schema: { hide: true } },
    async (request, reply) => {
      const status = (CAMPAIGN_STATUSES as readonly string[]).includes(request.query.status ?? "")
        ? (request.query.status as CampaignStatus)
        : undefined;
      const pageNumber = Math.max(1, Math.min(10_000, Number.parseInt(request.query.page ?? "1", 10) || 1));
      // One more than a page tells whether there is a next one.
      const found = await listCampaigns(ctx.db, {
        status,
        limit: PAGE_SIZE + 1,
        offset: (pageNumber - 1) * PAGE_SIZE,
      });
      const campaigns = found.slice(0, PAGE_SIZE);
      const link = (p: number) =>
        `/campaigns?${new URLSearchParams({ ...(status ? { status } : {}), page: String(p) })}`;
      const viewer = request.viewer!;
      const body = html`<h1>Campaigns</h1>
        ${
          roleAllows(viewer.role, "campaigns:write")
            ? html`<p><a class="button" href="/campaigns/new">New campaign</a></p>`
            : ""
        }
        <form method="get" action="/campaigns" class="filters">
          <div>
            <label for="status">Status</label>
            <select id="status" name="status">
              <option value="">any status</option>
              ${CAMPAIGN_STATUSES.map(
                (s) => html`<option value="${s}" ${s === status ? html`selected` : ""}>${s}</option>`,
              )}
            </select>
          </div>
          <button type="submit" class="secondary">Filter</button>
        </form>
        ${
          campaigns.length === 0
            ? html`<p>
                ${
                  status
                    ? `No ${status} campaigns.`
                    : "No campaigns yet. Start one with New campaign: upload a CSV, check it, send."
                }
              </p>`
            : table({
                caption: `${status ? `${status} campaigns` : "All campaigns"}, newest first (page ${pageNumber})`,
                id: "campaigns",
                headers: [
                  "Name",
                  "Status",
                  "Recipients",
                  "Accepted",
                  "Failed",
                  "Unknown",
                  "Created",
                  "Started",
                  "Finished",
                ],
                rows: campaigns.map((c) => [
                  html`<a href="/campaigns/${c.id}">${c.name}</a>`,
                  statusChip(c.status),
                  count(c.recipients),
                  count(c.accepted),
                  count(c.failed),
                  count(c.unknown),
                  formatTime(c.createdAt),
                  formatTime(c.startedAt),
                  formatTime(c.finishedAt),
                ]),
              })
        }
        <nav class="pager" aria-label="Pages">
          ${pageNumber > 1 ? html`<a href="${link(pageNumber - 1)}" rel="prev">Newer</a>` : ""}
          ${found.length > PAGE_SIZE ? html`<a href="${link(pageNumber + 1)}" rel="next">Older</a>` : ""}
        </nav>`;
      return sendPage(reply, page({ title: "Campaigns", viewer, section: "campaigns", body }));
    },
  );
}
