import type { Readable } from "node:stream";
import fastifyMultipart from "@fastify/multipart";
import type { FastifyReply, FastifyRequest } from "fastify";
import { recordAudit } from "../../../access/audit-log.ts";
import { receiveUpload } from "../../../campaigns/uploads.ts";
import { extractTemplateVariables, templateSyntaxOf } from "../../../campaigns/template-preflight.ts";
import type { SmsTemplate } from "../../../campaigns/template-catalog.ts";
import { isUserError } from "../../../model/errors.ts";
import { PROVIDER_APIS, type ProviderApi } from "../../../model/states.ts";
import type { ApiContext } from "../../../runtime/api-context.ts";
import type { ApiApp } from "../../api-app.ts";
import { actorOf } from "../../auth.ts";
import { html, type Html } from "../html.ts";
import { describedBy, fieldError, page, type Viewer } from "../layout.ts";
import { sendPage } from "../respond.ts";

/** Where the flow goes after the upload: the provider and template ride along until the mapping stores them. */
export interface MessageChoice {
  provider: ProviderApi;
  templateId: string;
  /** The template's text when typed in (the template API cannot say it). */
  templateContent?: string;
}

export const PROVIDER_LABELS: Readonly<Record<ProviderApi, string>> = {
  messages: "Messages API (v1/messages)",
  legacy: "Legacy SMS API (v1/send)",
  custom: "One message per recipient (v1/custom-messages)",
};

export function choiceQuery(choice: MessageChoice): string {
  return new URLSearchParams({
    provider: choice.provider,
    templateId: choice.templateId,
    ...(choice.templateContent ? { content: choice.templateContent } : {}),
  }).toString();
}

type FieldErrors = Partial<Record<"provider" | "templateId" | "templateContent" | "file", string>>;

/** Reads and checks the first step's fields, wherever they came from (query or multipart fields). */
export function readChoice(fields: Record<string, string | undefined>): {
  choice?: MessageChoice;
  errors: FieldErrors;
} {
  const errors: FieldErrors = {};
  const provider = fields.provider ?? "messages";
  if (!(PROVIDER_APIS as readonly string[]).includes(provider)) errors.provider = "choose one of the listed APIs";
  // The first step's form has a list (legacy templates) and a typed id; later steps carry `templateId`.
  const templateId = (fields.listedTemplateId || fields.templateIdTyped || fields.templateId || "").trim();
  if (!templateId) errors.templateId = "choose a template, or type its id";
  else if (templateId.length > 100) errors.templateId = "a template id is at most 100 characters";
  // The template API lists the legacy platform's templates; messages and custom ids live on other platforms.
  else if (fields.listedTemplateId && provider !== "legacy")
    errors.templateId = `the listed templates belong to the legacy SMS API: choose it as the provider, or type a ${provider} template id`;
  const templateContent = (fields.templateContent ?? fields.content ?? "").trim() || undefined;
  if (templateContent && templateContent.length > 2000) errors.templateContent = "at most 2,000 characters";
  else if (templateContent && provider === "legacy")
    errors.templateContent = "a legacy template's text comes from the template API: leave this empty";
  if (Object.keys(errors).length > 0) return { errors };
  return { choice: { provider: provider as ProviderApi, templateId, templateContent }, errors };
}

/** The template's text: the template API's for legacy templates, the text typed in for the others (or none). */
export async function templateText(ctx: ApiContext, choice: MessageChoice): Promise<string | null> {
  if (choice.provider !== "legacy") return choice.templateContent ?? null;
  return ctx.templates.get(choice.templateId).then(
    (t) => t.content,
    () => null,
  );
}

/** Its variables, in the provider's syntax (`%var%` for legacy, `{{var}}` otherwise). */
export function templateVariables(choice: MessageChoice, content: string): string[] {
  return extractTemplateVariables(content, templateSyntaxOf(choice.provider));
}

async function listTemplates(ctx: ApiContext): Promise<{ templates: SmsTemplate[]; error?: string }> {
  try {
    return { templates: (await ctx.templates.list({ limit: 100 })).templates };
  } catch (error) {
    const reason = isUserError(error) || error instanceof Error ? error.message : "no answer";
    return { templates: [], error: reason };
  }
}

