import { createApiToken, listApiTokens, revokeApiToken } from "../../../access/api-tokens.ts";
import { recordAudit } from "../../../access/audit-log.ts";
import { isUserError } from "../../../model/errors.ts";
import { API_ROLES, roleAllows, type ApiRole } from "../../../model/roles.ts";
import type { ApiContext } from "../../../runtime/api-context.ts";
import type { ApiApp } from "../../api-app.ts";
import { actorOf } from "../../auth.ts";
import type { FormBody } from "../console-session.ts";
import { html, type Html } from "../html.ts";
import { csrfField, describedBy, fieldError, formatTime, notice, page, table, type Viewer } from "../layout.ts";
import { sendPage } from "../respond.ts";

const ROLE_WORDS: Readonly<Record<ApiRole, string>> = {
  viewer: "viewer: reads campaigns and counts",
  operator: "operator: also uploads, sends, controls campaigns, downloads reports",
  admin: "admin: also manages tokens and the queue dashboard's actions",
};

async function settingsPage(
  ctx: ApiContext,
  viewer: Viewer,
  state: { created?: { name: string; secret: string }; error?: string; values?: FormBody; done?: string } = {},
): Promise<Html> {
  const admin = roleAllows(viewer.role, "tokens:manage");
  const tokens = admin ? await listApiTokens(ctx.db) : [];
  return page({
    title: "Settings",
    viewer,
    section: "settings",
    body: html`<h1>Settings</h1>
      <p>Signed in as ${viewer.name}, role ${ROLE_WORDS[viewer.role]}.</p>
      <h2>Tools</h2>
      <ul>
        <li><a href="/admin/queues">Queue dashboard</a> (Bull Board: send, schedule and delivery queues)</li>
        <li><a href="/docs">API documentation</a> (OpenAPI, for systems that start campaigns themselves)</li>
      </ul>
      ${
        admin
          ? html`<h2>API tokens</h2>
              ${state.done ? notice("success", state.done) : ""}
              ${
                state.created
                  ? notice(
                      "success",
                      html`<p>
                          Token <strong>${state.created.name}</strong> created. Copy it now: it is shown this once and
                          never stored.
                        </p>
                        <label for="new-token">New token</label>
                        <input type="text" id="new-token" class="secret" readonly value="${state.created.secret}" />`,
                    )
                  : ""
              }
              ${table({
                id: "tokens",
                headers: ["Name", "Role", "Starts with", "Created", "Last used", "State"],
                rows: tokens.map((t) => [
                  t.name,
                  t.role,
                  `${t.prefix}…`,
                  formatTime(t.createdAt),
                  formatTime(t.lastUsedAt),
                  t.revokedAt
                    ? `revoked ${formatTime(t.revokedAt)}`
                    : html`<form method="post" action="/settings/tokens/revoke" class="inline-form">
                        ${csrfField(viewer)}<input type="hidden" name="name" value="${t.name}" />
                        <button type="submit" class="danger" aria-label="Revoke ${t.name}">Revoke</button>
                      </form>`,
                ]),
              })}
              <form method="post" action="/settings/tokens">
                ${csrfField(viewer)}
                <fieldset>
                  <legend>Create a token</legend>
                  <label for="token-name">Name (who or what uses it)</label>
                  <input
                    type="text"
                    id="token-name"
                    name="name"
                    required
                    maxlength="64"
                    value="${state.values?.name ?? ""}"
                    ${describedBy("token-name", state.error)}
                  />
                  ${fieldError("token-name", state.error)}
                  <label for="token-role">Role</label>
                  <select id="token-role" name="role">
                    ${API_ROLES.map(
                      (r) =>
                        html`<option value="${r}" ${r === (state.values?.role ?? "operator") ? html`selected` : ""}>
                          ${ROLE_WORDS[r]}
                        </option>`,
                    )}
                  </select>
                  <button type="submit">Create token</button>
                </fieldset>
              </form>`
          : ""
      }`,
  });
}

export function registerSettings(scope: ApiApp, ctx: ApiContext): void {
  scope.get("/settings", { config: { console: "campaigns:read" }, schema: { hide: true } }, async (request, reply) =>
    sendPage(reply, await settingsPage(ctx, request.viewer!)),
  );

  scope.post<{ Body: FormBody }>(
    "/settings/tokens",
    { config: { console: "tokens:manage" }, schema: { hide: true } },
    async (request, reply) => {
      const form = request.body ?? {};
      const role = (API_ROLES as readonly string[]).includes(form.role ?? "") ? (form.role as ApiRole) : "viewer";
      try {
        const created = await createApiToken(ctx.db, { name: form.name ?? "", role });
        await recordAudit(ctx.db, actorOf(request), "token.create", {
          details: { name: created.token.name, role: created.token.role },
        });
        return sendPage(
          reply,
          await settingsPage(ctx, request.viewer!, { created: { name: created.token.name, secret: created.secret } }),
        );
      } catch (error) {
        if (!isUserError(error)) throw error;
        return sendPage(
          reply.code(400),
          await settingsPage(ctx, request.viewer!, { error: error.message, values: form }),
        );
      }
    },
  );

  scope.post<{ Body: FormBody }>(
    "/settings/tokens/revoke",
    { config: { console: "tokens:manage" }, schema: { hide: true } },
    async (request, reply) => {
      const revoked = await revokeApiToken(ctx.db, request.body?.name ?? "");
      await recordAudit(ctx.db, actorOf(request), "token.revoke", { details: { name: revoked.name } });
      // Revoking one's own token ends this session too, at the next request.
      return sendPage(
        reply,
        await settingsPage(ctx, request.viewer!, { done: `Token ${revoked.name} revoked: its sessions have ended.` }),
      );
    },
  );
}
