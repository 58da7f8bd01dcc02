import { Agent, request, errors as undiciErrors } from "undici";
import type { ProviderCredentials } from "../config/config.ts";
import { platformOfApi, PLATFORMS, type Platform } from "../config/platforms.ts";
import { ProviderError, type ProviderApiName } from "./errors.ts";
import { isRecord, parseProviderJson, readPlanCounts, readInt, ResponseParseError } from "./json-body.ts";

export type { ProviderCredentials };

/** Each platform's key pair: a request is signed with the pair of the platform its API belongs to. */
export type PlatformCredentials = Readonly<Record<Platform, ProviderCredentials>>;

export interface HttpClientOptions {
  timeoutMs: number;
  /** Keep-alive connections per origin; match the worker's concurrency. */
  connections?: number;
}

export interface ProviderResponse {
  status: number;
  body: unknown;
}

/**
 * A keep-alive undici agent plus the EngageLab conventions every API shares: Basic auth with the pair of the
 * API's platform, JSON bodies, lossless parsing, a hard deadline per request, and one typed error for every
 * kind of failure.
 */
export class EngageLabHttpClient {
  readonly #agent: Agent;
  readonly #authorization: Readonly<Record<Platform, string>>;
  readonly #timeoutMs: number;

  constructor(credentials: PlatformCredentials, options: HttpClientOptions) {
    const basic = ({ apiKey, apiSecret }: ProviderCredentials) =>
      `Basic ${Buffer.from(`${apiKey}:${apiSecret}`).toString("base64")}`;
    this.#authorization = Object.fromEntries(PLATFORMS.map((p) => [p, basic(credentials[p])])) as Record<
      Platform,
      string
    >;
    this.#timeoutMs = options.timeoutMs;
    this.#agent = new Agent({
      connections: options.connections ?? 16,
      keepAliveTimeout: 30_000,
      // The overall deadline is the AbortSignal below; these stop a half-open socket from outliving it.
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
  }

  /** Sends one request. Resolves only for 2xx with no non-zero `code`; everything else is a ProviderError. */
  async call(
    api: ProviderApiName,
    method: "GET" | "POST" | "PUT" | "DELETE",
    url: string,
    payload?: unknown,
    /** Non-zero codes that are not errors on a 2xx answer (legacy partial success 41031). */
    acceptCodes: readonly number[] = [],
  ): Promise<ProviderResponse> {
    let status: number;
    let text: string;
    let retryAfterHeader: string | string[] | undefined;
    try {
      const response = await request(url, {
        method,
        dispatcher: this.#agent,
        headers: {
          authorization: this.#authorization[platformOfApi(api)],
          accept: "application/json",
          ...(payload === undefined ? {} : { "content-type": "application/json;charset=utf-8" }),
        },
        body: payload === undefined ? undefined : JSON.stringify(payload),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      status = response.statusCode;
      retryAfterHeader = response.headers["retry-after"];
      text = await response.body.text();
    } catch (error) {
      throw transportError(api, error, this.#timeoutMs);
    }

    let body: unknown;
    try {
      body = text === "" ? {} : parseProviderJson(text);
    } catch (error) {
      const detail = error instanceof ResponseParseError ? error.message : "unreadable body";
      throw new ProviderError({ api, kind: status >= 400 ? "http" : "invalid-response", status, detail });
    }
    const code = isRecord(body) ? readInt(body.code) : undefined;
    if (status >= 200 && status < 300 && (code === undefined || code === 0 || acceptCodes.includes(code)))
      return { status, body };

    const providerMessage = isRecord(body) && typeof body.message === "string" ? body.message : undefined;
    throw new ProviderError({
      api,
      kind: "http",
      status,
      code,
      providerMessage,
      retryAfterMs: parseRetryAfter(retryAfterHeader),
      body,
      counts: readPlanCounts(body),
    });
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

/** Failures before a connection existed: the provider cannot have seen the request. */
const NOT_CONNECTED_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
]);

function transportError(api: ProviderApiName, error: unknown, timeoutMs: number): ProviderError {
  const name = error instanceof Error ? error.name : "";
  const isTimeout =
    name === "TimeoutError" ||
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError;
  if (isTimeout) {
    return new ProviderError({
      api,
      kind: "timeout",
      detail: `no response within ${timeoutMs} ms`,
      requestMayHaveArrived: true,
    });
  }
  const code = (error as { code?: string }).code ?? (error as { cause?: { code?: string } }).cause?.code;
  // Only the error's code and class go into the message: never the request, its headers or its URL's userinfo.
  return new ProviderError({
    api,
    kind: "network",
    detail: code ?? name ?? "connection failed",
    requestMayHaveArrived: !(code !== undefined && NOT_CONNECTED_CODES.has(code)),
  });
}

/** Retry-After is either delta-seconds or an HTTP date. */
export function parseRetryAfter(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.round(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
