import type { FastifyInstance, FastifyRequest } from "fastify";
import { authenticateToken, type ApiToken } from "../access/api-tokens.ts";
import { resumeSession } from "../access/console-sessions.ts";
import type { Actor } from "../access/audit-log.ts";
import { roleAllows, type Permission } from "../model/roles.ts";
import type { ApiContext } from "../runtime/api-context.ts";
import { HttpRefusal } from "./errors.ts";

declare module "fastify" {
  interface FastifyContextConfig {
    /** The permission (src/model/roles.ts) a route needs; a route without one is public. */
    permission?: Permission;
  }
  interface FastifyRequest {
    apiToken?: ApiToken;
  }
}

/**
 * The console's session cookie (src/access/console-sessions.ts). Pages cannot send a bearer header, so the
 * cookie is accepted by Bull Board and by the API's read-only (GET/HEAD) routes: the console's event streams
 * and CSV downloads. API writes always need the header, so no API write can be made with a cookie.
 */
export const SESSION_COOKIE = "smsblast_session";
export const QUEUE_DASHBOARD_PREFIX = "/admin/queues";

// One answer for a missing, malformed, wrong or revoked token: no hint of which.
const UNAUTHORIZED = () =>
  new HttpRefusal(401, "unauthorized", "a valid API token is required (Authorization: Bearer smsb_…)");

export function actorOf(request: FastifyRequest): Extract<Actor, { kind: "token" }> {
  return { kind: "token", name: request.apiToken?.name ?? "anonymous" };
}

/** Checks the token and the role of every route that names a permission, and of the queue dashboard. */
export function registerAuth(app: FastifyInstance, ctx: ApiContext): void {
  app.decorateRequest("apiToken", undefined);
  app.addHook("onRequest", async (request) => {
    const permission = permissionOf(request);
    if (permission === undefined) return;
    const bearer = bearerOf(request);
    const cookie =
      bearer === undefined && (isReadOnly(request) || isQueueDashboard(request))
        ? cookieOf(request, SESSION_COOKIE)
        : undefined;
    let token: ApiToken | null = null;
    if (bearer !== undefined) token = await authenticateToken(ctx.db, bearer);
    else if (cookie !== undefined)
      token = (await resumeSession(ctx.db, cookie, ctx.config.api.sessionIdleMs))?.token ?? null;
    if (!token) throw UNAUTHORIZED();
    request.apiToken = token;
    if (!roleAllows(token.role, permission)) {
      throw new HttpRefusal(403, "forbidden", `the ${token.role} role may not do this (needs ${permission})`);
    }
  });
}

function isQueueDashboard(request: FastifyRequest): boolean {
  return (
    request.url === QUEUE_DASHBOARD_PREFIX ||
    request.url.startsWith(`${QUEUE_DASHBOARD_PREFIX}/`) ||
    request.url.startsWith(`${QUEUE_DASHBOARD_PREFIX}?`)
  );
}

function isReadOnly(request: FastifyRequest): boolean {
  return request.method === "GET" || request.method === "HEAD";
}

function permissionOf(request: FastifyRequest): Permission | undefined {
  if (isQueueDashboard(request)) {
    return request.method === "GET" || request.method === "HEAD" ? "queues:read" : "queues:write";
  }
  return request.routeOptions.config.permission;
}

function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

export function cookieOf(request: FastifyRequest, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}
