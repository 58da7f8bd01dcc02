import { z } from "zod";
import { DURATION_EXAMPLES, parseDuration } from "../model/duration.ts";
import { UserError } from "../model/errors.ts";
import { PhoneHasher } from "../model/phone-hash.ts";
import {
  FALLBACK_KEY_VARIABLE,
  FALLBACK_SECRET_VARIABLE,
  isSandboxUrl,
  PLATFORM_SETTINGS,
  PLATFORMS,
  type Platform,
} from "./platforms.ts";

/**
 * LEGACY_VAR_MAX_CHARS by default. Seed 001: each legacy `vars` value is at most 16 characters unless
 * EngageLab support raised it, and may not contain an HTTP link (docs/engagelab-apis.md#legacy-in-smsblast).
 */
export const DEFAULT_LEGACY_VAR_MAX_CHARS = 16;

/**
 * PROVIDER_SCHEDULE_MARGIN_S by default: schedule_time is sent only when at least 3 minutes plus this margin
 * remain as the request leaves, so clock skew and time in flight never make the provider refuse it, or worse,
 * send early. A batch with less time left waits in smsblast and goes without schedule_time
 * (src/campaigns/batch-decision.ts, decideScheduleTime).
 */
export const DEFAULT_SCHEDULE_MARGIN_SECONDS = 60;

