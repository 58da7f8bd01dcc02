/**
 * A local fake of the EngageLab SMS provider ("the sandbox"): every API from the seeds on one
 * node:http server, told apart by path, with a ledger of what was accepted and fault knobs.
 *
 * Send requests (/v1/messages, /v1/send, /v1/custom-messages) go through: latency (which also
 * delays auth and parse errors) → auth → body parsing → one queued failNext fault, or else random
 * hang → throttle → error → validation → send.
 * Magic template ids that force API errors are listed in magic-templates.ts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { CallbackReporter, DEFAULT_CALLBACK_SETTINGS, type CallbackSettings } from "./callbacks.ts";
import { handleControl } from "./control-api.ts";
import { chance, type SandboxContext } from "./context.ts";
import { customEndpoint } from "./custom-api.ts";
import { FaultQueue } from "./faults.ts";
import { hasValidBasicAuth, jsonReply, parseJson, readBody, writeReply, type Reply, type RequestBody } from "./http.ts";
import { legacyEndpoint } from "./legacy-api.ts";
import { RequestIdCache } from "./request-id-cache.ts";
import { SandboxLedger, type RequestOutcome, type SandboxRequest } from "./ledger.ts";
import { messagesEndpoint } from "./messages-api.ts";
import {
  DEFAULT_HOST,
  DEFAULT_KNOBS,
  DEFAULT_PORT,
  pickKnobs,
  type FaultDetail,
  type FaultKind,
  type SandboxKnobs,
  type SandboxOptions,
  type SandboxPlatform,
} from "./options.ts";
import { IdSequence, mulberry32 } from "./random.ts";
import type { SendEndpoint } from "./send-endpoint.ts";
import { MessagesTemplates, TemplateStore } from "./template-store.ts";
import { handleTemplates } from "./templates-api.ts";

export { sandboxOptionsFromEnv } from "./options.ts";
export type { FaultDetail, FaultKind, KeyPair, SandboxOptions, SandboxPlatform } from "./options.ts";
export type { CallbackSettings, CallbackStats, ReportDecision } from "./callbacks.ts";
export { SandboxLedger } from "./ledger.ts";
export type { SandboxStats, SendApi, SandboxApi, SandboxRequest, RequestOutcome, Refusal } from "./ledger.ts";

export interface SandboxServer {
  /** e.g. "http://127.0.0.1:4010" */
  url: string;
  port: number;
  /** Stops listening and destroys every open socket, hanging ones included. */
  close(): Promise<void>;
  /** Direct access for in-process tests. */
  ledger: SandboxLedger;
  /** Changes knobs at run time; port and host are fixed once listening and are ignored. */
  setOptions(patch: Partial<SandboxOptions>): void;
  /** The next `n` send requests get this fault, ahead of any random ones (`detail`: see FaultKind). */
  failNext(n: number, kind: FaultKind, detail?: FaultDetail): void;
  /** These numbers are refused as invalid by every send API until reset. */
  refuseNumbers(numbers: readonly string[]): void;
  /** v1/messages answers 4001 (template does not exist) for these template ids from now on. */
  markMessagesTemplatesMissing(ids: readonly string[]): void;
  /**
   * Opens one more port on this same sandbox (same ledger, knobs and faults) whose send requests are
   * logged with `via: tag`: give each client process its own URL to know which one sent what.
   */
  listen(tag: string): Promise<string>;
  /** Delivery callbacks: decisions per number, stats, replies (uplink). */
  callbacks: CallbackReporter;
}

function requestTargets(body: unknown): string[] {
  if (typeof body !== "object" || body === null) return [];
  const to = (body as { to?: unknown }).to;
  if (typeof to === "string") return [to];
  return Array.isArray(to) ? to.filter((t): t is string => typeof t === "string") : [];
}

