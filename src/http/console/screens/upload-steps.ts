import { randomUUID } from "node:crypto";
import { launchOnce } from "../../../campaigns/launch-request.ts";
import { launchUploadCampaign, UploadAlreadyLaunchedError } from "../../../campaigns/launch-campaign.ts";
import {
  checkUpload,
  describeUpload,
  mapUpload,
  previewUploadRow,
  type UploadCheck,
  type UploadMapping,
  type UploadView,
} from "../../../campaigns/uploads.ts";
import { recordAudit } from "../../../access/audit-log.ts";
import { isUserError, type UserError } from "../../../model/errors.ts";
import type { ApiContext } from "../../../runtime/api-context.ts";
import type { ApiApp } from "../../api-app.ts";
import { actorOf } from "../../auth.ts";
import { launchAndAudit, type CampaignCreate } from "../../routes/campaign-routes.ts";
import type { FormBody } from "../console-session.ts";
import { count, html, type Html } from "../html.ts";
import { csrfField, describedBy, fieldError, notice, page, table, type Viewer } from "../layout.ts";
import { sendPage } from "../respond.ts";
import { formatInZone, isTimeZone } from "../zoned-time.ts";
import { readWhen, whenFieldset } from "../when.ts";
import { PROVIDER_LABELS, readChoice, templateText, templateVariables, type MessageChoice } from "./new-campaign.ts";

type Query = Record<string, string | undefined>;
type Errors = Record<string, string>;

/** "First Name" and "first_name" match: what a person means by the same column name. */
const nameKey = (name: string) => name.toLowerCase().replace(/[\s_-]+/g, "");

function steps(current: 2 | 3 | 4 | 5): Html {
  const names = ["Message and file", "Columns", "Check", "Preview and time", "Confirm"];
  return html`<ol class="hint" aria-label="Steps">
    ${names.map((n, i) =>
      i + 1 === current ? html`<li aria-current="step"><strong>${n}</strong></li>` : html`<li>${n}</li>`,
    )}
  </ol>`;
}

