import { Agent, request } from "undici";

/** How a POST to a receiver ended: its HTTP status, or why there was none (timeout, refused, reset). */
export type WebhookAnswer = { kind: "answered"; status: number } | { kind: "no-answer"; error: string };

export interface WebhookClientOptions {
  /** Hard deadline of one POST, connection included (WEBHOOK_TIMEOUT_MS). */
  timeoutMs: number;
  /** Keep-alive connections per receiver origin. */
  connections?: number;
}

/** The most of a receiver's answer that is read (and thrown away): a receiver's body means nothing here. */
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * POSTs webhook bodies with undici: a hard deadline per request (AbortSignal), redirects not followed (a 3xx
 * is an answer like any non-2xx: the URL is the admin's to fix), the answer's body drained and dropped. Never
 * throws: every failure is a `no-answer` with a short reason that names no URL and no header.
 */
export class WebhookClient {
  readonly #agent: Agent;
  readonly #timeoutMs: number;

  constructor(options: WebhookClientOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#agent = new Agent({
      connections: options.connections ?? 4,
      keepAliveTimeout: 30_000,
      connect: { timeout: options.timeoutMs },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
  }

  async post(url: string, headers: Record<string, string>, body: string): Promise<WebhookAnswer> {
    try {
      const answer = await request(url, {
        method: "POST",
        headers,
        body,
        dispatcher: this.#agent,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      await answer.body.dump({ limit: MAX_ANSWER_BYTES }).catch(() => {});
      return { kind: "answered", status: answer.statusCode };
    } catch (error) {
      return { kind: "no-answer", error: describeFailure(error) };
    }
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return "request failed";
  if (error.name === "TimeoutError" || error.name === "AbortError") return "timeout";
  const code = (error as { code?: unknown }).code ?? (error.cause as { code?: unknown } | undefined)?.code;
  if (typeof code === "string") return code;
  return error.name;
}
