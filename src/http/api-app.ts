import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { ApiContext } from "../runtime/api-context.ts";

/** The fastify instance every route module registers on: zod schemas for types, validation and OpenAPI. */
export type ApiApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;

/** Event streams and other long requests end when the server closes (graceful shutdown). */
export interface AppLifecycle {
  closing: AbortSignal;
}

/** Route option of every state-changing route: the per-token write limit. */
export function writeRateLimit(ctx: ApiContext) {
  return { max: ctx.config.api.writeRateLimitPerMinute, timeWindow: "1 minute" };
}
