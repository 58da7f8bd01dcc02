import { signIn, signOut } from "../../../access/console-sessions.ts";
import { isUserError } from "../../../model/errors.ts";
import type { ApiContext } from "../../../runtime/api-context.ts";
import type { ApiApp } from "../../api-app.ts";
import {
  clearSessionCookie,
  issueSignInNonce,
  safeNext,
  setSessionCookie,
  signInNonceMatches,
  type FormBody,
} from "../console-session.ts";
import { html, type Html } from "../html.ts";
import { describedBy, fieldError, page } from "../layout.ts";
import { sendPage } from "../respond.ts";

function signInPage(options: { nonce: string; next: string; error?: string }): Html {
  return page({
    title: "Sign in",
    body: html`<h1>Sign in to smsblast</h1>
      <form method="post" action="/sign-in" class="sign-in">
        <input type="hidden" name="_signin" value="${options.nonce}" />
        <input type="hidden" name="next" value="${options.next}" />
        <label for="token">API token</label>
        <p class="hint" id="token-hint">
          Starts with <code>smsb_</code>. An admin creates one under Settings, or with
          <code>smsblast tokens create</code>.
        </p>
        <input
          type="password"
          id="token"
          name="token"
          autocomplete="current-password"
          required
          autofocus
          ${describedBy("token", options.error, true)}
        />
        ${fieldError("token", options.error)}
        <div><button type="submit">Sign in</button></div>
      </form>`,
  });
}

export function registerSignIn(scope: ApiApp, ctx: ApiContext): void {
  scope.get("/", { config: { console: "public" }, schema: { hide: true } }, async (_request, reply) =>
    reply.redirect("/campaigns", 303),
  );

  scope.get<{ Querystring: { next?: string } }>(
    "/sign-in",
    { config: { console: "public" }, schema: { hide: true } },
    async (request, reply) =>
      sendPage(reply, signInPage({ nonce: issueSignInNonce(request, reply), next: safeNext(request.query.next) })),
  );

  scope.post<{ Body: FormBody }>(
    "/sign-in",
    { config: { console: "public" }, schema: { hide: true } },
    async (request, reply) => {
      const form = request.body ?? {};
      const next = safeNext(form.next);
      if (!signInNonceMatches(request, form._signin)) {
        return sendPage(
          reply.code(403),
          signInPage({
            nonce: issueSignInNonce(request, reply),
            next,
            error: "the sign-in form had expired; paste the token again",
          }),
        );
      }
      try {
        const session = await signIn(ctx.db, form.token ?? "");
        setSessionCookie(request, reply, session.secret);
        return reply.redirect(next, 303);
      } catch (error) {
        if (!isUserError(error)) throw error;
        return sendPage(
          reply.code(401),
          signInPage({ nonce: issueSignInNonce(request, reply), next, error: error.message }),
        );
      }
    },
  );

  scope.post("/sign-out", { config: { console: "campaigns:read" }, schema: { hide: true } }, async (request, reply) => {
    await signOut(ctx.db, request.sessionSecret!);
    clearSessionCookie(request, reply);
    return reply.redirect("/sign-in", 303);
  });
}
