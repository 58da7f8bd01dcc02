import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import fastifyMultipart from "@fastify/multipart";
import type { FastifyReply, FastifyRequest } from "fastify";
import { recordAudit } from "../../../access/audit-log.ts";
import { importContactsFromCsv, importSuppressionsFromCsv } from "../../../recipients/audience-import.ts";
import {
  listSegments,
  listSuppressions,
  listTags,
  saveSegment,
  suppressNumbers,
} from "../../../recipients/audience-lists.ts";
import { isUserError } from "../../../model/errors.ts";
import { roleAllows } from "../../../model/roles.ts";
import type { ApiContext } from "../../../runtime/api-context.ts";
import type { ApiApp } from "../../api-app.ts";
import { actorOf } from "../../auth.ts";
import type { FormBody } from "../console-session.ts";
import { count, html, type Html } from "../html.ts";
import { csrfField, describedBy, fieldError, formatTime, notice, page, table, type Viewer } from "../layout.ts";
import { sendPage } from "../respond.ts";

const SUPPRESSIONS_PER_PAGE = 50;

/** "1 number", "2 numbers". */
const plural = (n: number, word: string) => `${count(n)} ${word}${n === 1 ? "" : "s"}`;

type Errors = Record<string, string>;

interface AudienceState {
  viewer: Viewer;
  query: Record<string, string | undefined>;
  errors?: Errors;
  values?: FormBody;
  done?: string;
}

