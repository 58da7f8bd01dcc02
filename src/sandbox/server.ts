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
import { SandboxLedger } from "./ledger.ts";
import { messagesEndpoint } from "./messages-api.ts";
import {
  DEFAULT_HOST,
  DEFAULT_KNOBS,
  DEFAULT_PORT,
  pickKnobs,
  type FaultKind,
  type SandboxKnobs,
  type SandboxOptions,
} from "./options.ts";
import { IdSequence, mulberry32 } from "./random.ts";
import type { SendEndpoint } from "./send-endpoint.ts";
import { TemplateStore } from "./template-store.ts";
import { handleTemplates } from "./templates-api.ts";

export { sandboxOptionsFromEnv } from "./options.ts";
export type { FaultKind, SandboxOptions } from "./options.ts";
export type { CallbackSettings, CallbackStats, ReportDecision } from "./callbacks.ts";
export { SandboxLedger } from "./ledger.ts";
export type { SandboxStats, SendApi, SandboxApi } from "./ledger.ts";

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
  /** The next `n` send requests get this fault, ahead of any random ones. */
  failNext(n: number, kind: FaultKind): void;
  /** These numbers are refused as invalid by every send API until reset. */
  refuseNumbers(numbers: readonly string[]): void;
  /** Delivery callbacks: decisions per number, stats, replies (uplink). */
  callbacks: CallbackReporter;
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
    templates: new TemplateStore(nowMs),
    requestIds: new RequestIdCache(() => knobs.requestIdTtlMs, nowMs),
    refusedNumbers: new Set<string>(),
    reports: new CallbackReporter(() => random(), () => nowMs(), (msg) => log(msg)),
    random: () => random(),
    nowMs,
    log: (msg) => log(msg),
  };
  const callbackSettings = (patch: SandboxOptions["callbacks"]): CallbackSettings | undefined =>
    patch === undefined ? undefined : { ...DEFAULT_CALLBACK_SETTINGS, ...patch };
  ctx.reports.configure(callbackSettings(options.callbacks));
  // Aborted by close() so pending latency sleeps stop instead of outliving the server.
  const shutdown = new AbortController();

  const isAuthorized = (req: IncomingMessage): boolean =>
    hasValidBasicAuth(req.headers.authorization, knobs.apiKey, knobs.apiSecret);

  async function applyLatency(): Promise<void> {
    if (knobs.latencyMs > 0) await sleep(knobs.latencyMs, undefined, { signal: shutdown.signal });
  }

  function answerApi(res: ServerResponse, reply: Reply): void {
    if (reply.status === 401) ledger.count("unauthorized");
    else if (reply.status >= 400 && reply.status < 500 && reply.status !== 429) ledger.count("badRequests");
    writeReply(res, reply);
  }

  function randomFault(): FaultKind | undefined {
    if (chance(ctx, knobs.hangRate)) return "hang";
    if (chance(ctx, knobs.throttleRate)) return "throttle";
    if (chance(ctx, knobs.errorRate)) return "error";
    return undefined;
  }

  async function handleSend(endpoint: SendEndpoint, req: IncomingMessage, res: ServerResponse, body: RequestBody) {
    ledger.countRequest(endpoint.api);
    await applyLatency();
    if (!isAuthorized(req)) return answerApi(res, endpoint.errorReply(ctx, 401, endpoint.unauthorized));
    if (body.tooLarge) {
      const tooLarge = { code: endpoint.invalidParameter, message: "request body too large" };
      return answerApi(res, endpoint.errorReply(ctx, 413, tooLarge));
    }
    const parsed = parseJson(body.text);
    if (!parsed.ok) return answerApi(res, endpoint.errorReply(ctx, 400, endpoint.invalidJson));

    const queued = faults.take();
    const fault = queued ?? randomFault();
    if (fault) log(`sandbox: ${queued ? "queued" : "random"} fault "${fault}" on ${endpoint.path}`);
    switch (fault) {
      case "hang":
        // Deliberately never answered; close() or the client's own timeout ends it.
        ledger.count("hung");
        return;
      case "throttle":
        ledger.count("throttled");
        return writeReply(
          res,
          jsonReply(429, { message: "too many requests" }, { "retry-after": String(knobs.retryAfterSeconds) }),
        );
      case "error":
        ledger.count("errors");
        return writeReply(res, endpoint.errorReply(ctx, 500, INTERNAL_ERROR, parsed.value));
    }

    const reply = endpoint.send(ctx, parsed.value);
    if (fault === "lose-response") {
      // The send happened; only the answer is lost, as when a network drops it.
      ledger.count("lostResponses");
      res.socket?.destroy();
      return;
    }
    answerApi(res, reply);
  }

  async function handleTemplateRequest(req: IncomingMessage, res: ServerResponse, url: URL, body: RequestBody) {
    ledger.countRequest("templates");
    await applyLatency();
    if (!isAuthorized(req)) return answerApi(res, jsonReply(401, legacyEndpoint.unauthorized));
    if (body.tooLarge) return answerApi(res, jsonReply(413, { code: 30001, message: "request body too large" }));
    answerApi(res, handleTemplates(ctx, req.method ?? "GET", url.pathname, url.searchParams, body.text));
  }

  const controlHooks = {
    ctx,
    applyKnobs: (patch: Partial<SandboxKnobs>) => Object.assign(knobs, patch),
    failNext: (count: number, kind: FaultKind) => faults.add(count, kind),
    pendingFaults: () => faults.pending(),
    reset: () => {
      ledger.reset();
      ctx.requestIds.clear();
      ctx.refusedNumbers.clear();
      ctx.reports.reset();
      faults.clear();
    },
  };

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
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
      return handleSend(endpoint, req, res, body);
    }
    if (url.pathname === "/v1/templates" || url.pathname.startsWith("/v1/templates/")) {
      return handleTemplateRequest(req, res, url, body);
    }
    writeReply(res, jsonReply(404, { message: "not found" }));
  }

  const server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      // While closing, sockets are being destroyed on purpose; nothing left to answer.
      if (shutdown.signal.aborted) return;
      log(`sandbox: ${req.method ?? "?"} ${req.url ?? "?"} failed: ${error instanceof Error ? error.message : String(error)}`);
      writeReply(res, jsonReply(500, INTERNAL_ERROR));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });

  const boundPort = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${boundPort}`;
  log(`sandbox: listening on ${url}`);

  let closing: Promise<void> | undefined;
  return {
    url,
    port: boundPort,
    ledger,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        shutdown.abort();
        ctx.reports.close();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }).then(() => log("sandbox: closed"));
      return closing;
    },
    setOptions(patch) {
      Object.assign(knobs, pickKnobs(patch));
      if ("seed" in patch) random = makeRandom(patch.seed);
      if (patch.log) log = patch.log;
      if (patch.callbacks) ctx.reports.configure(callbackSettings(patch.callbacks));
    },
    failNext(n, kind) {
      faults.add(n, kind);
    },
    callbacks: ctx.reports,
    refuseNumbers(numbers) {
      for (const n of numbers) ctx.refusedNumbers.add(n);
    },
  };
}