function describeRequest(entry: SandboxRequest, body: unknown): void {
  entry.targets = requestTargets(body);
  if (typeof body !== "object" || body === null) return;
  const { to: _to, ...fields } = body as Record<string, unknown>;
  entry.fields = fields;
  const { request_id, custom_args } = body as { request_id?: unknown; custom_args?: unknown };
  if (typeof request_id === "string") entry.requestId = request_id;
  const batchId =
    typeof custom_args === "object" && custom_args !== null
      ? (custom_args as { batch_id?: unknown }).batch_id
      : undefined;
  if (typeof batchId === "string") entry.batchId = batchId;
}

function replyCode(reply: Reply): number | undefined {
  try {
    const code = (JSON.parse(reply.text) as { code?: unknown }).code;
    return typeof code === "number" ? code : undefined;
  } catch {
    return undefined;
  }
}

// legacy body.vars may be up to 1MB on its own.
const MAX_BODY_BYTES = 4 * 1024 * 1024;
const INTERNAL_ERROR = { code: 1000, message: "internal error" };
const SEND_ENDPOINTS = new Map<string, SendEndpoint>(
  [messagesEndpoint, legacyEndpoint, customEndpoint].map((endpoint) => [endpoint.path, endpoint]),
);

function makeRandom(seed: number | undefined): () => number {
  if (seed === undefined) return Math.random;
  if (!Number.isFinite(seed)) throw new RangeError("seed must be a finite number");
  return mulberry32(seed);
}

function validatePort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError("port must be an integer 0..65535");
  return port;
}

function ignore(): void {}

/** The same answer as if it were another request's: another request_id (legacy) or plan_id (messages). */
function foreignAnswer(reply: Reply): Reply {
  try {
    const body = JSON.parse(reply.text) as Record<string, unknown>;
    if ("request_id" in body || !("plan_id" in body)) body.request_id = "someone-else";
    else body.plan_id = "someone-else";
    return { ...reply, text: JSON.stringify(body) };
  } catch {
    return reply;
  }
}

function faultError(code: number, message: string | undefined): { code: number; message: string } {
  return { code, message: message ?? `sandbox fault: code ${code}` };
}