function mapPage(options: {
  viewer: Viewer;
  upload: UploadView;
  choice: MessageChoice;
  content: string | null;
  values?: FormBody;
  errors?: Errors;
}): Html {
  const { viewer, upload, choice, content, errors = {} } = options;
  const values: FormBody = options.values ?? {};
  const variables = content === null ? [] : templateVariables(choice, content);
  const phone = values.phoneColumn ?? upload.suggestedPhoneColumn ?? "";
  const columnOptions = (selected: string | undefined) =>
    upload.columns.map((c) => html`<option value="${c}" ${c === selected ? html`selected` : ""}>${c}</option>`);
  const problem = upload.suggestedPhoneColumn === null;
  return page({
    title: "Columns",
    viewer,
    section: "new",
    body: html`<h1>Which column is what</h1>
      ${steps(2)}
      <p>
        ${upload.filename ?? "The upload"}: ${count(upload.rows)} data rows, columns
        ${upload.columns.map((c, i) => html`${i > 0 ? ", " : ""}<code>${c}</code>`)}.
      </p>
      ${
        problem
          ? notice(
              "error",
              html`<strong id="file-problem">No phone column.</strong> None of the columns is named like a phone number
                column (phone, mobile, msisdn…) or holds phone numbers in its first rows. Choose the column that holds
                the numbers below, or <a href="/campaigns/new">upload another file</a>.`,
            )
          : ""
      }
      <form method="post" action="/uploads/${upload.uploadId}/map">
        ${csrfField(viewer)}
        <input type="hidden" name="provider" value="${choice.provider}" />
        <input type="hidden" name="templateId" value="${choice.templateId}" />
        ${
          choice.templateContent
            ? html`<input type="hidden" name="templateContent" value="${choice.templateContent}" />`
            : ""
        }
        <p>Template ${choice.templateId} via ${PROVIDER_LABELS[choice.provider]}.</p>
        ${
          content !== null
            ? html`<p>Its text: <q class="template">${content}</q></p>`
            : html`<p class="hint">
                The template's text is unknown here, so its variables cannot be listed and no preview is possible.
                <a href="/campaigns/new">Go back</a> to type the text in.
              </p>`
        }
        <fieldset>
          <legend>Recipient</legend>
          <label for="phoneColumn">Phone number column</label>
          <select id="phoneColumn" name="phoneColumn" required ${describedBy("phoneColumn", errors.phoneColumn)}>
            ${phone === "" ? html`<option value="">— choose a column —</option>` : ""} ${columnOptions(phone)}
          </select>
          ${fieldError("phoneColumn", errors.phoneColumn)}
          <label for="countryColumn">Country column (optional)</label>
          <select id="countryColumn" name="countryColumn" ${describedBy("countryColumn", errors.countryColumn)}>
            <option value="">— none: use the region below —</option>
            ${columnOptions(
              values.countryColumn ??
                upload.columns.find((c) => ["country", "countrycode", "region"].includes(nameKey(c))),
            )}
          </select>
          ${fieldError("countryColumn", errors.countryColumn)}
          <label for="region">Region of numbers without a country code (optional)</label>
          <p class="hint" id="region-hint">Two letters, such as SG. Numbers with + or 00 need none.</p>
          <input
            type="text"
            id="region"
            name="region"
            maxlength="2"
            value="${values.region ?? ""}"
            ${describedBy("region", errors.region, true)}
          />
          ${fieldError("region", errors.region)}
        </fieldset>
        ${
          variables.length > 0
            ? html`<fieldset>
                <legend>Template variables</legend>
                ${variables.map((v) => {
                  const matched = values[`map.${v}`] ?? upload.columns.find((c) => nameKey(c) === nameKey(v)) ?? "";
                  return html`<label for="map-${v}">${v}: from column</label>
                    <select id="map-${v}" name="map.${v}" ${describedBy(`map-${v}`, errors[`map.${v}`])}>
                      <option value="">— none: the same value for everyone —</option>
                      ${columnOptions(matched)}
                    </select>
                    ${fieldError(`map-${v}`, errors[`map.${v}`])}
                    <label for="param-${v}">${v}: value for everyone (when no column)</label>
                    <input type="text" id="param-${v}" name="param.${v}" value="${values[`param.${v}`] ?? ""}" />`;
                })}
              </fieldset>`
            : ""
        }
        ${fieldError("mapping", errors.mapping)}
        <button type="submit">Check the list</button>
      </form>
      ${
        upload.sample.length > 0
          ? table({
              caption: "The first rows of the file",
              id: "sample",
              headers: upload.columns,
              rows: upload.sample,
            })
          : ""
      }`,
  });
}

/** Which form field a use case's refusal belongs to (its `field` names the mapping's). */
function fieldOf(error: UserError): string {
  return error.field ?? "mapping";
}

