import type { CallbackSettings } from "./callbacks.ts";
import type { SeedTemplate } from "./template-store.ts";

/**
 * error: HTTP 500 code 1000, nothing sent (v1/messages says accepted_count 0).
 * throttle: HTTP 429 with Retry-After. hang: never answered. lose-response: sent, then the socket is destroyed.
 * reject: nothing sent, answered `status` (default 400) with `code` (default 3003) in the API's error shape;
 *   HTTP 200 with an error code, 2002/401, 2004/403, 3003/400 and 3004/400 are all this kind.
 * partial-accept: the first `accepted` targets (default half, at least one) are sent, then answered `status`
 *   (default 500) with `code` (default 1000); v1/messages' body says how many were accepted.
 * error-after-send: the whole request is sent, then answered `status` (default 500) with a body that is not
 *   JSON (a gateway's error page), so the client cannot tell that it was sent.
 * foreign-answer: the request is sent, and answered with another request's answer (legacy: another
 *   request_id; as a proxy mixing up answers would).
 */
export type FaultKind =
  "error" | "throttle" | "hang" | "lose-response" | "reject" | "partial-accept" | "error-after-send" | "foreign-answer";
export const FAULT_KINDS: readonly FaultKind[] = [
  "error",
  "throttle",
  "hang",
  "lose-response",
  "reject",
  "partial-accept",
  "error-after-send",
  "foreign-answer",
];

/** How a reject, partial-accept or error-after-send fault answers; ignored by the other kinds. */
export interface FaultDetail {
  /** HTTP status of the answer. */
  status?: number;
  /** Provider code in the body (not for error-after-send). */
  code?: number;
  message?: string;
  /** partial-accept: how many of the request's targets are sent. */
  accepted?: number;
}

export interface Fault extends FaultDetail {
  kind: FaultKind;
}

/** Checks a fault's detail; throws RangeError naming the bad field. */
export function validateFault(kind: unknown, detail: Record<string, unknown>): Fault {
  if (typeof kind !== "string" || !FAULT_KINDS.includes(kind as FaultKind)) {
    throw new RangeError(`kind must be one of ${FAULT_KINDS.join(", ")}`);
  }
  const fault: Fault = { kind: kind as FaultKind };
  const { status, code, message, accepted } = detail;
  if (status !== undefined) {
    if (typeof status !== "number" || !Number.isInteger(status) || status < 200 || status > 599)
      throw new RangeError("status must be an HTTP status 200..599");
    fault.status = status;
  }
  if (code !== undefined) {
    if (typeof code !== "number" || !Number.isInteger(code)) throw new RangeError("code must be an integer");
    fault.code = code;
  }
  if (message !== undefined) {
    if (typeof message !== "string") throw new RangeError("message must be a string");
    fault.message = message;
  }
  if (accepted !== undefined) {
    if (typeof accepted !== "number" || !Number.isInteger(accepted) || accepted < 0)
      throw new RangeError("accepted must be a non-negative integer");
    fault.accepted = accepted;
  }
  return fault;
}

/**
 * EngageLab's three platforms, each with its own key pair: v1/messages ("messages"), legacy v1/send and
 * /v1/templates ("sms", sms_user:sms_key), v1/custom-messages ("otp"). A request signed with another
 * platform's pair is refused like any wrong pair.
 */
export type SandboxPlatform = "messages" | "sms" | "otp";
export const SANDBOX_PLATFORMS: readonly SandboxPlatform[] = ["messages", "sms", "otp"];

export interface KeyPair {
  key: string;
  secret: string;
}

export interface SandboxOptions {
  /** Default 4010; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default "sandbox-key": the key of every platform not given its own pair in `credentials`. */
  apiKey?: string;
  /** Default "sandbox-secret". */
  apiSecret?: string;
  /** A pair per platform, overriding apiKey/apiSecret for that platform. */
  credentials?: Partial<Record<SandboxPlatform, KeyPair>>;
  /** Delay added before every /v1 response. Default 0. */
  latencyMs?: number;
  /** Fraction (0..1) of send requests answered HTTP 500 {code:1000,message:"internal error"}. */
  errorRate?: number;
  /** Fraction (0..1) of well-formed numbers refused as invalid. */
  invalidRate?: number;
  /** Fraction (0..1) of send requests answered HTTP 429 {"message":"too many requests"} with Retry-After. */
  throttleRate?: number;
  /** Retry-After header value (whole seconds) on throttled replies. Default 1. */
  retryAfterSeconds?: number;
  /** Fraction (0..1) of send requests that never get a response. */
  hangRate?: number;
  /** Fraction (0..1) of send requests that are sent and recorded, then lose their answer (socket destroyed). */
  loseResponseRate?: number;
  /** How long a legacy request_id replays its first response. Default 3_600_000 (1 hour). */
  requestIdTtlMs?: number;
  /** Legacy v1/send refuses a `vars` value longer than this (seed 001: 16 by default); 0 = no limit. */
  legacyVarMaxChars?: number;
  /**
   * How legacy v1/send echoes numbers in `sms_ids` and `failed_items`: as sent (default), digits only
   * (no `+`), or with an international `00` prefix. The real provider's form is not documented.
   */
  legacyEchoForm?: LegacyEchoForm;
  /** PRNG seed for deterministic runs; without it Math.random is used. */
  seed?: number;
  log?: (msg: string) => void;
  /** Delivery callbacks (callbacks.ts): off until `url` is given. */
  callbacks?: Partial<CallbackSettings> & { url: string };
  /** The sandbox's clock (callback timestamps and delays); tests move it to simulate long outages. */
  clock?: () => number;
  /** The legacy template store's starting content; default: template 1, approved. [] starts it empty. */
  legacyTemplates?: readonly SeedTemplate[];
  /** v1/messages template ids that do not exist (answered 4001); more with markMessagesTemplatesMissing. */
  missingMessagesTemplates?: readonly string[];
}

