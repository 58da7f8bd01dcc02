import type { FastifyInstance, FastifyRequest } from "fastify";
import { authenticateToken, type ApiToken } from "../access/api-tokens.ts";
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

/** Bull Board's page cannot send a bearer header; the console's session cookie carries the token there. */
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
    const secret =
      bearerOf(request) ??
      (request.url.startsWith(QUEUE_DASHBOARD_PREFIX) ? cookieOf(request, SESSION_COOKIE) : undefined);
    if (secret === undefined) throw UNAUTHORIZED();
    const token = await authenticateToken(ctx.db, secret);
    if (!token) throw UNAUTHORIZED();
    request.apiToken = token;
    if (!roleAllows(token.role, permission)) {
      throw new HttpRefusal(403, "forbidden", `the ${token.role} role may not do this (needs ${permission})`);
    }
  });
}

function permissionOf(request: FastifyRequest): Permission | undefined {
  if (
    request.url === QUEUE_DASHBOARD_PREFIX ||
    request.url.startsWith(`${QUEUE_DASHBOARD_PREFIX}/`) ||
    request.url.startsWith(`${QUEUE_DASHBOARD_PREFIX}?`)
  ) {
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

function cookieOf(request: FastifyRequest, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}