export async function startSandbox(options: SandboxOptions = {}): Promise<SandboxServer> {
  const knobs: SandboxKnobs = { ...DEFAULT_KNOBS, ...pickKnobs(options) };
  const port = validatePort(options.port ?? DEFAULT_PORT);
  const host = options.host ?? DEFAULT_HOST;
  let random = makeRandom(options.seed);
  let log = options.log ?? ignore;

  const nowMs = options.clock ?? ((): number => Date.now());
  const ledger = new SandboxLedger();
  const faults = new FaultQueue();
  const ctx: SandboxContext = {
    knobs,
    ids: new IdSequence(),
    ledger,
    templates: new TemplateStore(nowMs, options.legacyTemplates),
    messagesTemplates: new MessagesTemplates(),
    requestIds: new RequestIdCache(() => knobs.requestIdTtlMs, nowMs),
    refusedNumbers: new Set<string>(),
    reports: new CallbackReporter(
      () => random(),
      () => nowMs(),
      (msg) => log(msg),
    ),
    random: () => random(),
    nowMs,
    log: (msg) => log(msg),
  };
  ctx.messagesTemplates.markMissing(options.missingMessagesTemplates ?? []);
  const callbackSettings = (patch: SandboxOptions["callbacks"]): CallbackSettings | undefined =>
    patch === undefined ? undefined : { ...DEFAULT_CALLBACK_SETTINGS, ...patch };
  ctx.reports.configure(callbackSettings(options.callbacks));
  // Aborted by close() so pending latency sleeps stop instead of outliving the server.
  const shutdown = new AbortController();

  // Each platform checks its own pair: another platform's pair is as wrong as a made-up one.
  const isAuthorized = (req: IncomingMessage, platform: SandboxPlatform): boolean => {
    const pair = knobs.credentials[platform];
    return hasValidBasicAuth(req.headers.authorization, pair.key, pair.secret);
  };

  async function applyLatency(): Promise<void> {
    if (knobs.latencyMs > 0) await sleep(knobs.latencyMs, undefined, { signal: shutdown.signal });
  }

  function answerApi(res: ServerResponse, reply: Reply, entry?: SandboxRequest, outcome?: RequestOutcome): void {
    if (reply.status === 401) ledger.count("unauthorized");
    else if (reply.status >= 400 && reply.status < 500 && reply.status !== 429) ledger.count("badRequests");
    if (entry) {
      finish(entry, reply.status, outcome ?? (reply.status === 401 ? "unauthorized" : "bad-request"));
      if (reply.text.length <= 4_096) entry.response = reply.text;
    }
    writeReply(res, reply);
  }

  function finish(entry: SandboxRequest, status: number | undefined, outcome: RequestOutcome): void {
    entry.outcome = outcome;
    if (status !== undefined) entry.status = status;
    if (outcome !== "hang") entry.answeredAt = nowMs();
  }

  function randomFault(): FaultKind | undefined {
    if (chance(ctx, knobs.hangRate)) return "hang";
    if (chance(ctx, knobs.throttleRate)) return "throttle";
    if (chance(ctx, knobs.errorRate)) return "error";
    if (chance(ctx, knobs.loseResponseRate)) return "lose-response";
    return undefined;
  }

  async function handleSend(
    endpoint: SendEndpoint,
    req: IncomingMessage,
    res: ServerResponse,
    body: RequestBody,
    via: string | undefined,
  ) {
    ledger.countRequest(endpoint.api);
    const entry = ledger.openRequest(endpoint.api, nowMs(), via);
    res.once("close", () => {
      if (entry.answeredAt === undefined || !res.writableFinished) entry.abandonedAt ??= nowMs();
    });
    const parsed = parseJson(body.text);
    // Described on arrival, so a request still in its latency already says what it carries.
    if (parsed.ok && !body.tooLarge) describeRequest(entry, parsed.value);
    await applyLatency();
    if (!isAuthorized(req, endpoint.platform))
      return answerApi(res, endpoint.errorReply(ctx, 401, endpoint.unauthorized), entry);
    if (body.tooLarge) {
      const tooLarge = { code: endpoint.invalidParameter, message: "request body too large" };
      return answerApi(res, endpoint.errorReply(ctx, 413, tooLarge), entry);
    }
    if (!parsed.ok) return answerApi(res, endpoint.errorReply(ctx, 400, endpoint.invalidJson), entry);

    const queued = faults.take();
    const fault = queued?.kind ?? randomFault();
    if (fault) log(`sandbox: ${queued ? "queued" : "random"} fault "${fault}" on ${endpoint.path}`);
    switch (fault) {
      case "hang":
        // Deliberately never answered; close() or the client's own timeout ends it.
        ledger.count("hung");
        finish(entry, undefined, "hang");
        return;
      case "throttle":
        ledger.count("throttled");
        finish(entry, 429, "throttle");
        return writeReply(
          res,
          jsonReply(429, { message: "too many requests" }, { "retry-after": String(knobs.retryAfterSeconds) }),
        );
      case "error":
        ledger.count("errors");
        finish(entry, 500, "error");
        return writeReply(res, endpoint.errorReply(ctx, 500, INTERNAL_ERROR, parsed.value));
      case "reject": {
        // Refused before anything is sent, with whatever status and code the test asked for (HTTP 200 too).
        const status = queued?.status ?? 400;
        const code = queued?.code ?? 3003;
        for (const target of entry.targets) ledger.recordRefused(endpoint.api, target, code);
        const reply = endpoint.errorReply(ctx, status, faultError(code, queued?.message), parsed.value);
        return answerApi(res, reply, entry, "refused");
      }
      case "partial-accept": {
        // The provider took part of the request, then failed: the first `accepted` targets are sent.
        const count = queued?.accepted ?? Math.max(1, Math.floor(entry.targets.length / 2));
        const sentPart = sendPart(endpoint, parsed.value, count);
        ledger.count("errors");
        const error = faultError(queued?.code ?? 1000, queued?.message);
        const reply = endpoint.errorReply(ctx, queued?.status ?? 500, error, parsed.value, sentPart);
        return answerApi(res, reply, entry, sentPart > 0 ? "partial" : "refused");
      }
      case "error-after-send": {
        // Sent in full, then a gateway error page: the client cannot tell that anything went out.
        const sentAll = sendPart(endpoint, parsed.value, entry.targets.length);
        ledger.count("errors");
        const reply = { status: queued?.status ?? 500, text: "<html><body>502 Bad Gateway</body></html>" };
        return answerApi(
          res,
          { ...reply, headers: { "content-type": "text/html" } },
          entry,
          sentAll > 0 ? "sent" : "refused",
        );
      }
    }

    const acceptedBefore = ledger.stats().accepted[endpoint.api];
    const dedupBefore = ledger.stats().dedupHits;
    const reply = endpoint.send(ctx, parsed.value);
    const acceptedNow = ledger.stats().accepted[endpoint.api] - acceptedBefore;
    let outcome: RequestOutcome;
    if (ledger.stats().dedupHits > dedupBefore) outcome = "replay";
    else if (reply.status >= 400) outcome = "refused";
    else outcome = acceptedNow >= entry.targets.length ? "sent" : acceptedNow > 0 ? "partial" : "refused";
    if (acceptedNow > 0) {
      const scheduleTime = entry.fields?.schedule_time;
      entry.sendsAt = typeof scheduleTime === "number" ? scheduleTime * 1000 : entry.receivedAt;
    }
    if (reply.status >= 400 && outcome !== "replay") {
      // A refusal of the whole request: every target it carried was refused with this code.
      const code = replyCode(reply) ?? reply.status;
      for (const target of entry.targets) ledger.recordRefused(endpoint.api, target, code);
    }
    if (fault === "foreign-answer") {
      // Sent; the answer that comes back is another request's (a proxy mixing answers up).
      return answerApi(res, foreignAnswer(reply), entry, outcome);
    }
    if (fault === "lose-response") {
      // The send happened; only the answer is lost, as when a network drops it.
      ledger.count("lostResponses");
      finish(entry, undefined, "lose-response");
      res.socket?.destroy();
      return;
    }
    answerApi(res, reply, entry, outcome);
  }

  /** Sends the first `count` targets of a request through the endpoint (its answer is dropped); returns how many were accepted. */
  function sendPart(endpoint: SendEndpoint, body: unknown, count: number): number {
    if (count <= 0) return 0;
    const to = (body as { to?: unknown }).to;
    const part = Array.isArray(to) ? { ...(body as Record<string, unknown>), to: to.slice(0, count) } : body;
    const before = ledger.stats().accepted[endpoint.api];
    endpoint.send(ctx, part);
    return ledger.stats().accepted[endpoint.api] - before;
  }

  async function handleTemplateRequest(req: IncomingMessage, res: ServerResponse, url: URL, body: RequestBody) {
    ledger.countRequest("templates");
    await applyLatency();
    // The template API is the legacy platform's, signed with its sms_user:sms_key.
    if (!isAuthorized(req, legacyEndpoint.platform)) return answerApi(res, jsonReply(401, legacyEndpoint.unauthorized));
    if (body.tooLarge) return answerApi(res, jsonReply(413, { code: 30001, message: "request body too large" }));
    answerApi(res, handleTemplates(ctx, req.method ?? "GET", url.pathname, url.searchParams, body.text));
  }

  const controlHooks = {
    ctx,
    applyKnobs: (patch: Partial<SandboxKnobs>) => Object.assign(knobs, patch),
    failNext: (count: number, kind: FaultKind, detail?: FaultDetail) => faults.add(count, kind, detail),
    pendingFaults: () => faults.pending(),
    reset: () => {
      ledger.reset();
      ctx.requestIds.clear();
      ctx.refusedNumbers.clear();
      ctx.reports.reset();
      faults.clear();
    },
  };

  async function route(req: IncomingMessage, res: ServerResponse, via: string | undefined): Promise<void> {
    const url = new URL(req.url ?? "/", "http://sandbox.invalid");
    const method = req.method ?? "GET";
    const body = await readBody(req, MAX_BODY_BYTES);

    if (url.pathname === "/_sandbox" || url.pathname.startsWith("/_sandbox/")) {
      return handleControl(controlHooks, method, url, body.text, res);
    }
    const endpoint = SEND_ENDPOINTS.get(url.pathname);
    if (endpoint) {
      if (method !== "POST") {
        return writeReply(res, { ...jsonReply(405, { message: "method not allowed" }), headers: { allow: "POST" } });
      }
      return handleSend(endpoint, req, res, body, via);
    }
    if (url.pathname === "/v1/templates" || url.pathname.startsWith("/v1/templates/")) {
      return handleTemplateRequest(req, res, url, body);
    }
    writeReply(res, jsonReply(404, { message: "not found" }));
  }

  const makeServer = (via: string | undefined) =>
    createServer((req, res) => {
      route(req, res, via).catch((error: unknown) => {
        // While closing, sockets are being destroyed on purpose; nothing left to answer.
        if (shutdown.signal.aborted) return;
        log(
          `sandbox: ${req.method ?? "?"} ${req.url ?? "?"} failed: ${error instanceof Error ? error.message : String(error)}`,
        );
        writeReply(res, jsonReply(500, INTERNAL_ERROR));
      });
    });
  const listenOn = (srv: ReturnType<typeof makeServer>, onPort: number): Promise<string> =>
    new Promise<string>((resolve, reject) => {
      srv.once("error", reject);
      srv.listen(onPort, host, () => {
        srv.off("error", reject);
        const bound = (srv.address() as AddressInfo).port;
        resolve(`http://${host.includes(":") ? `[${host}]` : host}:${bound}`);
      });
    });

  const server = makeServer(undefined);
  const extraServers: ReturnType<typeof makeServer>[] = [];
  const url = await listenOn(server, port);
  const boundPort = (server.address() as AddressInfo).port;
  log(`sandbox: listening on ${url}`);

  let closing: Promise<void> | undefined;
  return {
    url,
    port: boundPort,
    ledger,
    close() {
      shutdown.abort();
      ctx.reports.close();
      closing ??= Promise.all(
        [server, ...extraServers].map(
          (srv) =>
            new Promise<void>((resolve, reject) => {
              srv.close((error) => (error ? reject(error) : resolve()));
              srv.closeAllConnections();
            }),
        ),
      ).then(() => log("sandbox: closed"));
      return closing;
    },
    setOptions(patch) {
      Object.assign(knobs, pickKnobs(patch, knobs));
      if ("seed" in patch) random = makeRandom(patch.seed);
      if (patch.log) log = patch.log;
      if (patch.callbacks) ctx.reports.configure(callbackSettings(patch.callbacks));
    },
    failNext(n, kind, detail) {
      faults.add(n, kind, detail);
    },
    callbacks: ctx.reports,
    refuseNumbers(numbers) {
      for (const n of numbers) ctx.refusedNumbers.add(n);
    },
    markMessagesTemplatesMissing(ids) {
      ctx.messagesTemplates.markMissing(ids);
    },
    async listen(tag) {
      if (shutdown.signal.aborted) throw new Error("sandbox is closed");
      const extra = makeServer(tag);
      extraServers.push(extra);
      const extraUrl = await listenOn(extra, 0);
      log(`sandbox: listening on ${extraUrl} for ${tag}`);
      return extraUrl;
    },
  };
}
