import { roleAllows, type ApiRole, type Permission } from "../../model/roles.ts";
import { html, type Html } from "./html.ts";

/** What every page needs to know about who is looking. */
export interface Viewer {
  name: string;
  role: ApiRole;
  csrfToken: string;
}

export type Section = "campaigns" | "new" | "audience" | "settings";

const NAV: ReadonlyArray<{ section: Section; href: string; label: string; needs: Permission }> = [
  { section: "campaigns", href: "/campaigns", label: "Campaigns", needs: "campaigns:read" },
  { section: "new", href: "/campaigns/new", label: "New campaign", needs: "campaigns:write" },
  { section: "audience", href: "/audience", label: "Audience", needs: "campaigns:read" },
  { section: "settings", href: "/settings", label: "Settings", needs: "campaigns:read" },
];

export function page(options: {
  title: string;
  viewer?: Viewer;
  section?: Section;
  body: Html;
  script?: boolean;
}): Html {
  const { viewer } = options;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${options.title} · smsblast</title>
        <link rel="stylesheet" href="/assets/console.css" />
        ${viewer ? html`<meta name="csrf-token" content="${viewer.csrfToken}" />` : ""}
        <script src="/assets/vendor/htmx.min.js" defer></script>
        <script src="/assets/console.js" defer></script>
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
          <a class="brand" href="/">smsblast</a>
          ${
            viewer
              ? html`<nav aria-label="Main">
                    <ul>
                      ${NAV.filter((n) => roleAllows(viewer.role, n.needs)).map(
                        (n) =>
                          html`<li>
                            <a href="${n.href}" ${options.section === n.section ? html`aria-current="page"` : ""}
                              >${n.label}</a
                            >
                          </li>`,
                      )}
                    </ul>
                  </nav>
                  <form class="signout" method="post" action="/sign-out">
                    ${csrfField(viewer)}
                    <span class="who">${viewer.name} (${viewer.role})</span>
                    <button type="submit" class="link">Sign out</button>
                  </form>`
              : ""
          }
        </header>
        <main id="main" tabindex="-1">${options.body}</main>
      </body>
    </html>`;
}

export function csrfField(viewer: Viewer): Html {
  return html`<input type="hidden" name="_csrf" value="${viewer.csrfToken}" />`;
}

/** An error next to the field it concerns, tied to it by aria-describedby. */
export function fieldError(id: string, message: string | undefined): Html {
  return message ? html`<p class="field-error" id="${id}-error" role="alert">${message}</p>` : html``;
}

/** The field's error when it has one, else its hint (`<p id="{id}-hint">`) when `hasHint`. */
export function describedBy(id: string, message: string | undefined, hasHint = false): Html {
  if (message) return html`aria-describedby="${id}-error" aria-invalid="true"`;
  return hasHint ? html`aria-describedby="${id}-hint"` : html``;
}

export function notice(kind: "error" | "info" | "success", body: Html | string): Html {
  return html`<div class="notice notice-${kind}" role="${kind === "error" ? "alert" : "status"}">${body}</div>`;
}

/** A table that stacks into labelled blocks on a phone's width (no horizontal scrolling at 375 px). */
export function table(options: {
  caption?: string;
  headers: readonly string[];
  rows: ReadonlyArray<ReadonlyArray<Html | string | number>>;
  id?: string;
}): Html {
  return html`<table class="stack" ${options.id ? html`id="${options.id}"` : ""}>
    ${
      options.caption
        ? html`<caption>
            ${options.caption}
          </caption>`
        : ""
    }
    <thead>
      <tr>
        ${options.headers.map((h) => html`<th scope="col">${h}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${options.rows.map(
        (row) =>
          html`<tr>
            ${row.map((cell, i) => html`<td data-label="${options.headers[i] ?? ""}">${cell}</td>`)}
          </tr>`,
      )}
    </tbody>
  </table>`;
}

export function statusChip(status: string): Html {
  return html`<span class="chip chip-${status}">${status}</span>`;
}

export function formatTime(value: Date | string | null): string {
  if (value === null) return "–";
  const date = typeof value === "string" ? new Date(value) : value;
  return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}