/** The options that may change while the server runs. */
export interface SandboxKnobs {
  /** The pair each platform accepts. */
  credentials: Record<SandboxPlatform, KeyPair>;
  latencyMs: number;
  errorRate: number;
  invalidRate: number;
  throttleRate: number;
  retryAfterSeconds: number;
  hangRate: number;
  loseResponseRate: number;
  requestIdTtlMs: number;
  legacyVarMaxChars: number;
  legacyEchoForm: LegacyEchoForm;
}

export type LegacyEchoForm = "as-sent" | "digits" | "00";
export const LEGACY_ECHO_FORMS: readonly LegacyEchoForm[] = ["as-sent", "digits", "00"];

export const DEFAULT_PORT = 4010;
export const DEFAULT_HOST = "127.0.0.1";

const DEFAULT_PAIR: Readonly<KeyPair> = { key: "sandbox-key", secret: "sandbox-secret" };

export const DEFAULT_KNOBS: Readonly<SandboxKnobs> = {
  credentials: { messages: DEFAULT_PAIR, sms: DEFAULT_PAIR, otp: DEFAULT_PAIR },
  latencyMs: 0,
  errorRate: 0,
  invalidRate: 0,
  throttleRate: 0,
  retryAfterSeconds: 1,
  hangRate: 0,
  loseResponseRate: 0,
  requestIdTtlMs: 3_600_000,
  legacyVarMaxChars: 16,
  legacyEchoForm: "as-sent",
};

const RATE_KNOBS = ["errorRate", "invalidRate", "throttleRate", "hangRate", "loseResponseRate"] as const;
const NON_NEGATIVE_KNOBS = ["latencyMs", "requestIdTtlMs", "legacyVarMaxChars"] as const;

/** Knobs that POST /_sandbox/config may change (credentials stay out of HTTP on purpose). */
export const HTTP_TUNABLE_KNOBS = [
  ...RATE_KNOBS,
  ...NON_NEGATIVE_KNOBS,
  "retryAfterSeconds",
  "legacyEchoForm",
] as const;
export type HttpTunableKnob = (typeof HTTP_TUNABLE_KNOBS)[number];

/**
 * Returns only the knob fields of `options`, validated; throws RangeError naming the bad field. Credentials
 * given (apiKey/apiSecret for every platform, `credentials` per platform) are applied over `current`.
 */