async function audiencePage(ctx: ApiContext, state: AudienceState): Promise<Html> {
  const { viewer, errors = {}, values = {} } = state;
  const canWrite = roleAllows(viewer.role, "audience:write");
  const seesNumbers = roleAllows(viewer.role, "reports:read");
  const [tags, segments] = await Promise.all([listTags(ctx.db), listSegments(ctx.db)]);
  const search = state.query.q?.trim() ?? "";
  const pageNumber = Math.max(1, Number.parseInt(state.query.page ?? "1", 10) || 1);
  const suppressions = seesNumbers
    ? await listSuppressions(ctx.db, {
        limit: SUPPRESSIONS_PER_PAGE,
        offset: (pageNumber - 1) * SUPPRESSIONS_PER_PAGE,
        search: search || undefined,
      })
    : null;
  const importAction = (what: string) => `/audience/${what}/import?_csrf=${encodeURIComponent(viewer.csrfToken)}`;
  return page({
    title: "Audience",
    viewer,
    section: "audience",
    body: html`<h1>Audience</h1>
      ${state.done ? notice("success", state.done) : ""}
      <h2 id="tags-heading">Tags</h2>
      ${
        tags.length === 0
          ? html`<p>
              No contacts yet. Import a contacts CSV below; its <code>tags</code> column and the tags you give become
              audiences.
            </p>`
          : table({
              id: "tags",
              headers: ["Tag", "Contacts", "Sendable (not opted out)"],
              rows: tags.map((t) => [t.tag, count(t.contacts), count(t.sendable)]),
            })
      }
      ${
        canWrite
          ? html`<form method="post" action="${importAction("contacts")}" enctype="multipart/form-data">
              <fieldset>
                <legend>Import contacts</legend>
                <label for="contacts-file">Contacts CSV</label>
                <p class="hint" id="contacts-file-hint">
                  A phone column; an optional tags column (; or | separated); every other column is kept as an
                  attribute.
                </p>
                <input
                  type="file"
                  id="contacts-file"
                  name="file"
                  accept=".csv,text/csv"
                  required
                  ${describedBy("contacts-file", errors.contacts, true)}
                />
                ${fieldError("contacts-file", errors.contacts)}
                <label for="contacts-phone">Phone column</label>
                <input type="text" id="contacts-phone" name="phoneColumn" value="phone" />
                <label for="contacts-tags">Tags for every imported contact (comma separated)</label>
                <input type="text" id="contacts-tags" name="tags" />
                <button type="submit">Import contacts</button>
              </fieldset>
            </form>`
          : ""
      }
      <h2>Segments</h2>
      ${
        segments.length === 0
          ? html`<p>No saved segments.</p>`
          : table({
              id: "segments",
              headers: ["Segment", "Tags (any)", "Attributes (all)", "Sendable contacts"],
              rows: segments.map((s) => [
                s.name,
                s.tags.join(", ") || "–",
                Object.entries(s.attributes as Record<string, string>)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(", ") || "–",
                count(s.contacts),
              ]),
            })
      }
      ${
        canWrite
          ? html`<form method="post" action="/audience/segments">
              ${csrfField(viewer)}
              <fieldset>
                <legend>Save a segment</legend>
                <label for="segment-name">Name</label>
                <input
                  type="text"
                  id="segment-name"
                  name="name"
                  required
                  maxlength="100"
                  value="${values.name ?? ""}"
                  ${describedBy("segment-name", errors.name)}
                />
                ${fieldError("segment-name", errors.name)}
                <label for="segment-tags">Contacts with any of these tags (comma separated)</label>
                <input type="text" id="segment-tags" name="tags" value="${values.tags ?? ""}" />
                <label for="segment-attributes"
                  >And all of these attribute values (one <code>name=value</code> a line)</label
                >
                <textarea
                  id="segment-attributes"
                  name="attributes"
                  ${describedBy("segment-attributes", errors.segment)}
                >
${values.attributes ?? ""}</textarea>
                ${fieldError("segment-attributes", errors.segment)}
                <button type="submit">Save segment</button>
              </fieldset>
            </form>`
          : ""
      }
      <h2>Suppression list</h2>
      <p>Numbers no campaign ever texts: opt-outs, STOP replies, complaints.</p>
      ${
        suppressions
          ? html`<form method="get" action="/audience" class="filters" role="search">
                <div>
                  <label for="q">Find a number</label>
                  <input type="text" id="q" name="q" inputmode="tel" value="${search}" />
                </div>
                <button type="submit" class="secondary">Search</button>
              </form>
              ${
                suppressions.entries.length === 0
                  ? html`<p id="suppressions-empty">
                      ${search ? `No suppressed number contains ${search}.` : "The list is empty."}
                    </p>`
                  : table({
                      id: "suppressions",
                      caption: `${count(suppressions.total)} number${suppressions.total === 1 ? "" : "s"}${search ? ` matching ${search}` : ""}`,
                      headers: ["Number", "Reason", "Source", "Added"],
                      rows: suppressions.entries.map((e) => [
                        e.phone,
                        e.reason,
                        e.source ?? "–",
                        formatTime(e.createdAt),
                      ]),
                    })
              }
              ${
                suppressions.forgotten > 0
                  ? html`<p class="hint" id="suppressions-forgotten">
                      And ${count(suppressions.forgotten)} forgotten number${suppressions.forgotten === 1 ? "" : "s"}
                      (erasure requests), kept only as keyed hashes: still never texted, never listed.
                    </p>`
                  : ""
              }
              <nav class="pager" aria-label="Suppression pages">
                ${pageNumber > 1 ? html`<a href="/audience?${new URLSearchParams({ q: search, page: String(pageNumber - 1) }).toString()}">Newer</a>` : ""}
                ${
                  suppressions.total > pageNumber * SUPPRESSIONS_PER_PAGE
                    ? html`<a
                        href="/audience?${new URLSearchParams({ q: search, page: String(pageNumber + 1) }).toString()}"
                        >Older</a
                      >`
                    : ""
                }
              </nav>`
          : html`<p>Your role does not see phone numbers.</p>`
      }
      ${
        canWrite
          ? html`<form method="post" action="/audience/suppressions">
                ${csrfField(viewer)}
                <fieldset>
                  <legend>Add numbers</legend>
                  <label for="phones">Numbers (one a line, or comma separated)</label>
                  <textarea id="phones" name="phones" required ${describedBy("phones", errors.phones)}>
${values.phones ?? ""}</textarea>
                  ${fieldError("phones", errors.phones)}
                  <label for="reason">Reason</label>
                  <input type="text" id="reason" name="reason" maxlength="200" value="${values.reason ?? "opt-out"}" />
                  <button type="submit">Suppress</button>
                </fieldset>
              </form>
              <form method="post" action="${importAction("suppressions")}" enctype="multipart/form-data">
                <fieldset>
                  <legend>Import suppressions</legend>
                  <label for="suppressions-file">CSV with a phone column</label>
                  <input
                    type="file"
                    id="suppressions-file"
                    name="file"
                    accept=".csv,text/csv"
                    required
                    ${describedBy("suppressions-file", errors.suppressions)}
                  />
                  ${fieldError("suppressions-file", errors.suppressions)}
                  <label for="suppressions-phone">Phone column</label>
                  <input type="text" id="suppressions-phone" name="phoneColumn" value="phone" />
                  <label for="suppressions-reason">Reason</label>
                  <input type="text" id="suppressions-reason" name="reason" value="import" />
                  <button type="submit">Import suppressions</button>
                </fieldset>
              </form>`
          : ""
      }`,
  });
}

/** A multipart form's fields and its file, saved to a temporary folder (the import use cases read a file). */
async function receiveFileForm(
  request: FastifyRequest,
  maxBytes: number,
): Promise<{ fields: Record<string, string>; file?: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), "smsblast-console-"));
  const fields: Record<string, string> = {};
  let file: string | undefined;
  for await (const part of request.parts({ limits: { fileSize: maxBytes } })) {
    if (part.type === "field") fields[part.fieldname] = String(part.value);
    else if (part.filename) {
      file = path.join(dir, "upload.csv");
      await pipeline(part.file, createWriteStream(file));
      if (part.file.truncated) throw new Error("file over CSV_MAX_BYTES");
    } else part.file.resume();
  }
  return { fields, file, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

const splitList = (text: string | undefined) =>
  (text ?? "")
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean);

