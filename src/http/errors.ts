import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { z } from "zod";
import { isUserError, type UserError, type UserErrorKind } from "../model/errors.ts";

/** The one error shape of every route (and of the OpenAPI document). */
export const ErrorResponse = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      field: z.string().optional(),
      row: z.number().int().optional(),
    }),
  })
  .meta({ id: "Error" });
export type ErrorBody = z.infer<typeof ErrorResponse>;

const STATUS_OF_KIND: Readonly<Record<UserErrorKind, number>> = {
  invalid: 400,
  "not-found": 404,
  conflict: 409,
  unavailable: 503,
};

/** The few refusals whose HTTP status is more precise than their kind's. */
const STATUS_OF_CODE: Readonly<Record<string, number>> = {
  idempotency_key_reused: 422,
  upload_too_large: 413,
  // The campaign exists; its recipient detail is gone for good (`smsblast purge`).
  campaign_purged: 410,
};

/** Refusals of the HTTP door itself (credentials, role, rate), which the use cases know nothing of. */
export class HttpRefusal extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function userErrorBody(error: UserError): ErrorBody {
  return {
    error: {
      code: error.code,
      message: error.message,
      ...(error.field !== undefined ? { field: error.field } : {}),
      ...(error.row !== undefined ? { row: error.row } : {}),
    },
  };
}

export function statusOfUserError(error: UserError): number {
  return STATUS_OF_CODE[error.code] ?? STATUS_OF_KIND[error.kind];
}

/**
 * Turns anything thrown by a route into `{error: {code, message, field?, row?}}`. UserErrors keep their
 * message; request-shape errors name the field; everything else is a 500 whose message says nothing of
 * the cause (the log line, bound to the request id, has it).
 */
export function handleRouteError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (isUserError(error)) return reply.code(statusOfUserError(error)).send(userErrorBody(error));
  if (error instanceof HttpRefusal)
    return reply.code(error.statusCode).send({ error: { code: error.code, message: error.message } });
  if (hasZodFastifySchemaValidationErrors(error)) {
    const first = error.validation[0];
    const path = first?.instancePath.replace(/^\//, "").replaceAll("/", ".") ?? "";
    const field = path || error.validationContext || "body";
    return reply
      .code(400)
      .send({ error: { code: "invalid_request", message: `${field}: ${first?.message ?? "invalid"}`, field } });
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    // fastify's own refusals (malformed JSON, unsupported media type, body too large): their message is about the request.
    const code = error.code ? error.code.replace(/^FST_ERR_/, "").toLowerCase() : "bad_request";
    return reply.code(status).send({ error: { code, message: error.message } });
  }
  request.log.error({ err: error }, "request failed");
  return reply.code(500).send({
    error: {
      code: "internal_error",
      message: "internal error; the server log has the details under this request's id",
    },
  });
}
