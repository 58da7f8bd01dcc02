import { timingSafeEqual } from "node:crypto";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  CallbackRefusedError,
  receiveDeliveryCallback,
  type CallbackCredentials,
  type CallbackRefusalReason,
  type CallbackSource,
  type ReceiveCallbackDeps,
} from "../campaigns/delivery-reports.ts";
import type { Logger } from "../config/logger.ts";
import type { DeliveryMetrics } from "../runtime/delivery-metrics.ts";

export const ENGAGELAB_CALLBACK_PATH = "/callbacks/engagelab";
export const SMSHOOK_CALLBACK_PATH = "/callbacks/engagelab/smshook";

export interface DeliveryCallbackOptions {
  db: ReceiveCallbackDeps["db"];
  log: Logger;
  credentials: CallbackCredentials;
  /** Optional second factor: HTTP Basic "user:password". */
  basicAuth?: string;
  /** Optional second factor: the routes end in /<pathSecret>. */
  pathSecret?: string;
  maxBytes: number;
  /** Hands the stored rows to the delivery queue; called after the answer is on its way. */
  requestApply: () => Promise<void>;
  metrics: DeliveryMetrics;
  /** Injectable clock for the timestamp window. */
  nowMs?: () => number;
}

const STATUS_OF: Record<CallbackRefusalReason, number> = {
  not_configured: 503,
  unauthenticated: 401,
  bad_signature: 401,
  stale_timestamp: 401,
  malformed: 400,
};

/**
 * The provider's callback routes, as an encapsulated fastify plugin: its own body parsing (any content
 * type, an empty body, a raw buffer up to `maxBytes`), no bearer token, its own verification. The answer
 * goes out as soon as the rows are stored (EngageLab wants it within 3 s); applying them is the queue's.
 */
// eslint-disable-next-line @typescript-eslint/require-await -- fastify plugins are async functions
export async function deliveryCallbackRoutes(app: FastifyInstance, options: DeliveryCallbackOptions): Promise<void> {
  // The verification POST may come with any content type or none; the signature covers no body, so the
  // receiver reads it as bytes and parses it itself (a JSON error is then a 400 with the reason).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: options.maxBytes }, (_request, body, done) =>
    done(null, body),
  );
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE" || error.statusCode === 413) {
      options.metrics.countRefusal("too_large");
      return reply
        .code(413)
        .send({ error: { code: "callback_too_large", message: `callback body over ${options.maxBytes} bytes` } });
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      options.metrics.countRefusal("malformed");
      return reply.code(400).send({ error: { code: "callback_malformed", message: error.message } });
    }
    options.log.error({ err: error }, "delivery callback failed");
    return reply.code(500).send({ error: { code: "internal", message: "internal error" } });
  });

  // Receipt → answer of every callback (refusals too), server side: what the provider waits for.
  app.addHook("onResponse", (_request, reply, done) => {
    options.metrics.observeCallback(reply.elapsedTime / 1000);
    done();
  });

  const suffix = options.pathSecret === undefined ? "" : "/:pathSecret";
  const schema = (summary: string) => ({ schema: { tags: ["callbacks"], summary, security: [] } });
  app.post(
    `${ENGAGELAB_CALLBACK_PATH}${suffix}`,
    schema("EngageLab message-status and reply callbacks (X-CALLBACK-ID HMAC)"),
    (request, reply) => receive("engagelab", request, reply),
  );
  app.post(
    `${SMSHOOK_CALLBACK_PATH}${suffix}`,
    schema("EngageLab legacy SMSHook callbacks (md5 signature)"),
    (request, reply) => receive("smshook", request, reply),
  );

  async function receive(source: CallbackSource, request: FastifyRequest, reply: FastifyReply) {
    if (
      options.pathSecret !== undefined &&
      !safeEqual((request.params as { pathSecret?: string }).pathSecret ?? "", options.pathSecret)
    ) {
      return reply.code(404).send({ error: { code: "route_not_found", message: "no such route" } });
    }
    if (options.basicAuth !== undefined && !basicAuthMatches(request.headers.authorization, options.basicAuth)) {
      options.metrics.countRefusal("unauthenticated");
      return reply
        .code(401)
        .send({ error: { code: "callback_unauthenticated", message: "HTTP Basic credentials required" } });
    }
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    try {
      const outcome = await receiveDeliveryCallback(
        { db: options.db, credentials: options.credentials, nowMs: options.nowMs },
        { source, headers: request.headers, body },
      );
      if (outcome.kind === "stored") {
        options.metrics.outcomes.stored += outcome.rows;
        // Not awaited: the answer must not wait for Redis. A lost request is covered by the sweep job.
        void options
          .requestApply()
          .catch((error: unknown) =>
            options.log.warn({ err: error }, "could not queue delivery reports; the sweep will apply them"),
          );
      } else if (outcome.kind === "replay") options.metrics.outcomes.replays += 1;
      else options.metrics.outcomes.verifications += 1;
      return reply.code(200).send({ ok: true });
    } catch (error) {
      if (!(error instanceof CallbackRefusedError)) throw error;
      options.metrics.countRefusal(error.reason);
      return reply.code(STATUS_OF[error.reason]).send({ error: { code: error.code, message: error.message } });
    }
  }
}

function basicAuthMatches(header: string | undefined, expected: string): boolean {
  const match = header === undefined ? null : /^Basic\s+(\S+)\s*$/i.exec(header);
  const given = match ? Buffer.from(match[1]!, "base64").toString("utf8") : "";
  return safeEqual(given, expected);
}

function safeEqual(given: string, expected: string): boolean {
  const a = Buffer.from(given, "utf8");
  const b = Buffer.from(expected, "utf8");
  return a.length === b.length ? timingSafeEqual(a, b) : !timingSafeEqual(b, b);
}
