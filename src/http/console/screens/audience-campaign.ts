import { randomUUID } from "node:crypto";
import type { FastifyReply } from "fastify";
import { recordAudit } from "../../../access/audit-log.ts";
import { launchOnce } from "../../../campaigns/launch-request.ts";
import { addSchedule } from "../../../campaigns/recurring-campaigns.ts";
import type { SmsTemplate } from "../../../campaigns/template-catalog.ts";
import { listSegments, listTags } from "../../../recipients/audience-lists.ts";
import { isUserError } from "../../../model/errors.ts";
import { PROVIDER_APIS } from "../../../model/states.ts";
import type { ApiContext } from "../../../runtime/api-context.ts";
import type { ApiApp } from "../../api-app.ts";
import { actorOf } from "../../auth.ts";
import { launchAndAudit, type CampaignCreate } from "../../routes/campaign-routes.ts";
import type { FormBody } from "../console-session.ts";
import { count, html, type Html } from "../html.ts";
import { csrfField, describedBy, fieldError, notice, page, type Viewer } from "../layout.ts";
import { sendPage } from "../respond.ts";
import { describeWhen, readWhen, whenFieldset, type When } from "../when.ts";
import { PROVIDER_LABELS, readChoice, type MessageChoice } from "./new-campaign.ts";

// A campaign to contacts already in the database (a tag or a saved segment): no file, so no column step;
// template variables take contact attributes (`--map var=attribute`) or fixed values. It can also recur.

type Query = Record<string, string | undefined>;
type Errors = Record<string, string>;