export function pickKnobs(
  options: Partial<SandboxOptions>,
  current: Pick<SandboxKnobs, "credentials"> = DEFAULT_KNOBS,
): Partial<SandboxKnobs> {
  const knobs: Partial<SandboxKnobs> = {};
  for (const name of RATE_KNOBS) {
    const value = options[name];
    if (value === undefined) continue;
    if (!isFiniteNumber(value) || value < 0 || value > 1) {
      throw new RangeError(`${name} must be a number between 0 and 1`);
    }
    knobs[name] = value;
  }
  for (const name of NON_NEGATIVE_KNOBS) {
    const value = options[name];
    if (value === undefined) continue;
    if (!isFiniteNumber(value) || value < 0) throw new RangeError(`${name} must be a non-negative number`);
    knobs[name] = value;
  }
  if (options.retryAfterSeconds !== undefined) {
    const value = options.retryAfterSeconds;
    // Retry-After only allows whole seconds.
    if (!Number.isInteger(value) || value < 0) {
      throw new RangeError("retryAfterSeconds must be a non-negative integer");
    }
    knobs.retryAfterSeconds = value;
  }
  if (options.legacyEchoForm !== undefined) {
    if (!LEGACY_ECHO_FORMS.includes(options.legacyEchoForm))
      throw new RangeError(`legacyEchoForm must be one of ${LEGACY_ECHO_FORMS.join(", ")}`);
    knobs.legacyEchoForm = options.legacyEchoForm;
  }
  for (const name of ["apiKey", "apiSecret"] as const) {
    const value = options[name];
    if (value !== undefined && (typeof value !== "string" || value.length === 0))
      throw new RangeError(`${name} must be a non-empty string`);
  }
  const perPlatform = options.credentials ?? {};
  for (const [platform, pair] of Object.entries(perPlatform)) {
    if (!SANDBOX_PLATFORMS.includes(platform as SandboxPlatform))
      throw new RangeError(`credentials: unknown platform ${platform}; platforms are ${SANDBOX_PLATFORMS.join(", ")}`);
    if (pair === undefined) continue;
    if (typeof pair.key !== "string" || pair.key === "" || typeof pair.secret !== "string" || pair.secret === "")
      throw new RangeError(`credentials.${platform} must have a non-empty key and secret`);
  }
  if (options.apiKey !== undefined || options.apiSecret !== undefined || options.credentials !== undefined) {
    const credentials = { ...current.credentials };
    for (const platform of SANDBOX_PLATFORMS) {
      const own = perPlatform[platform];
      if (own) credentials[platform] = { key: own.key, secret: own.secret };
      else if (options.apiKey !== undefined || options.apiSecret !== undefined)
        credentials[platform] = {
          key: options.apiKey ?? credentials[platform].key,
          secret: options.apiSecret ?? credentials[platform].secret,
        };
    }
    knobs.credentials = credentials;
  }
  return knobs;
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

const NUMBER_TEXT = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

type EnvNumberRule = { kind: "rate" } | { kind: "non-negative" } | { kind: "integer"; min: number; max: number };

function readEnvNumber(env: NodeJS.ProcessEnv, name: string, rule: EnvNumberRule): number | undefined {
  const text = env[name]?.trim();
  if (text === undefined || text === "") return undefined;
  const value = NUMBER_TEXT.test(text) ? Number(text) : Number.NaN;
  switch (rule.kind) {
    case "rate":
      if (!(value >= 0 && value <= 1)) throw new Error(`${name} must be a number between 0 and 1 (got "${text}")`);
      break;
    case "non-negative":
      if (!(value >= 0) || !Number.isFinite(value))
        throw new Error(`${name} must be a non-negative number (got "${text}")`);
      break;
    case "integer":
      if (!Number.isInteger(value) || value < rule.min || value > rule.max) {
        throw new Error(`${name} must be an integer between ${rule.min} and ${rule.max} (got "${text}")`);
      }
      break;
  }
  return value;
}

/** Per-platform pairs, named like the product's ENGAGELAB_* pairs. */
const PLATFORM_PAIR_VARIABLES: readonly (readonly [SandboxPlatform, string, string])[] = [
  ["messages", "SANDBOX_MESSAGES_KEY", "SANDBOX_MESSAGES_SECRET"],
  ["sms", "SANDBOX_SMS_USER", "SANDBOX_SMS_KEY"],
  ["otp", "SANDBOX_OTP_KEY", "SANDBOX_OTP_SECRET"],
];

/**
 * Reads SANDBOX_* variables; unset or empty ones are left out so defaults apply.
 * Throws an Error naming the variable when a value is malformed.
 */
export function sandboxOptionsFromEnv(env: NodeJS.ProcessEnv): SandboxOptions {
  const options: SandboxOptions = {
    port: readEnvNumber(env, "SANDBOX_PORT", { kind: "integer", min: 0, max: 65535 }),
    latencyMs: readEnvNumber(env, "SANDBOX_LATENCY_MS", { kind: "non-negative" }),
    errorRate: readEnvNumber(env, "SANDBOX_ERROR_RATE", { kind: "rate" }),
    invalidRate: readEnvNumber(env, "SANDBOX_INVALID_RATE", { kind: "rate" }),
    throttleRate: readEnvNumber(env, "SANDBOX_THROTTLE_RATE", { kind: "rate" }),
    hangRate: readEnvNumber(env, "SANDBOX_HANG_RATE", { kind: "rate" }),
    loseResponseRate: readEnvNumber(env, "SANDBOX_LOSE_RESPONSE_RATE", { kind: "rate" }),
    retryAfterSeconds: readEnvNumber(env, "SANDBOX_RETRY_AFTER_SECONDS", {
      kind: "integer",
      min: 0,
      max: 86_400,
    }),
    requestIdTtlMs: readEnvNumber(env, "SANDBOX_REQUEST_ID_TTL_MS", { kind: "non-negative" }),
    seed: readEnvNumber(env, "SANDBOX_SEED", {
      kind: "integer",
      min: Number.MIN_SAFE_INTEGER,
      max: Number.MAX_SAFE_INTEGER,
    }),
  };
  const host = env.SANDBOX_HOST?.trim();
  if (host) options.host = host;
  // Credentials are taken verbatim and never included in error messages.
  if (env.SANDBOX_API_KEY) options.apiKey = env.SANDBOX_API_KEY;
  if (env.SANDBOX_API_SECRET) options.apiSecret = env.SANDBOX_API_SECRET;
  const credentials: Partial<Record<SandboxPlatform, KeyPair>> = {};
  for (const [platform, keyName, secretName] of PLATFORM_PAIR_VARIABLES) {
    const key = env[keyName];
    const secret = env[secretName];
    if (!key && !secret) continue;
    if (!key || !secret) throw new Error(`${keyName} and ${secretName} must be set together`);
    credentials[platform] = { key, secret };
  }
  if (Object.keys(credentials).length > 0) options.credentials = credentials;
  for (const key of Object.keys(options) as (keyof SandboxOptions)[]) {
    if (options[key] === undefined) delete options[key];
  }
  return options;
}
