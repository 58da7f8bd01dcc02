import { randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { csrfTokenMatches, resumeSession } from "../../access/console-sessions.ts";
import { roleAllows, type Permission } from "../../model/roles.ts";
import type { ApiContext } from "../../runtime/api-context.ts";
import type { ApiApp } from "../api-app.ts";
import { cookieOf, SESSION_COOKIE } from "../auth.ts";
import { html } from "./html.ts";
import { page, type Viewer } from "./layout.ts";

declare module "fastify" {
  interface FastifyContextConfig {
    /** A console page: the permission it needs (src/model/roles.ts), or "public" (sign-in, assets). */
    console?: Permission | "public";
  }
  interface FastifyRequest {
    viewer?: Viewer;
    /** The session cookie's secret, for the CSRF check and sign-out. */
    sessionSecret?: string;
  }
}

/** The double-submit cookie of the sign-in form (there is no session yet to bind its CSRF token to). */
const SIGN_IN_COOKIE = "smsblast_signin";

export type FormBody = Record<string, string>;

function cookieAttributes(request: FastifyRequest): string {
  // Lax: a link from an e-mail still opens the signed-in console; a form posted from another site carries no cookie.
  return `Path=/; HttpOnly; SameSite=Lax${request.protocol === "https" ? "; Secure" : ""}`;
}

export function setSessionCookie(request: FastifyRequest, reply: FastifyReply, secret: string): void {
  reply.header("set-cookie", [
    `${SESSION_COOKIE}=${secret}; ${cookieAttributes(request)}`,
    `${SIGN_IN_COOKIE}=; ${cookieAttributes(request)}; Max-Age=0`,
  ]);
}

export function clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
  reply.header("set-cookie", `${SESSION_COOKIE}=; ${cookieAttributes(request)}; Max-Age=0`);
}

/** A fresh value for the sign-in form's hidden field and cookie. */
export function issueSignInNonce(request: FastifyRequest, reply: FastifyReply): string {
  const nonce = randomBytes(24).toString("base64url");
  reply.header("set-cookie", `${SIGN_IN_COOKIE}=${nonce}; ${cookieAttributes(request)}`);
  return nonce;
}

export function signInNonceMatches(request: FastifyRequest, given: string | undefined): boolean {
  const cookie = cookieOf(request, SIGN_IN_COOKIE);
  if (!cookie || !given || cookie.length !== given.length) return false;
  return timingSafeEqual(Buffer.from(cookie), Buffer.from(given));
}

/** Only a path of this site: `next` must never send a signed-in user elsewhere. */
export function safeNext(next: string | undefined): string {
  return next && /^\/(?!\/)[\w\-./?=&%]*$/.test(next) && !next.startsWith("/sign-") ? next : "/campaigns";
}

/**
 * The console scope's hooks: form bodies, the session behind the cookie (a page without one leads to the
 * sign-in), the role a page needs, and the CSRF token of every POST.
 */
export function registerConsoleSession(scope: ApiApp, ctx: ApiContext): void {
  scope.decorateRequest("viewer", undefined);
  scope.decorateRequest("sessionSecret", undefined);
  scope.addContentTypeParser(
    "application/x-www-form-urlencoded",
    { parseAs: "string", bodyLimit: 256 * 1024 },
    (_request, body, done) => {
      const form: FormBody = {};
      for (const [key, value] of new URLSearchParams(body as string)) form[key] = value;
      done(null, form);
    },
  );

  scope.addHook("onRequest", async (request, reply) => {
    const needs = request.routeOptions.config.console;
    if (needs === undefined || needs === "public") return;
    const secret = cookieOf(request, SESSION_COOKIE);
    const session = secret ? await resumeSession(ctx.db, secret, ctx.config.api.sessionIdleMs) : null;
    if (!session || !secret) {
      if (secret) clearSessionCookie(request, reply);
      const next = request.method === "GET" ? `?next=${encodeURIComponent(request.url)}` : "";
      return reply.redirect(`/sign-in${next}`, 303);
    }
    request.apiToken = session.token;
    request.sessionSecret = secret;
    request.viewer = { name: session.token.name, role: session.token.role, csrfToken: session.csrfToken };
    if (!roleAllows(session.token.role, needs)) {
      return reply
        .code(403)
        .type("text/html; charset=utf-8")
        .send(
          page({
            title: "Not allowed",
            viewer: request.viewer,
            body: html`<h1>Not allowed</h1>
              <p>
                Your token's role, ${session.token.role}, may not do this. Ask an admin for a token with more rights.
              </p>
              <p><a href="/campaigns">Back to campaigns</a></p>`,
          }).text,
        );
    }
  });

  scope.addHook("preHandler", async (request, reply) => {
    const needs = request.routeOptions.config.console;
    if (request.method !== "POST" || needs === undefined || needs === "public") return;
    const header = request.headers["x-csrf-token"];
    const given =
      (typeof header === "string" ? header : undefined) ??
      (request.body as FormBody | undefined)?._csrf ??
      (request.query as Record<string, string | undefined>)._csrf;
    if (!csrfTokenMatches(request.sessionSecret!, given)) {
      return reply
        .code(403)
        .type("text/html; charset=utf-8")
        .send(
          page({
            title: "Form expired",
            viewer: request.viewer,
            body: html`<h1>This form has expired</h1>
              <p>Nothing was changed. Go back, reload the page and try again.</p>`,
          }).text,
        );
    }
  });
}