function newCampaignPage(options: {
  viewer: Viewer;
  templates: SmsTemplate[];
  templatesError?: string;
  values?: Record<string, string | undefined>;
  errors?: FieldErrors;
}): Html {
  const { viewer, templates, errors = {}, values = {} } = options;
  const provider = values.provider ?? "messages";
  const listed = templates.some((t) => t.templateId === values.templateId);
  const uploadAction = `/campaigns/new/upload?_csrf=${encodeURIComponent(viewer.csrfToken)}`;
  return page({
    title: "New campaign",
    viewer,
    section: "new",
    body: html`<h1>New campaign</h1>
      <p>Four steps: choose the message and upload the list, say which column is what, check, then send.</p>
      <p>
        Or <a href="/campaigns/new/audience">send to contacts already in the database</a> (a tag or a segment, once or
        on a schedule).
      </p>
      <form
        method="post"
        action="${uploadAction}"
        enctype="multipart/form-data"
        id="upload-form"
        data-upload
        novalidate
      >
        <fieldset>
          <legend>1. Message</legend>
          <label for="provider">Provider API</label>
          <select id="provider" name="provider" ${describedBy("provider", errors.provider)}>
            ${PROVIDER_APIS.map(
              (p) => html`<option value="${p}" ${p === provider ? html`selected` : ""}>${PROVIDER_LABELS[p]}</option>`,
            )}
          </select>
          ${fieldError("provider", errors.provider)}
          ${
            templates.length > 0
              ? html`<label for="templateId">Legacy SMS API template</label>
                  <select id="templateId" name="listedTemplateId" ${describedBy("templateId", errors.templateId)}>
                    <option value="">— choose, or type an id below —</option>
                    ${templates.map(
                      (t) =>
                        html`<option
                          value="${t.templateId}"
                          ${t.templateId === (values.listedTemplateId ?? values.templateId) ? html`selected` : ""}
                          data-content="${t.content}"
                        >
                          ${t.templateId}: ${t.templateName}${t.approvalStatus === 1 ? "" : " (not approved)"}
                        </option>`,
                    )}
                  </select>`
              : html`<p class="hint">
                  ${
                    options.templatesError
                      ? `The template list could not be read (${options.templatesError}); type the template id.`
                      : "No templates are listed by the template API; type the template id."
                  }
                </p>`
          }
          <label for="templateIdTyped">${templates.length > 0 ? "Or template id" : "Template id"}</label>
          <p class="hint">
            Messages API and one-per-recipient templates live on other EngageLab platforms: type their id.
          </p>
          <input
            type="text"
            id="templateIdTyped"
            name="templateIdTyped"
            value="${values.templateIdTyped ?? (listed ? "" : (values.templateId ?? ""))}"
            ${templates.length === 0 ? describedBy("templateId", errors.templateId) : ""}
          />
          ${fieldError("templateId", errors.templateId)}
          <label for="templateContent">Template text (Messages API and one-per-recipient only)</label>
          <p class="hint" id="templateContent-hint">
            With the text, the next steps list its variables (<code>{{name}}</code>), preview each message and count SMS
            segments. A legacy template's text comes from the template API.
          </p>
          <textarea
            id="templateContent"
            name="templateContent"
            ${describedBy("templateContent", errors.templateContent, true)}
          >
${values.templateContent ?? ""}</textarea>
          ${fieldError("templateContent", errors.templateContent)}
          <div>
            <button
              type="submit"
              class="secondary"
              formaction="/campaigns/new/sample.csv"
              formmethod="get"
              formnovalidate
            >
              Download a sample CSV
            </button>
          </div>
        </fieldset>
        <fieldset>
          <legend>2. Recipients</legend>
          <div class="dropzone" data-dropzone>
            <label for="file">CSV file</label>
            <p class="hint" id="file-hint">
              Drop the file here or choose it. UTF-8, with a header row; comma, semicolon or tab separated.
            </p>
            <input
              type="file"
              id="file"
              name="file"
              accept=".csv,text/csv,text/plain"
              required
              ${describedBy("file", errors.file, true)}
            />
            ${fieldError("file", errors.file)}
            <progress id="upload-progress" max="100" value="0" hidden aria-label="Upload progress"></progress>
            <p id="upload-status" class="hint" role="status" aria-live="polite"></p>
          </div>
        </fieldset>
        <button type="submit">Upload and continue</button>
      </form>`,
  });
}