export function registerAudience(scope: ApiApp, ctx: ApiContext): void {
  const render = async (reply: FastifyReply, state: AudienceState, status = 200) =>
    sendPage(reply.code(status), await audiencePage(ctx, state));

  scope.get<{ Querystring: Record<string, string | undefined> }>(
    "/audience",
    { config: { console: "campaigns:read" }, schema: { hide: true } },
    async (request, reply) => render(reply, { viewer: request.viewer!, query: request.query }),
  );

  scope.post<{ Body: FormBody }>(
    "/audience/segments",
    { config: { console: "audience:write" }, schema: { hide: true } },
    async (request, reply) => {
      const form = request.body ?? {};
      const viewer = request.viewer!;
      const name = form.name?.trim() ?? "";
      if (!name)
        return render(reply, { viewer, query: {}, values: form, errors: { name: "give the segment a name" } }, 400);
      const attributes: Record<string, string> = {};
      for (const line of (form.attributes ?? "")
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean)) {
        const eq = line.indexOf("=");
        if (eq < 1)
          return render(
            reply,
            { viewer, query: {}, values: form, errors: { segment: `"${line}" is not name=value` } },
            400,
          );
        attributes[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
      }
      try {
        await saveSegment(ctx.db, { name, tags: splitList(form.tags), attributes });
      } catch (error) {
        if (!isUserError(error)) throw error;
        return render(reply, { viewer, query: {}, values: form, errors: { segment: error.message } }, 400);
      }
      await recordAudit(ctx.db, actorOf(request), "segment.save", { details: { name } });
      return render(reply, { viewer, query: {}, done: `Segment ${name} saved.` });
    },
  );

  scope.post<{ Body: FormBody }>(
    "/audience/suppressions",
    { config: { console: "audience:write" }, schema: { hide: true } },
    async (request, reply) => {
      const form = request.body ?? {};
      const viewer = request.viewer!;
      const phones = splitList(form.phones);
      if (phones.length === 0)
        return render(reply, { viewer, query: {}, values: form, errors: { phones: "type at least one number" } }, 400);
      try {
        const result = await suppressNumbers(ctx.db, {
          phones,
          reason: form.reason?.trim() || "console",
          source: `console:${actorOf(request).name}`,
          defaultRegion: ctx.config.defaultRegion,
        });
        await recordAudit(ctx.db, actorOf(request), "suppression.add", { details: result });
        return render(reply, {
          viewer,
          query: {},
          done: `${count(result.added)} number${result.added === 1 ? "" : "s"} added (${count(result.given - result.added)} already on the list).`,
        });
      } catch (error) {
        if (!isUserError(error)) throw error;
        return render(reply, { viewer, query: {}, values: form, errors: { phones: error.message } }, 400);
      }
    },
  );

  void scope.register(async (imports: ApiApp) => {
    await imports.register(fastifyMultipart, { limits: { files: 1, fields: 10, parts: 20 } });
    const importRoute = (what: "contacts" | "suppressions") =>
      imports.post(
        `/audience/${what}/import`,
        { config: { console: "audience:write" }, schema: { hide: true } },
        async (request, reply) => {
          const viewer = request.viewer!;
          const form = await receiveFileForm(request, ctx.config.csvMaxBytes);
          try {
            if (!form.file) return render(reply, { viewer, query: {}, errors: { [what]: "choose a CSV file" } }, 400);
            const phoneColumn = form.fields.phoneColumn?.trim() || "phone";
            if (what === "contacts") {
              const report = await importContactsFromCsv(ctx.db, form.file, {
                phoneColumn,
                tags: splitList(form.fields.tags),
                defaultRegion: ctx.config.defaultRegion,
                maxBytes: ctx.config.csvMaxBytes,
              });
              await recordAudit(ctx.db, actorOf(request), "contacts.import", {
                details: {
                  rows: report.rows,
                  inserted: report.inserted,
                  updated: report.updated,
                  rejected: report.rejects.length,
                },
              });
              return render(reply, {
                viewer,
                query: {},
                done: `${plural(report.rows, "row")} read: ${plural(report.inserted, "new contact")}, ${count(report.updated)} updated, ${plural(report.rejects.length, "row")} without a valid number.`,
              });
            }
            const report = await importSuppressionsFromCsv(ctx.db, form.file, {
              phoneColumn,
              reason: form.fields.reason?.trim() || "import",
              defaultRegion: ctx.config.defaultRegion,
              maxBytes: ctx.config.csvMaxBytes,
            });
            await recordAudit(ctx.db, actorOf(request), "suppression.import", {
              details: { rows: report.rows, added: report.added, rejected: report.rejects.length },
            });
            return render(reply, {
              viewer,
              query: {},
              done: `${plural(report.rows, "row")} read, ${plural(report.added, "number")} added, ${plural(report.rejects.length, "row")} without a valid number.`,
            });
          } catch (error) {
            if (!isUserError(error)) throw error;
            return render(reply, { viewer, query: {}, errors: { [what]: error.message } }, 400);
          } finally {
            await form.cleanup();
          }
        },
      );
    importRoute("contacts");
    importRoute("suppressions");
  });
}
