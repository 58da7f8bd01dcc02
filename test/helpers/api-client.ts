import { createApiToken } from "../../src/access/api-tokens.ts";
import type { ErrorBody } from "../../src/http/errors.ts";
import type { ApiRole } from "../../src/model/roles.ts";
import { startApiServer, type RunningApiServer } from "../../src/runtime/api-server.ts";
import type { TestEnv } from "./test-env.ts";

/** The body of every refusal (400, 401, 403, 404, 409, 422 …). */
export type ApiError = ErrorBody;
/** The body of a campaign create. */
export interface Launched {
  campaignId: string;
}

export interface ApiTestServer {
  server: RunningApiServer;
  /** A token per role, created in the test database. */
  tokens: Record<ApiRole, string>;
  request(
    method: string,
    path: string,
    options?: { token?: string | null; body?: unknown; headers?: Record<string, string> },
  ): Promise<Response>;
  /** `T` is what the test expects the body to be (the expectations check it); default: not looked into. */
  json<T = unknown>(
    method: string,
    path: string,
    options?: { token?: string | null; body?: unknown; headers?: Record<string, string> },
  ): Promise<{ status: number; body: T; headers: Headers }>;
}

/** `smsblast serve` in-process on a random port, against the test env's database, Redis prefix and sandbox. */
export async function startTestApi(env: TestEnv): Promise<ApiTestServer> {
  const server = await startApiServer(env.config, env.log, { host: "127.0.0.1", port: 0 });
  const tokens = {} as Record<ApiRole, string>;
  for (const role of ["viewer", "operator", "admin"] as const) {
    tokens[role] = (
      await createApiToken(env.db, { name: `test-${role}-${Math.random().toString(36).slice(2, 8)}`, role })
    ).secret;
  }
  const request: ApiTestServer["request"] = (method, path, options = {}) => {
    const token = options.token === undefined ? tokens.admin : options.token;
    const headers: Record<string, string> = { ...options.headers };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      headers["content-type"] ??= "application/json";
      body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
    }
    return fetch(`${server.url}${path}`, { method, headers, body });
  };
  return {
    server,
    tokens,
    request,
    async json(method, path, options) {
      const response = await request(method, path, options);
      const text = await response.text();
      return {
        status: response.status,
        body: (text ? JSON.parse(text) : undefined) as never,
        headers: response.headers,
      };
    },
  };
}