function checkPage(options: { viewer: Viewer; upload: UploadView; check: UploadCheck }): Html {
  const { viewer, upload, check } = options;
  const mapping = upload.mapping!;
  const blocking = check.problems.filter((p) => p.code !== "template_content_unknown");
  const info = check.problems.filter((p) => p.code === "template_content_unknown");
  const back = html`<p>
    <a href="${mapLink(upload)}">Change the columns</a> · <a href="/campaigns/new">Upload another file</a>
  </p>`;
  if (blocking.length > 0) {
    // File-level problems come first and alone: no count means anything while one of these stands.
    return page({
      title: "Check",
      viewer,
      section: "new",
      body: html`<h1>This list cannot be sent yet</h1>
        ${steps(3)}
        <ul class="problems" id="file-problems">
          ${blocking.map((p) => html`<li class="field-error">${problemWords(p.code, p.message)}</li>`)}
        </ul>
        ${back}`,
    });
  }
  const nextHref =
    mapping.content === null ? `/uploads/${upload.uploadId}/preview?skip=1` : `/uploads/${upload.uploadId}/preview`;
  const rejected = check.invalid + check.suppressed + check.duplicates;
  return page({
    title: "Check",
    viewer,
    section: "new",
    body: html`<h1>Check</h1>
      ${steps(3)} ${info.map((p) => notice("info", p.message))}
      <dl class="counts" id="check-counts">
        <div>
          <dt>Rows</dt>
          <dd data-count="rows">${count(check.rows)}</dd>
        </div>
        <div>
          <dt>Will be sent</dt>
          <dd data-count="valid">${count(check.valid)}</dd>
        </div>
        <div>
          <dt>Invalid numbers</dt>
          <dd data-count="invalid">${count(check.invalid)}</dd>
        </div>
        <div>
          <dt>Duplicates skipped</dt>
          <dd data-count="duplicates">${count(check.duplicates)}</dd>
        </div>
        <div>
          <dt>Suppressed</dt>
          <dd data-count="suppressed">${count(check.suppressed)}</dd>
        </div>
        <div>
          <dt>Provider requests</dt>
          <dd data-count="requests">${count(check.requests)}</dd>
        </div>
        ${
          check.segments
            ? html`<div>
                <dt>SMS segments in all</dt>
                <dd data-count="segments">${count(check.segments.total)}</dd>
              </div>`
            : ""
        }
        ${
          check.cost !== null
            ? html`<div>
                <dt>Estimated cost</dt>
                <dd>${check.cost}</dd>
              </div>`
            : ""
        }
      </dl>
      ${
        check.rowErrors.length > 0
          ? html`<h2>Rows that will not be sent</h2>
              ${table({
                caption:
                  rejected > check.rowErrors.length
                    ? `The first ${check.rowErrors.length} of ${count(rejected)}`
                    : `All ${count(check.rowErrors.length)}`,
                id: "row-errors",
                headers: ["Row", "Value", "Reason"],
                rows: check.rowErrors.map((e) => [String(e.row), e.value, e.reason]),
              })}
              <p>
                <a href="/api/v1/uploads/${upload.uploadId}/rejects.csv" download>Download every rejected row (CSV)</a>
                (invalid numbers, duplicates and suppressed numbers).
              </p>`
          : html`<p>Every row has a number that can be sent to.</p>`
      }
      ${back}
      <p><a class="button" href="${nextHref}">Continue</a></p>`,
  });
}

function problemWords(code: string, message: string): string {
  switch (code) {
    case "empty":
      return "The file is empty: it has a header but no data rows.";
    case "no_recipients":
      return "No row has a number that can be sent to: is the phone column the right one?";
    case "missing_variables":
      return `The template needs a value that no column and no fixed value gives: ${message.replace(/^no param and no column for template variables? /, "")}.`;
    default:
      return message;
  }
}

function mapLink(upload: UploadView): string {
  const m = upload.mapping;
  const q = new URLSearchParams(
    m
      ? {
          provider: m.provider,
          templateId: m.templateId ?? "",
          ...(m.content?.from === "mapping" ? { content: m.content.text } : {}),
        }
      : {},
  );
  return `/uploads/${upload.uploadId}/map?${q}`;
}

interface PreviewModel {
  row: number;
  text: string;
  characters: number;
  encoding: string;
  segments: number;
  phone: string | null;
  rejectReason: string | null;
}

function previewPanel(preview: PreviewModel | null, error?: string): Html {
  if (error) return html`<div id="preview">${fieldError("row", error)}</div>`;
  if (!preview) return html`<div id="preview"></div>`;
  return html`<div id="preview" aria-live="polite">
    <h2>Row ${preview.row}${preview.phone ? html`, to ${preview.phone}` : ""}</h2>
    ${preview.rejectReason ? notice("info", `This row will not be sent: ${preview.rejectReason}.`) : ""}
    <p class="message" id="preview-text">${preview.text}</p>
    <p id="preview-measure">
      ${count(preview.characters)} characters · ${preview.encoding} · ${preview.segments} SMS
      segment${preview.segments === 1 ? "" : "s"}
    </p>
  </div>`;
}