/** "first_name=name" lines → {first_name: "name"}; the first malformed line is returned as an error. */
function readPairs(text: string | undefined): { pairs: Record<string, string>; error?: string } {
  const pairs: Record<string, string> = {};
  for (const line of (text ?? "")
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)) {
    const eq = line.indexOf("=");
    if (eq < 1) return { pairs, error: `"${line}" is not name=value` };
    pairs[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return { pairs };
}

async function formPage(ctx: ApiContext, viewer: Viewer, values: Query, errors: Errors = {}): Promise<Html> {
  const [tags, segments, templates] = await Promise.all([
    listTags(ctx.db),
    listSegments(ctx.db),
    ctx.templates.list({ limit: 100 }).then(
      (p) => p.templates,
      (): SmsTemplate[] => [],
    ),
  ]);
  const option = (value: string, label: string, selected: string | undefined) =>
    html`<option value="${value}" ${value === selected ? html`selected` : ""}>${label}</option>`;
  return page({
    title: "New campaign to contacts",
    viewer,
    section: "new",
    body: html`<h1>New campaign to contacts in the database</h1>
      <p>Or <a href="/campaigns/new">upload a file</a> instead.</p>
      ${
        tags.length + segments.length === 0
          ? notice("info", html`There are no contacts yet: import some under <a href="/audience">Audience</a>.`)
          : ""
      }
      <form method="get" action="/campaigns/new/audience/confirm">
        <fieldset>
          <legend>Audience</legend>
          <label for="audience">Tag or segment</label>
          <select id="audience" name="audience" ${describedBy("audience", errors.audience)}>
            <option value="">— choose —</option>
            ${segments.map((s) => option(s.name, `segment ${s.name} (${count(s.contacts)} sendable)`, values.audience))}
            ${tags.map((t) => option(t.tag, `tag ${t.tag} (${count(t.sendable)} sendable)`, values.audience))}
          </select>
          ${fieldError("audience", errors.audience)}
        </fieldset>
        <fieldset>
          <legend>Message</legend>
          <label for="provider">Provider API</label>
          <select id="provider" name="provider">
            ${PROVIDER_APIS.map((p) => option(p, PROVIDER_LABELS[p], values.provider ?? "messages"))}
          </select>
          ${
            templates.length > 0
              ? html`<label for="templateId">Legacy SMS API template</label>
                  <select id="templateId" name="listedTemplateId" ${describedBy("templateId", errors.templateId)}>
                    <option value="">— choose, or type an id below —</option>
                    ${templates.map((t) => option(t.templateId, `${t.templateId}: ${t.templateName}`, values.listedTemplateId))}
                  </select>`
              : ""
          }
          <label for="templateIdTyped">${templates.length > 0 ? "Or template id" : "Template id"}</label>
          <input type="text" id="templateIdTyped" name="templateIdTyped" value="${values.templateIdTyped ?? ""}" />
          ${fieldError("templateId", errors.templateId)}
          <label for="templateContent">Template text (Messages API and one-per-recipient only)</label>
          <p class="hint" id="templateContent-hint">
            Lets the check find variables without a value (<code>{{name}}</code>).
          </p>
          <textarea
            id="templateContent"
            name="templateContent"
            ${describedBy("templateContent", errors.templateContent, true)}
          >
${values.templateContent ?? ""}</textarea>
          ${fieldError("templateContent", errors.templateContent)}
          <label for="map">Variables from contact attributes (one <code>variable=attribute</code> a line)</label>
          <textarea id="map" name="map" ${describedBy("map", errors.map)}>${values.map ?? ""}</textarea>
          ${fieldError("map", errors.map)}
          <label for="params">Fixed values (one <code>variable=value</code> a line)</label>
          <textarea id="params" name="params" ${describedBy("params", errors.params)}>${values.params ?? ""}</textarea>
          ${fieldError("params", errors.params)}
        </fieldset>
        ${whenFieldset({ values, errors, cron: true })}
        <label for="name">Campaign (or schedule) name</label>
        <input
          type="text"
          id="name"
          name="name"
          maxlength="100"
          value="${values.name ?? ""}"
          ${describedBy("name", errors.name)}
        />
        ${fieldError("name", errors.name)}
        <div><button type="submit">Continue</button></div>
      </form>`,
  });
}

interface AudienceLaunch {
  audience: string;
  choice: MessageChoice;
  map: Record<string, string>;
  params: Record<string, string>;
  when: When;
  name: string;
}

function readLaunch(q: Query): { launch?: AudienceLaunch; errors: Errors } {
  const errors: Errors = {};
  const audience = q.audience?.trim() ?? "";
  if (!audience) errors.audience = "choose a tag or a segment";
  const { choice, errors: choiceErrors } = readChoice(q);
  Object.assign(errors, choiceErrors);
  const map = readPairs(q.map);
  if (map.error) errors.map = map.error;
  const params = readPairs(q.params);
  if (params.error) errors.params = params.error;
  const { when, errors: whenErrors } = readWhen(q);
  Object.assign(errors, whenErrors);
  const name = q.name?.trim() || `${audience} ${new Date().toISOString().slice(0, 10)}`;
  if (when?.kind === "cron" && !/^[\w.-]{1,64}$/.test(q.name?.trim() ?? ""))
    errors.name = "a schedule needs a name: letters, digits, '.', '_' or '-'";
  if (Object.keys(errors).length > 0 || !choice || !when) return { errors };
  return { launch: { audience, choice, map: map.pairs, params: params.pairs, when, name }, errors };
}

function createBody(launch: AudienceLaunch, dryRun: boolean, allowRepeat = false): CampaignCreate {
  return {
    audience: launch.audience,
    name: launch.name,
    templateId: launch.choice.templateId,
    ...(launch.choice.templateContent ? { templateContent: launch.choice.templateContent } : {}),
    params: launch.params,
    map: launch.map,
    provider: launch.choice.provider,
    onUnknown: "mark-unknown",
    startAt: launch.when.kind === "later" ? launch.when.startAt.toISOString() : undefined,
    providerSchedule: false,
    dryRun,
    templateCheck: true,
    allowRepeat,
  };
}

/** The form's fields again, as hidden inputs of the confirm form. */
function carried(q: Query): Html {
  const names = [
    "audience",
    "provider",
    "templateId",
    "listedTemplateId",
    "templateIdTyped",
    "templateContent",
    "map",
    "params",
    "when",
    "date",
    "time",
    "cron",
    "zone",
    "name",
  ];
  return html`${names.map((n) => (q[n] ? html`<input type="hidden" name="${n}" value="${q[n]}" />` : ""))}`;
}

export function registerAudienceCampaign(scope: ApiApp, ctx: ApiContext): void {
  const write = { console: "campaigns:write" as const };
  const refuse = async (reply: FastifyReply, viewer: Viewer, values: Query, errors: Errors) =>
    sendPage(reply.code(400), await formPage(ctx, viewer, values, errors));
  const errorField = (field: string | undefined) =>
    field === "templateId" || field === "templateContent" || field === "audience" || field === "map" || field === "name"
      ? field
      : "audience";

  scope.get<{ Querystring: Query }>(
    "/campaigns/new/audience",
    { config: write, schema: { hide: true } },
    async (request, reply) => sendPage(reply, await formPage(ctx, request.viewer!, request.query)),
  );

  scope.get<{ Querystring: Query }>(
    "/campaigns/new/audience/confirm",
    { config: write, schema: { hide: true } },
    async (request, reply) => {
      const viewer = request.viewer!;
      const q = request.query;
      const { launch, errors } = readLaunch(q);
      if (!launch) return refuse(reply, viewer, q, errors);
      let recipients: number;
      try {
        // A dry run of the very launch: the same pre-flight, the same count, nothing stored.
        recipients = (await launchAndAudit(ctx, actorOf(request), createBody(launch, true), undefined)).recipients;
      } catch (error) {
        if (!isUserError(error)) throw error;
        return refuse(reply, viewer, q, { [errorField(error.field)]: error.message });
      }
      const what = `${count(recipients)} message${recipients === 1 ? "" : "s"}`;
      const label =
        launch.when.kind === "now"
          ? `Send ${what} now`
          : launch.when.kind === "later"
            ? `Schedule ${what} for ${describeWhen(launch.when)}`
            : `Save the schedule ${launch.name}`;
      return sendPage(
        reply,
        page({
          title: "Confirm",
          viewer,
          section: "new",
          body: html`<h1>Confirm</h1>
            <ul>
              <li>Audience ${launch.audience}: ${count(recipients)} sendable contacts now</li>
              <li>Template ${launch.choice.templateId} via ${PROVIDER_LABELS[launch.choice.provider]}</li>
              <li>Starts ${describeWhen(launch.when)}</li>
              ${launch.when.kind === "cron" ? html`<li>Each run texts the audience as it is at that time.</li>` : ""}
            </ul>
            <form method="post" action="/campaigns/new/audience/launch" data-once>
              ${csrfField(viewer)} ${carried(q)}
              <input type="hidden" name="idempotencyKey" value="${randomUUID()}" />
              <button type="submit" id="send">${label}</button>
            </form>
            <p>
              <a href="/campaigns/new/audience?${new URLSearchParams(q as Record<string, string>).toString()}">Back</a>
            </p>`,
        }),
      );
    },
  );

  scope.post<{ Body: FormBody }>(
    "/campaigns/new/audience/launch",
    { config: write, schema: { hide: true } },
    async (request, reply) => {
      const viewer = request.viewer!;
      const form = request.body ?? {};
      const { launch, errors } = readLaunch(form);
      if (!launch) return refuse(reply, viewer, form, errors);
      try {
        if (launch.when.kind === "cron") {
          const next = await addSchedule(
            { db: ctx.db, scheduler: ctx.scheduler, templates: ctx.templates },
            {
              name: launch.name,
              cron: launch.when.cron,
              timezone: launch.when.zone,
              audience: launch.audience,
              templateId: launch.choice.templateId,
              params: launch.params,
              paramColumns: launch.map,
              provider: launch.choice.provider,
              sendOptions: {},
            },
          );
          await recordAudit(ctx.db, actorOf(request), "schedule.add", { details: { name: launch.name } });
          return sendPage(
            reply,
            page({
              title: "Schedule saved",
              viewer,
              section: "campaigns",
              body: html`<h1>Schedule ${launch.name} saved</h1>
                ${notice("success", `The first run is ${describeWhen({ ...launch.when, next })}; a running smsblast scheduler process fires it.`)}
                <p><a href="/campaigns">Campaigns</a></p>`,
            }),
          );
        }
        const body = createBody(launch, false);
        const outcome = await launchOnce(
          ctx.db,
          { tokenId: request.apiToken!.id, key: `console:${form.idempotencyKey ?? ""}`, request: body },
          () => launchAndAudit(ctx, actorOf(request), body, undefined),
        );
        return reply.redirect(`/campaigns/${outcome.value.campaignId}`, 303);
      } catch (error) {
        if (!isUserError(error)) throw error;
        return refuse(reply, viewer, form, { [errorField(error.field)]: error.message });
      }
    },
  );
}
