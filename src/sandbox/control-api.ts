/**
 * /_sandbox/* test hooks. No auth: the sandbox only listens locally and these routes
 * never expose the API credentials.
 */
import type { ServerResponse } from "node:http";
import type { SandboxContext } from "./context.ts";
import { isPlainObject, jsonReply, parseJson, writeReply, type Reply } from "./http.ts";
import { SEND_APIS, type SendApi } from "./ledger.ts";
import {
  HTTP_TUNABLE_KNOBS,
  pickKnobs,
  validateFault,
  type FaultDetail,
  type FaultKind,
  type HttpTunableKnob,
  type SandboxKnobs,
} from "./options.ts";
import { APPROVAL_STATUSES, type ApprovalStatus } from "./template-store.ts";

export interface ControlHooks {
  ctx: SandboxContext;
  applyKnobs(patch: Partial<SandboxKnobs>): void;
  failNext(count: number, kind: FaultKind, detail?: FaultDetail): void;
  pendingFaults(): number;
  reset(): void;
}

function badRequest(message: string): Reply {
  return jsonReply(400, { ok: false, message });
}

function tunableKnobs(knobs: SandboxKnobs): Pick<SandboxKnobs, HttpTunableKnob> {
  return Object.fromEntries(HTTP_TUNABLE_KNOBS.map((name) => [name, knobs[name]])) as Pick<
    SandboxKnobs,
    HttpTunableKnob
  >;
}

function withJsonObject(rawBody: string, use: (body: Record<string, unknown>) => Reply): Reply {
  const parsed = parseJson(rawBody);
  if (!parsed.ok || !isPlainObject(parsed.value)) return badRequest("body must be a JSON object");
  try {
    return use(parsed.value);
  } catch (error) {
    if (error instanceof RangeError) return badRequest(error.message);
    throw error;
  }
}

function writeSent(hooks: ControlHooks, query: URLSearchParams, res: ServerResponse): void {
  const api = query.get("api");
  if (api !== null && !SEND_APIS.includes(api as SendApi)) {
    writeReply(res, badRequest(`api must be one of ${SEND_APIS.join(", ")}`));
    return;
  }
  res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
  for (const chunk of hooks.ctx.ledger.sentJsonChunks((api ?? undefined) as SendApi | undefined)) res.write(chunk);
  res.end();
}

function route(hooks: ControlHooks, method: string, pathname: string, rawBody: string): Reply {
  const { ctx } = hooks;
  const key = `${method} ${pathname.replace(/\/+$/, "")}`;
  switch (key) {
    case "GET /_sandbox/health":
      return jsonReply(200, { ok: true });
    case "GET /_sandbox/stats":
      return jsonReply(200, ctx.ledger.stats());
    case "GET /_sandbox/callbacks":
      return jsonReply(200, ctx.reports.stats());
    case "POST /_sandbox/reply":
      return withJsonObject(rawBody, (body) => {
        if (typeof body.from !== "string" || typeof body.content !== "string")
          return badRequest("from and content must be strings");
        ctx.reports.reply(body.from, body.content);
        return jsonReply(200, { ok: true });
      });
    case "POST /_sandbox/reset":
      hooks.reset();
      return jsonReply(200, { ok: true });
    case "GET /_sandbox/config":
      return jsonReply(200, { ...tunableKnobs(ctx.knobs), pendingFaults: hooks.pendingFaults() });
    case "POST /_sandbox/config":
      return withJsonObject(rawBody, (body) => {
        const unknown = Object.keys(body).filter((key) => !HTTP_TUNABLE_KNOBS.includes(key as HttpTunableKnob));
        if (unknown.length > 0) {
          return badRequest(`unknown option(s): ${unknown.join(", ")}; allowed: ${HTTP_TUNABLE_KNOBS.join(", ")}`);
        }
        hooks.applyKnobs(pickKnobs(body));
        return jsonReply(200, { ok: true, config: tunableKnobs(ctx.knobs) });
      });
    case "POST /_sandbox/refuse-numbers":
      return withJsonObject(rawBody, (body) => {
        const numbers = body.numbers;
        if (!Array.isArray(numbers) || !numbers.every((n) => typeof n === "string"))
          return badRequest("numbers must be an array of strings");
        for (const n of numbers) ctx.refusedNumbers.add(n);
        return jsonReply(200, { ok: true, refused: ctx.refusedNumbers.size });
      });
    case "POST /_sandbox/messages-templates/missing":
      return withJsonObject(rawBody, (body) => {
        const ids = body.ids;
        if (!Array.isArray(ids) || !ids.every((id) => typeof id === "string"))
          return badRequest("ids must be an array of strings");
        ctx.messagesTemplates.markMissing(ids);
        return jsonReply(200, { ok: true });
      });
    case "POST /_sandbox/fail-next":
      return withJsonObject(rawBody, (body) => {
        const { count, kind, ...detail } = body;
        if (typeof count !== "number") return badRequest("count must be a non-negative integer");
        const fault = validateFault(kind, detail);
        hooks.failNext(count, fault.kind, fault);
        return jsonReply(200, { ok: true, pendingFaults: hooks.pendingFaults() });
      });
  }

  const approval = /^POST \/_sandbox\/templates\/(\d+)\/approval$/.exec(key);
  if (approval?.[1]) {
    const id = Number(approval[1]);
    return withJsonObject(rawBody, (body) => {
      const status = body.approval_status;
      if (!APPROVAL_STATUSES.includes(status as ApprovalStatus)) {
        return badRequest(`approval_status must be one of ${APPROVAL_STATUSES.join(", ")}`);
      }
      const message = body.approval_message;
      if (message !== undefined && typeof message !== "string") return badRequest("approval_message must be a string");
      const template = ctx.templates.setApproval(id, status as ApprovalStatus, message);
      return template
        ? jsonReply(200, { result: template })
        : jsonReply(404, { ok: false, message: "no such template" });
    });
  }
  return jsonReply(404, { ok: false, message: "not found" });
}

export function handleControl(
  hooks: ControlHooks,
  method: string,
  url: URL,
  rawBody: string,
  res: ServerResponse,
): void {
  const path = url.pathname.replace(/\/+$/, "");
  if (method === "GET" && path === "/_sandbox/sent") {
    writeSent(hooks, url.searchParams, res);
    return;
  }
  if (method === "GET" && (path === "/_sandbox/requests" || path === "/_sandbox/refused")) {
    const api = url.searchParams.get("api");
    if (api !== null && !SEND_APIS.includes(api as SendApi)) {
      writeReply(res, badRequest(`api must be one of ${SEND_APIS.join(", ")}`));
      return;
    }
    if (path === "/_sandbox/requests") {
      const via = url.searchParams.get("via") ?? undefined;
      writeReply(
        res,
        jsonReply(200, hooks.ctx.ledger.requestLog({ api: (api ?? undefined) as SendApi | undefined, via })),
      );
    } else {
      const apis = api ? [api as SendApi] : SEND_APIS;
      const refused: Record<string, { code: number; times: number }> = {};
      for (const name of apis)
        for (const [target, refusal] of hooks.ctx.ledger.refused(name)) refused[target] = { ...refusal };
      writeReply(res, jsonReply(200, refused));
    }
    return;
  }
  writeReply(res, route(hooks, method, url.pathname, rawBody));
}