/** Credentials the sandbox provider accepts when no real EngageLab key is configured. */
export const SANDBOX_API_KEY = "sandbox-key";
export const SANDBOX_API_SECRET = "sandbox-secret";
export const SANDBOX_URL = "http://127.0.0.1:4010";
const SANDBOX_CREDENTIALS = { apiKey: SANDBOX_API_KEY, apiSecret: SANDBOX_API_SECRET } as const;

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const envSchema = z.object({
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).default("postgresql://postgres@127.0.0.1:5432/smsblast"),
  // One Redis (redis:// or rediss://), or a Redis Cluster: redis+cluster://host:port,host:port (any seed nodes).
  REDIS_URL: z
    .string()
    .refine(
      (v) => /^rediss?\+cluster:\/\/[^/?#]+\/?$/.test(v) || z.url({ protocol: /^rediss?$/ }).safeParse(v).success,
      "must be redis://host:port, rediss://…, or redis+cluster://host:port,host:port for a Redis Cluster",
    )
    .default("redis://127.0.0.1:6379"),
  // Prefix of every BullMQ key; the braces keep a queue's keys in one Redis Cluster slot. Unset: the deployment's
  // own, {smsblast:<12 hex of the deployment id>} (src/runtime/queue-binding.ts).
  QUEUE_PREFIX: z
    .string()
    .min(1)
    .regex(/^[^:\s]+$/, "must not contain ':' or spaces")
    .optional(),
  // One key pair per platform (config/platforms.ts), each set together or not at all; the API pair is the
  // fallback for a platform without its own.
  ENGAGELAB_MESSAGES_KEY: z.string().min(1).optional(),
  ENGAGELAB_MESSAGES_SECRET: z.string().min(1).optional(),
  ENGAGELAB_SMS_USER: z.string().min(1).optional(),
  ENGAGELAB_SMS_KEY: z.string().min(1).optional(),
  ENGAGELAB_OTP_KEY: z.string().min(1).optional(),
  ENGAGELAB_OTP_SECRET: z.string().min(1).optional(),
  ENGAGELAB_API_KEY: z.string().min(1).optional(),
  ENGAGELAB_API_SECRET: z.string().min(1).optional(),
  ENGAGELAB_MESSAGES_URL: z.url({ protocol: /^https?$/ }).default(SANDBOX_URL),
  ENGAGELAB_SMS_URL: z.url({ protocol: /^https?$/ }).default(SANDBOX_URL),
  ENGAGELAB_OTP_URL: z.url({ protocol: /^https?$/ }).default(SANDBOX_URL),
  PROVIDER_TIMEOUT_MS: positiveInt(10_000),
  // How long a command waits for PostgreSQL or Redis to answer before it gives up (and stores nothing).
  CONNECT_TIMEOUT_MS: positiveInt(5_000),
  SEND_CONCURRENCY: positiveInt(8),
  // Requests in flight inside one batch for the single-recipient v1/custom-messages API (p-limit).
  CUSTOM_PARALLELISM: positiveInt(10),
  SEND_ATTEMPTS: positiveInt(6),
  SEND_BACKOFF_MS: positiveInt(1_000),
  // Provider requests per second across every process and lane (a Redis pacing key, src/queue/rate-gate.ts);
  // 0 = no limit.
  SEND_RATE_LIMIT: z.coerce.number().int().min(0).default(0),
  // Requests per second to one platform (one EngageLab account), e.g. `messages=50,otp=20`; unset: none.
  PLATFORM_RATE_LIMITS: z
    .string()
    .transform((value, ctx) => {
      const limits: Partial<Record<Platform, number>> = {};
      for (const entry of value
        .split(",")
        .map((e) => e.trim())
        .filter(Boolean)) {
        const match = /^([a-z]+)\s*=\s*(\d+)$/.exec(entry);
        const platform = match?.[1] as Platform | undefined;
        if (!match || !platform || !PLATFORMS.includes(platform) || Number(match[2]) <= 0) {
          ctx.addIssue({
            code: "custom",
            message:
              `"${entry}" must be platform=requests per second, a whole number above 0, with platform one of ` +
              `${PLATFORMS.join(", ")} (e.g. messages=50,otp=20)`,
          });
          return z.NEVER;
        }
        if (limits[platform] !== undefined) {
          ctx.addIssue({ code: "custom", message: `platform ${platform} is given twice` });
          return z.NEVER;
        }
        limits[platform] = Number(match[2]);
      }
      return limits;
    })
    .optional(),
  // Every worker reconciles Postgres with the queue at start-up and then this often (ms); 0 = start-up only.
  RECONCILE_INTERVAL_MS: z.coerce.number().int().min(0).default(120_000),
  BATCH_SIZE: z.coerce.number().int().min(1).max(1000).default(1000),
  // A campaign paused by a provider outage resumes by itself at most this many times (0 = never).
  AUTO_RESUME_MAX: z.coerce.number().int().min(0).default(5),
  // Wait after an outage pause before probing and resuming; doubles with each automatic resume (capped at 10 min).
  AUTO_RESUME_BACKOFF_MS: positiveInt(30_000),
  // v1/messages schedule_time is sent only with at least 3 minutes plus this many seconds to go; closer batches wait.
  PROVIDER_SCHEDULE_MARGIN_S: z.coerce.number().int().min(0).default(DEFAULT_SCHEDULE_MARGIN_SECONDS),
  // Legacy v1/send: characters allowed per template variable value (EngageLab support can raise it); 0 = no check.
  LEGACY_VAR_MAX_CHARS: z.coerce.number().int().min(0).default(DEFAULT_LEGACY_VAR_MAX_CHARS),
  // Accepted in either case, as `--region sg` is.
  DEFAULT_REGION: z
    .string()
    .transform((v) => v.toUpperCase())
    .pipe(z.string().regex(/^[A-Z]{2}$/, "must be a two-letter ISO country code such as SG"))
    .optional(),
  // A schedule firing missed by at most this much (scheduler down or restarting at its time) runs once at
  // start-up; older misses are only logged.
  SCHEDULE_CATCHUP_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(60 * 60 * 1000),
  // Uploaded lists larger than this are refused before reading (default 1 GiB, ~25M rows).
  CSV_MAX_BYTES: positiveInt(1024 * 1024 * 1024),
  // Uploads of the HTTP API that are not launched are deleted with their rows after this many hours.
  UPLOAD_TTL_HOURS: z.coerce.number().positive().default(24),
  // Price of one SMS segment, in any currency: the upload check multiplies its segment estimate by it.
  SMS_SEGMENT_PRICE: z.coerce.number().nonnegative().optional(),
  // Prometheus metrics: with METRICS_PORT, GET /metrics on that port without auth (API and workers alike);
  // without it the API serves GET /metrics behind a token and workers serve none.
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  METRICS_HOST: z.string().min(1).default("127.0.0.1"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  // HTTP API (`smsblast serve`): listen address, and write requests per minute allowed to one token.
  API_HOST: z.string().min(1).default("127.0.0.1"),
  API_PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  API_WRITE_RATE_LIMIT: positiveInt(120),
  // Web console: a sign-in session ends after this many minutes without a request.
  CONSOLE_SESSION_IDLE_MINUTES: z.coerce.number().positive().default(60),
  // Delivery callbacks (README "Delivery reports"). Current platform: the console's callback username and
  // secret (X-CALLBACK-ID HMAC). Legacy SMSHook: app key and secret (md5). A platform left unset refuses callbacks.
  CALLBACK_USERNAME: z.string().min(1).optional(),
  CALLBACK_SECRET: z.string().min(1).optional(),
  SMSHOOK_APP_KEY: z.string().min(1).optional(),
  SMSHOOK_APP_SECRET: z.string().min(1).optional(),
  // Optional second factor: HTTP Basic "user:password" on both routes, and/or a secret last path segment.
  CALLBACK_BASIC_AUTH: z
    .string()
    .regex(/^[^:]+:.+$/, "must be user:password")
    .optional(),
  CALLBACK_PATH_SECRET: z
    .string()
    .regex(/^[\w-]{16,}$/, "must be at least 16 letters, digits, _ or -")
    .optional(),
  // A callback body over this is refused (413) before it is read further.
  CALLBACK_MAX_BYTES: positiveInt(2 * 1024 * 1024),
  // Timestamp window of a signed callback, either side of now.
  CALLBACK_MAX_SKEW_MS: positiveInt(5 * 60 * 1000),
  // Events per applier statement; an event whose send is not recorded yet is retried after RETRY ms and
  // given up as unmatched after GIVE_UP ms.
  DELIVERY_APPLY_BATCH: positiveInt(5_000),
  // Applier statements at once per delivery worker (each on its own connection, on different callbacks).
  DELIVERY_APPLY_PARALLEL: positiveInt(2),
  // After a statement that found less than a batch ready, the applier waits this long before the next one,
  // so the reports coming in gather into bigger statements and the receiver keeps CPU (0: no pause).
  DELIVERY_APPLY_GATHER_MS: z.coerce.number().int().nonnegative().default(200),
  DELIVERY_RETRY_MS: positiveInt(5_000),
  DELIVERY_GIVE_UP_MS: positiveInt(24 * 60 * 60 * 1000),
  // Recipients awaiting a report this long become no_report (default 72 h).
  DELIVERY_NO_REPORT_AFTER_MS: positiveInt(72 * 60 * 60 * 1000),
  // Applied callback rows (they hold phone numbers) are deleted after this long (default 7 days).
  DELIVERY_RAW_RETENTION_MS: positiveInt(7 * 24 * 60 * 60 * 1000),
  // How often the delivery worker retries waiting events, marks no-report and purges (ms).
  DELIVERY_SWEEP_INTERVAL_MS: positiveInt(30_000),
  // Outgoing webhooks (docs/webhooks.md). Each token's signing key is HMAC(this, token id:key version), so the
  // keys are never stored; without it no webhook can be set and the dispatcher sends nothing.
  WEBHOOK_SIGNING_SECRET: z.string().min(32, "must be at least 32 characters (e.g. `openssl rand -hex 32`)").optional(),
  // One POST's deadline; the first retry's delay, doubled per attempt up to the cap; attempts before giving up
  // (the defaults retry for about 10 hours); how often the dispatcher of `smsblast serve` looks for work.
  WEBHOOK_TIMEOUT_MS: positiveInt(5_000),
  WEBHOOK_BACKOFF_MS: positiveInt(5_000),
  WEBHOOK_BACKOFF_MAX_MS: positiveInt(60 * 60 * 1000),
  WEBHOOK_MAX_ATTEMPTS: positiveInt(20),
  WEBHOOK_POLL_MS: positiveInt(1_000),
  // Retention (README "Retention and erasure"): the scheduler purges the recipients, rejects, uploads and
  // delivery events of campaigns finished longer ago than this (`smsblast purge --older-than` by hand); unset:
  // no scheduled purge. Checked every PURGE_INTERVAL_MS, deleting PURGE_CHUNK_ROWS rows per statement.
  PURGE_OLDER_THAN: z
    .string()
    .refine((v) => parseDuration(v) !== null, `must be a duration above zero such as ${DURATION_EXAMPLES}`)
    .optional(),
  PURGE_INTERVAL_MS: positiveInt(60 * 60 * 1000),
  PURGE_CHUNK_ROWS: z.coerce.number().int().min(100).max(1_000_000).default(20_000),
  // `smsblast forget` keeps an erased number suppressed as HMAC-SHA256 under a key derived from this; every
  // process that launches campaigns needs it once a number was forgotten. Never logged, never stored.
  SUPPRESSION_HASH_SECRET: z
    .string()
    .min(32, "must be at least 32 characters (e.g. `openssl rand -hex 32`)")
    .optional(),
});

/** One platform's Basic-auth pair (sms_user:sms_key on the legacy platform, dev_key:dev_secret elsewhere). */
export interface ProviderCredentials {
  apiKey: string;
  apiSecret: string;
}

export type Config = {
  databaseUrl: string;
  redisUrl: string;
  /**
   * QUEUE_PREFIX as set, claimed in Redis for this deployment at start-up; undefined: the deployment's own prefix.
   * Either way processes use the prefix bindQueue (src/runtime/queue-binding.ts) resolves, never this directly.
   */
  queuePrefix: string | undefined;
  /** Bound on connecting to PostgreSQL and Redis (CONNECT_TIMEOUT_MS). */
  connectTimeoutMs: number;
  engagelab: {
    /** The key pair of each platform: its own, else ENGAGELAB_API_KEY/SECRET, else (sandbox URLs only) the sandbox's. */
    credentials: Record<Platform, ProviderCredentials>;
    messagesUrl: string;
    smsUrl: string;
    otpUrl: string;
    timeoutMs: number;
  };
  send: {
    concurrency: number;
    customParallelism: number;
    attempts: number;
    backoffMs: number;
    rateLimitPerSecond: number;
    /** PLATFORM_RATE_LIMITS: requests per second per platform (one provider account each). */
    platformRateLimits: Partial<Record<Platform, number>>;
    batchSize: number;
    reconcileIntervalMs: number;
    /** LEGACY_VAR_MAX_CHARS: characters per legacy `vars` value, 0 = no check. */
    legacyVarMaxChars: number;
    /** PROVIDER_SCHEDULE_MARGIN_S: seconds beyond the provider's 3 minutes before schedule_time is used. */
    scheduleMarginSeconds: number;
  };
  /** AUTO_RESUME_MAX / AUTO_RESUME_BACKOFF_MS: campaigns paused by a provider outage resume by themselves. */
  autoResume: { max: number; backoffMs: number };
  defaultRegion: string | undefined;
  scheduleCatchupMs: number;
  csvMaxBytes: number;
  uploads: { ttlMs: number; segmentPrice: number | undefined };
  metrics: { port: number | undefined; host: string };
  logLevel: z.infer<typeof envSchema>["LOG_LEVEL"];
  api: {
    host: string;
    port: number;
    writeRateLimitPerMinute: number;
    /** The console's session idle expiry. */
    sessionIdleMs: number;
  };
  callbacks: {
    engagelab: { username: string; secret: string } | undefined;
    smshook: { appKey: string; secret: string } | undefined;
    basicAuth: string | undefined;
    pathSecret: string | undefined;
    maxBytes: number;
    maxSkewMs: number;
  };
  delivery: {
    applyBatch: number;
    applyParallel: number;
    applyGatherMs: number;
    retryMs: number;
    giveUpMs: number;
    noReportAfterMs: number;
    rawRetentionMs: number;
    sweepIntervalMs: number;
  };
  webhooks: {
    /** WEBHOOK_SIGNING_SECRET: never logged (the logger redacts it), never printed. */
    signingSecret: string | undefined;
    timeoutMs: number;
    backoffMs: number;
    backoffMaxMs: number;
    maxAttempts: number;
    pollMs: number;
  };
  retention: {
    /** PURGE_OLDER_THAN in ms; undefined: the scheduler does not purge. */
    purgeOlderThanMs: number | undefined;
    purgeIntervalMs: number;
    purgeChunkRows: number;
  };
  privacy: {
    /** From SUPPRESSION_HASH_SECRET (the secret itself is not kept); undefined when it is not set. */
    phoneHasher: PhoneHasher | undefined;
  };
};

export class ConfigError extends UserError {
  override name = "ConfigError";
  constructor(message: string) {
    super("config_invalid", message);
  }
}

/** Parses the environment once at start-up; a bad value fails here, naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable means "not set", as in most .env tooling.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n  ${problems.join("\n  ")}`);
  }
  const e = parsed.data;
  const credentials = platformCredentials(cleaned);
  for (const [a, b] of [
    ["CALLBACK_USERNAME", "CALLBACK_SECRET"],
    ["SMSHOOK_APP_KEY", "SMSHOOK_APP_SECRET"],
  ] as const) {
    if (Boolean(e[a]) !== Boolean(e[b]))
      throw new ConfigError(`Invalid configuration:\n  ${a} and ${b} must be set together`);
  }
  return {
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    queuePrefix: e.QUEUE_PREFIX,
    connectTimeoutMs: e.CONNECT_TIMEOUT_MS,
    engagelab: {
      credentials,
      messagesUrl: e.ENGAGELAB_MESSAGES_URL,
      smsUrl: e.ENGAGELAB_SMS_URL,
      otpUrl: e.ENGAGELAB_OTP_URL,
      timeoutMs: e.PROVIDER_TIMEOUT_MS,
    },
    send: {
      concurrency: e.SEND_CONCURRENCY,
      customParallelism: e.CUSTOM_PARALLELISM,
      attempts: e.SEND_ATTEMPTS,
      backoffMs: e.SEND_BACKOFF_MS,
      rateLimitPerSecond: e.SEND_RATE_LIMIT,
      platformRateLimits: e.PLATFORM_RATE_LIMITS ?? {},
      batchSize: e.BATCH_SIZE,
      reconcileIntervalMs: e.RECONCILE_INTERVAL_MS,
      legacyVarMaxChars: e.LEGACY_VAR_MAX_CHARS,
      scheduleMarginSeconds: e.PROVIDER_SCHEDULE_MARGIN_S,
    },
    autoResume: { max: e.AUTO_RESUME_MAX, backoffMs: e.AUTO_RESUME_BACKOFF_MS },
    defaultRegion: e.DEFAULT_REGION,
    scheduleCatchupMs: e.SCHEDULE_CATCHUP_MS,
    csvMaxBytes: e.CSV_MAX_BYTES,
    metrics: { port: e.METRICS_PORT, host: e.METRICS_HOST },
    uploads: { ttlMs: Math.round(e.UPLOAD_TTL_HOURS * 3_600_000), segmentPrice: e.SMS_SEGMENT_PRICE },
    logLevel: e.LOG_LEVEL,
    api: {
      host: e.API_HOST,
      port: e.API_PORT,
      writeRateLimitPerMinute: e.API_WRITE_RATE_LIMIT,
      sessionIdleMs: Math.round(e.CONSOLE_SESSION_IDLE_MINUTES * 60_000),
    },
    callbacks: {
      engagelab:
        e.CALLBACK_USERNAME && e.CALLBACK_SECRET
          ? { username: e.CALLBACK_USERNAME, secret: e.CALLBACK_SECRET }
          : undefined,
      smshook:
        e.SMSHOOK_APP_KEY && e.SMSHOOK_APP_SECRET
          ? { appKey: e.SMSHOOK_APP_KEY, secret: e.SMSHOOK_APP_SECRET }
          : undefined,
      basicAuth: e.CALLBACK_BASIC_AUTH,
      pathSecret: e.CALLBACK_PATH_SECRET,
      maxBytes: e.CALLBACK_MAX_BYTES,
      maxSkewMs: e.CALLBACK_MAX_SKEW_MS,
    },
    delivery: {
      applyBatch: e.DELIVERY_APPLY_BATCH,
      applyParallel: e.DELIVERY_APPLY_PARALLEL,
      applyGatherMs: e.DELIVERY_APPLY_GATHER_MS,
      retryMs: e.DELIVERY_RETRY_MS,
      giveUpMs: e.DELIVERY_GIVE_UP_MS,
      noReportAfterMs: e.DELIVERY_NO_REPORT_AFTER_MS,
      rawRetentionMs: e.DELIVERY_RAW_RETENTION_MS,
      sweepIntervalMs: e.DELIVERY_SWEEP_INTERVAL_MS,
    },
    webhooks: {
      signingSecret: e.WEBHOOK_SIGNING_SECRET,
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      backoffMs: e.WEBHOOK_BACKOFF_MS,
      backoffMaxMs: e.WEBHOOK_BACKOFF_MAX_MS,
      maxAttempts: e.WEBHOOK_MAX_ATTEMPTS,
      pollMs: e.WEBHOOK_POLL_MS,
    },
    retention: {
      purgeOlderThanMs: e.PURGE_OLDER_THAN === undefined ? undefined : parseDuration(e.PURGE_OLDER_THAN)!,
      purgeIntervalMs: e.PURGE_INTERVAL_MS,
      purgeChunkRows: e.PURGE_CHUNK_ROWS,
    },
    privacy: {
      phoneHasher: e.SUPPRESSION_HASH_SECRET === undefined ? undefined : new PhoneHasher(e.SUPPRESSION_HASH_SECRET),
    },
  };
}

/**
 * Each platform's pair: its own, else the ENGAGELAB_API_KEY/SECRET fallback, else the sandbox's when its URL
 * is the sandbox's. A half-set pair, or a real EngageLab URL without credentials, fails here, naming the
 * variables (never their values), every problem at once.
 */
function platformCredentials(env: Record<string, string | undefined>): Record<Platform, ProviderCredentials> {
  // Read after envSchema accepted every one of these variables (non-empty strings, valid URLs).
  const read = (name: string): string | undefined => env[name];
  const problems: string[] = [];
  const pairOf = (keyVariable: string, secretVariable: string): ProviderCredentials | undefined => {
    const apiKey = read(keyVariable);
    const apiSecret = read(secretVariable);
    if (apiKey !== undefined && apiSecret !== undefined) return { apiKey, apiSecret };
    if (apiKey !== undefined || apiSecret !== undefined)
      problems.push(`${keyVariable} and ${secretVariable} must be set together (or both left unset)`);
    return undefined;
  };
  const fallback = pairOf(FALLBACK_KEY_VARIABLE, FALLBACK_SECRET_VARIABLE);
  const result = {} as Record<Platform, ProviderCredentials>;
  for (const platform of PLATFORMS) {
    const s = PLATFORM_SETTINGS[platform];
    const own = pairOf(s.keyVariable, s.secretVariable);
    const url = read(s.urlVariable) ?? SANDBOX_URL;
    const chosen = own ?? fallback ?? (isSandboxUrl(url) ? SANDBOX_CREDENTIALS : undefined);
    if (chosen) result[platform] = chosen;
    else if (read(s.keyVariable) === undefined && read(s.secretVariable) === undefined)
      problems.push(
        `${s.urlVariable} points at ${new URL(url).host}, not the sandbox: set ${s.keyVariable} and ${s.secretVariable} ` +
          `(the ${s.label}'s key pair) or ${FALLBACK_KEY_VARIABLE} and ${FALLBACK_SECRET_VARIABLE}`,
      );
  }
  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n  ${problems.join("\n  ")}`);
  return result;
}