function previewPage(options: {
  viewer: Viewer;
  upload: UploadView;
  check: UploadCheck;
  preview: PreviewModel | null;
  previewError?: string;
  values?: Query;
  errors?: Errors;
}): Html {
  const { viewer, upload, check, preview, values = {}, errors = {} } = options;
  return page({
    title: "Preview",
    viewer,
    section: "new",
    body: html`<h1>Preview and time</h1>
      ${steps(4)}
      ${
        upload.mapping?.content
          ? html`<form
                method="get"
                action="/uploads/${upload.uploadId}/preview"
                hx-get="/uploads/${upload.uploadId}/preview"
                hx-select="#preview"
                hx-target="#preview"
                hx-swap="outerHTML"
              >
                <label for="row">Show the message of row number</label>
                <p class="hint" id="row-hint">As in a spreadsheet: the header is row 1.</p>
                <input
                  type="number"
                  id="row"
                  name="row"
                  min="2"
                  value="${preview?.row ?? values.row ?? ""}"
                  ${describedBy("row", options.previewError, true)}
                />
                <button type="submit" class="secondary">Show</button>
              </form>
              ${previewPanel(preview, options.previewError)}
              ${check.segments ? html`<p>The whole campaign: ${count(check.segments.total)} SMS segments.</p>` : ""}`
          : html`<p>The template's text is unknown, so there is no preview.</p>`
      }
      <form method="get" action="/uploads/${upload.uploadId}/confirm">
        ${whenFieldset({ values, errors, cron: false })}
        <button type="submit">Continue</button>
      </form>`,
  });
}

/** The first data row (spreadsheet numbering: the header is row 1) that the check lists no error for. */
function firstSendableRow(check: UploadCheck): number {
  let row = 2;
  for (const e of check.rowErrors) {
    if (e.row === row) row++;
    else if (e.row > row) break;
  }
  return Math.min(row, check.rows + 1);
}

function confirmPage(options: {
  viewer: Viewer;
  upload: UploadView;
  check: UploadCheck;
  startAt: Date | null;
  zone: string;
  name: string;
  error?: string;
  repeat?: boolean;
}): Html {
  const { viewer, upload, check, startAt, zone } = options;
  const mapping = upload.mapping!;
  const n = count(check.valid);
  const what = `${n} message${check.valid === 1 ? "" : "s"}`;
  const label = startAt ? `Schedule ${what} for ${formatInZone(startAt, zone)} (${zone})` : `Send ${what} now`;
  return page({
    title: "Confirm",
    viewer,
    section: "new",
    body: html`<h1>Confirm</h1>
      ${steps(5)}
      <ul>
        <li>List: ${upload.filename ?? "upload"}, ${count(check.rows)} rows, ${n} recipients</li>
        <li>Template ${mapping.templateId ?? ""} via ${PROVIDER_LABELS[mapping.provider]}</li>
        <li>
          ${count(check.requests)} provider
          requests${check.segments ? `, ${count(check.segments.total)} SMS segments` : ""}
        </li>
        <li>${startAt ? `Starts ${formatInZone(startAt, zone)} (${zone})` : "Starts as soon as you confirm"}</li>
      </ul>
      ${options.error ? notice("error", options.error) : ""}
      <form method="post" action="/uploads/${upload.uploadId}/launch" data-once>
        ${csrfField(viewer)}
        <input type="hidden" name="idempotencyKey" value="${randomUUID()}" />
        ${startAt ? html`<input type="hidden" name="startAt" value="${startAt.toISOString()}" />` : ""}
        <input type="hidden" name="zone" value="${zone}" />
        <label for="name">Campaign name</label>
        <input type="text" id="name" name="name" maxlength="200" value="${options.name}" />
        ${
          options.repeat
            ? html`<label class="choice"
                ><input type="checkbox" name="allowRepeat" value="1" /> Send it again anyway: I know this list was sent
                in the last 24 hours</label
              >`
            : ""
        }
        <button type="submit" id="send">${label}</button>
      </form>
      <p><a href="/uploads/${upload.uploadId}/preview">Back</a></p>`,
  });
}

export function registerUploadSteps(scope: ApiApp, ctx: ApiContext): void {
  const write = { console: "campaigns:write" as const };
  const uploadOf = async (id: string) => describeUpload(ctx.db, id, ctx.config.defaultRegion);
  const checkOf = (id: string) =>
    checkUpload({ db: ctx.db, log: ctx.log }, id, {
      batchSize: ctx.config.send.batchSize,
      segmentPrice: ctx.config.uploads.segmentPrice,
    });

  scope.get<{ Params: { id: string }; Querystring: Query }>(
    "/uploads/:id/map",
    { config: write, schema: { hide: true } },
    async (request, reply) => {
      const upload = await uploadOf(request.params.id);
      if (upload.campaignId) return reply.redirect(`/campaigns/${upload.campaignId}`, 303);
      const { choice } = readChoice(request.query);
      if (!choice) return reply.redirect("/campaigns/new", 303);
      const content = await templateText(ctx, choice);
      return sendPage(reply, mapPage({ viewer: request.viewer!, upload, choice, content }));
    },
  );

  scope.post<{ Params: { id: string }; Body: FormBody }>(
    "/uploads/:id/map",
    { config: write, schema: { hide: true } },
    async (request, reply) => {
      const form = request.body ?? {};
      const upload = await uploadOf(request.params.id);
      const { choice } = readChoice(form);
      if (!choice) return reply.redirect("/campaigns/new", 303);
      const content = await templateText(ctx, choice);
      const errors: Errors = {};
      if (!form.phoneColumn) errors.phoneColumn = "choose the column that holds the phone numbers";
      const region = form.region?.trim().toUpperCase() || undefined;
      if (region && !/^[A-Z]{2}$/.test(region)) errors.region = "two letters, such as SG";
      const map: Record<string, string> = {};
      const params: Record<string, string> = {};
      for (const v of content === null ? [] : templateVariables(choice, content)) {
        if (form[`map.${v}`]) map[v] = form[`map.${v}`]!;
        else if (form[`param.${v}`]) params[v] = form[`param.${v}`]!;
      }
      const again = (status: number) =>
        sendPage(
          reply.code(status),
          mapPage({ viewer: request.viewer!, upload, choice, content, values: form, errors }),
        );
      if (Object.keys(errors).length > 0) return again(400);
      const mapping: UploadMapping = {
        phoneColumn: form.phoneColumn!,
        ...(form.countryColumn ? { countryColumn: form.countryColumn } : {}),
        ...(region ? { region } : {}),
        map,
        provider: choice.provider,
        templateId: choice.templateId,
        params,
        ...(choice.templateContent ? { templateContent: choice.templateContent } : {}),
      };
      try {
        await mapUpload({ db: ctx.db, log: ctx.log, templates: ctx.templates }, upload.uploadId, mapping);
      } catch (error) {
        if (!isUserError(error) || error.kind === "not-found") throw error;
        const field = fieldOf(error);
        errors[field === "map" ? "mapping" : field] = error.message;
        return again(400);
      }
      await recordAudit(ctx.db, actorOf(request), "upload.map", {
        details: { uploadId: upload.uploadId, provider: mapping.provider },
      });
      return reply.redirect(`/uploads/${upload.uploadId}/check`, 303);
    },
  );

  scope.get<{ Params: { id: string } }>(
    "/uploads/:id/check",
    { config: write, schema: { hide: true } },
    async (request, reply) => {
      const upload = await uploadOf(request.params.id);
      if (upload.campaignId) return reply.redirect(`/campaigns/${upload.campaignId}`, 303);
      if (!upload.mapping) return reply.redirect(mapLink(upload), 303);
      const check = await checkOf(upload.uploadId);
      return sendPage(reply, checkPage({ viewer: request.viewer!, upload, check }));
    },
  );

  scope.get<{ Params: { id: string }; Querystring: Query }>(
    "/uploads/:id/preview",
    { config: write, schema: { hide: true } },
    async (request, reply) => {
      const upload = await uploadOf(request.params.id);
      if (upload.campaignId) return reply.redirect(`/campaigns/${upload.campaignId}`, 303);
      if (!upload.mapping) return reply.redirect(mapLink(upload), 303);
      const asked = request.query.row;
      // htmx asks for the preview panel only (hx-select): one row, no check of the whole list.
      const panelOnly = request.headers["hx-request"] === "true" && asked !== undefined && asked !== "";
      const check = panelOnly ? null : await checkOf(upload.uploadId);
      let preview: PreviewModel | null = null;
      let previewError: string | undefined;
      if (upload.mapping.content !== null) {
        const row = check
          ? asked === undefined || asked === ""
            ? firstSendableRow(check)
            : Number(asked)
          : Number(asked);
        if (!Number.isInteger(row) || row < 1) previewError = "a row number is a whole number from 1";
        else {
          try {
            preview = await previewUploadRow(ctx.db, upload.uploadId, row);
          } catch (error) {
            if (!isUserError(error) || error.code !== "row_not_found") throw error;
            previewError = `row ${row} is not a data row of this file (the header is row 1)`;
          }
        }
      }
      if (!check) return sendPage(reply, previewPanel(preview, previewError));
      return sendPage(
        reply,
        previewPage({
          viewer: request.viewer!,
          upload,
          check,
          preview,
          previewError,
          values: request.query,
        }),
      );
    },
  );

  scope.get<{ Params: { id: string }; Querystring: Query }>(
    "/uploads/:id/confirm",
    { config: write, schema: { hide: true } },
    async (request, reply) => {
      const upload = await uploadOf(request.params.id);
      if (upload.campaignId) return reply.redirect(`/campaigns/${upload.campaignId}`, 303);
      if (!upload.mapping) return reply.redirect(mapLink(upload), 303);
      const check = await checkOf(upload.uploadId);
      const q = request.query;
      const { when, errors } = readWhen(q);
      if (!when || when.kind === "cron") {
        return sendPage(
          reply.code(400),
          previewPage({ viewer: request.viewer!, upload, check, preview: null, values: q, errors }),
        );
      }
      const zone = when.zone;
      const startAt = when.kind === "later" ? when.startAt : null;
      const name = `${upload.filename ?? "upload"} ${new Date().toISOString().slice(0, 10)}`;
      return sendPage(reply, confirmPage({ viewer: request.viewer!, upload, check, startAt, zone, name }));
    },
  );

  scope.post<{ Params: { id: string }; Body: FormBody }>(
    "/uploads/:id/launch",
    { config: write, schema: { hide: true } },
    async (request, reply) => {
      const form = request.body ?? {};
      const upload = await uploadOf(request.params.id);
      const mapping = upload.mapping;
      if (!mapping) return reply.redirect(mapLink(upload), 303);
      const startAt = form.startAt && !Number.isNaN(Date.parse(form.startAt)) ? form.startAt : undefined;
      const body: CampaignCreate = {
        uploadId: upload.uploadId,
        name: form.name?.trim() || undefined,
        templateId: mapping.templateId ?? "",
        params: {},
        map: {},
        provider: mapping.provider,
        onUnknown: "mark-unknown",
        startAt,
        providerSchedule: false,
        dryRun: false,
        templateCheck: true,
        allowRepeat: form.allowRepeat === "1",
      };
      const key = `console:${form.idempotencyKey ?? ""}`;
      try {
        // One key per rendering of the confirm page: a double click or a re-sent form gets the first campaign.
        const outcome = await launchOnce(ctx.db, { tokenId: request.apiToken!.id, key, request: body }, () =>
          launchAndAudit(ctx, actorOf(request), body, launchUploadCampaign),
        );
        return reply.redirect(`/campaigns/${outcome.value.campaignId}`, 303);
      } catch (error) {
        if (error instanceof UploadAlreadyLaunchedError && error.campaignId)
          return reply.redirect(`/campaigns/${error.campaignId}`, 303);
        if (!isUserError(error) || error.kind === "not-found") throw error;
        const check = await checkOf(upload.uploadId);
        const zone = form.zone && isTimeZone(form.zone) ? form.zone : "UTC";
        return sendPage(
          reply.code(error.kind === "conflict" ? 409 : 400),
          confirmPage({
            viewer: request.viewer!,
            upload,
            check,
            startAt: startAt ? new Date(startAt) : null,
            zone,
            name: form.name ?? "",
            error: error.message,
            repeat: error.code === "repeat_launch",
          }),
        );
      }
    },
  );
}