export function registerNewCampaign(scope: ApiApp, ctx: ApiContext): void {
  scope.get<{ Querystring: Record<string, string | undefined> }>(
    "/campaigns/new",
    { config: { console: "campaigns:write" }, schema: { hide: true } },
    async (request, reply) => {
      const { templates, error } = await listTemplates(ctx);
      return sendPage(
        reply,
        newCampaignPage({ viewer: request.viewer!, templates, templatesError: error, values: request.query }),
      );
    },
  );

  // A CSV with the columns the template needs: a phone column and one per variable, when its text is known.
  scope.get<{ Querystring: Record<string, string | undefined> }>(
    "/campaigns/new/sample.csv",
    { config: { console: "campaigns:write" }, schema: { hide: true } },
    async (request, reply) => {
      const { choice, errors } = readChoice(request.query);
      const content = choice ? await templateText(ctx, choice) : null;
      if (!choice || content === null) {
        const { templates, error } = await listTemplates(ctx);
        return sendPage(
          reply.code(400),
          newCampaignPage({
            viewer: request.viewer!,
            templates,
            templatesError: error,
            values: request.query,
            errors: choice
              ? {
                  templateContent:
                    "the template's text is unknown, so its variables cannot be listed: type the text in to get a sample",
                }
              : errors,
          }),
        );
      }
      const variables = templateVariables(choice, content);
      const csv = [["phone", ...variables].join(","), ["+6581234567", ...variables.map((v) => `${v} value`)].join(",")];
      return reply
        .type("text/csv; charset=utf-8")
        .header(
          "content-disposition",
          `attachment; filename="sample-template-${choice.templateId.replace(/\W/g, "_")}.csv"`,
        )
        .send(csv.join("\r\n") + "\r\n");
    },
  );

  void scope.register(async (uploads: ApiApp) => {
    // The file streams into Postgres as it arrives (receiveUpload); the CSV limit is CSV_MAX_BYTES, not a body limit.
    uploads.addContentTypeParser(["text/csv", "application/octet-stream"], (_request, payload, done) =>
      done(null, payload),
    );
    await uploads.register(fastifyMultipart, {
      limits: { fileSize: ctx.config.csvMaxBytes + 1, files: 1, fields: 10, parts: 20 },
    });
    uploads.post<{ Querystring: Record<string, string | undefined> }>(
      "/campaigns/new/upload",
      { config: { console: "campaigns:write" }, schema: { hide: true }, bodyLimit: ctx.config.csvMaxBytes },
      async (request, reply) => receiveConsoleUpload(ctx, request, reply),
    );
  });
}

/**
 * The upload of the first step: a raw text/csv body sent by the page's script (with a progress bar; the fields
 * in the query) or, without script, the multipart form (fields first, then the file).
 */
async function receiveConsoleUpload(
  ctx: ApiContext,
  request: FastifyRequest<{ Querystring: Record<string, string | undefined> }>,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const fromScript = !request.isMultipart();
  const fields: Record<string, string | undefined> = { ...request.query };
  let body: AsyncIterable<Buffer> | undefined;
  let filename: string | null = request.query.filename ?? null;
  if (fromScript) body = request.body as Readable;
  else {
    for await (const part of request.parts()) {
      if (part.type === "field") fields[part.fieldname] = String(part.value);
      else {
        body = part.file;
        filename = part.filename || null;
        break; // the file is the form's last field
      }
    }
  }
  const refuse = async (errors: FieldErrors, status = 400) => {
    if (!request.raw.complete) reply.header("connection", "close");
    if (fromScript) {
      const [field, message] = Object.entries(errors)[0] ?? ["file", "refused"];
      return reply.code(status).send({ error: { field, message } });
    }
    const { templates, error } = await listTemplates(ctx);
    return sendPage(
      reply.code(status),
      newCampaignPage({ viewer: request.viewer!, templates, templatesError: error, values: fields, errors }),
    );
  };
  const { choice, errors } = readChoice(fields);
  if (!choice) return refuse(errors);
  if (!body || (!fromScript && !filename)) return refuse({ file: "choose a CSV file to upload" });
  try {
    const summary = await receiveUpload(ctx.db, {
      body,
      filename,
      createdBy: actorOf(request).name,
      maxBytes: ctx.config.csvMaxBytes,
      ttlMs: ctx.config.uploads.ttlMs,
      defaultRegion: ctx.config.defaultRegion,
    });
    await recordAudit(ctx.db, actorOf(request), "upload.create", {
      details: { uploadId: summary.uploadId, rows: summary.rows, bytes: summary.bytes },
    });
    const next = `/uploads/${summary.uploadId}/map?${choiceQuery(choice)}`;
    return fromScript ? reply.send({ next }) : reply.redirect(next, 303);
  } catch (error) {
    if (!isUserError(error)) throw error;
    return refuse({ file: error.message }, error.code === "upload_too_large" ? 413 : 400);
  }
}
