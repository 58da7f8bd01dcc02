import { createHmac } from "node:crypto";
import { isIP } from "node:net";
import type { Config } from "../config/config.ts";
import { UserError } from "../model/errors.ts";
import type { Database } from "../store/database.ts";
import { findLiveTokenByName } from "../store/token-repository.ts";
import {
  clearTokenWebhook,
  setTokenWebhook,
  webhookDeliveryCounts,
  type WebhookDeliveryCounts,
} from "../store/webhook-repository.ts";

// A token's outgoing webhook (docs/webhooks.md): setting and clearing it, its signing key, the signature.

/** Names the setting in every refusal, so the fix is in the message. */
export const SIGNING_SECRET_VARIABLE = "WEBHOOK_SIGNING_SECRET";
/** Recognisable in a secret scanner; the receiver uses the whole string, prefix included, as the HMAC key. */
const SIGNING_KEY_PREFIX = "whsec_";
const MAX_URL_LENGTH = 2048;

export class WebhookSecretMissingError extends UserError {
  override name = "WebhookSecretMissingError";
  constructor() {
    super(
      "webhook_signing_secret_missing",
      `webhooks are signed with keys derived from ${SIGNING_SECRET_VARIABLE}, which is not set: set it (at least 32 ` +
        `characters, e.g. \`openssl rand -hex 32\`) for this command and for every \`smsblast serve\`, then set the webhook again`,
      { kind: "unavailable" },
    );
  }
}

/**
 * A token's signing key: HMAC-SHA256(WEBHOOK_SIGNING_SECRET, "<token id>:<key version>"), never stored. The
 * version moves on each time the webhook is set, so setting it again rotates that token's key alone; changing
 * WEBHOOK_SIGNING_SECRET rotates every token's.
 */
export function webhookSigningKey(signingSecret: string, tokenId: string, keyVersion: number): string {
  const mac = createHmac("sha256", signingSecret).update(`${tokenId}:${keyVersion}`, "utf8").digest("base64url");
  return SIGNING_KEY_PREFIX + mac;
}

/** `X-Smsblast-Signature`: `sha256=` and the hex HMAC-SHA256, keyed with the signing key, of `<timestamp>.<body>`. */
export function webhookSignature(signingKey: string, timestamp: string, body: string): string {
  return "sha256=" + createHmac("sha256", signingKey).update(`${timestamp}.${body}`, "utf8").digest("hex");
}

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "[::1]"]);

function isLoopback(hostname: string): boolean {
  if (LOOPBACK_NAMES.has(hostname)) return true;
  return isIP(hostname) === 4 && hostname.startsWith("127.");
}

/**
 * A webhook URL: https, or http to this machine only (a receiver beside the server, a test); no fragment.
 * Its text may hold a secret of the receiver's (a path token, a query key), so it is never logged whole.
 */
export function checkWebhookUrl(input: string): string {
  const url = input.trim();
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UserError("invalid_webhook_url", "the webhook URL is not a URL (expected https://host/path)", {
      field: "url",
    });
  }
  if (url.length > MAX_URL_LENGTH)
    throw new UserError("invalid_webhook_url", `the webhook URL is longer than ${MAX_URL_LENGTH} characters`, {
      field: "url",
    });
  const plainLocal = parsed.protocol === "http:" && isLoopback(parsed.hostname);
  if (parsed.protocol !== "https:" && !plainLocal)
    throw new UserError(
      "invalid_webhook_url",
      `the webhook URL must be https:// (http:// only to this machine: localhost, 127.0.0.1, [::1]); got ${parsed.protocol}//${parsed.host}`,
      { field: "url" },
    );
  if (parsed.hash)
    throw new UserError("invalid_webhook_url", "the webhook URL must not have a #fragment", { field: "url" });
  return url;
}

/** A URL as it may be shown in a list or a log line: scheme, host and path; no user, password or query. */
export function webhookUrlForDisplay(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return "(unparsable URL)";
  }
}

export interface SetWebhookResult {
  name: string;
  url: string;
  /** Shown this once: the receiver verifies signatures with it. */
  signingKey: string;
}

/**
 * Points a live token's webhook at `url` and makes it a new signing key. Refused, before anything is
 * stored, when WEBHOOK_SIGNING_SECRET is not set or the URL is not acceptable.
 */
export async function setWebhook(
  db: Database,
  config: Pick<Config, "webhooks">,
  input: { name: string; url: string },
): Promise<SetWebhookResult> {
  const secret = config.webhooks.signingSecret;
  if (secret === undefined) throw new WebhookSecretMissingError();
  const url = checkWebhookUrl(input.url);
  const token = await setTokenWebhook(db, input.name, url);
  if (!token) throw tokenNotFound(input.name);
  return { name: token.name, url, signingKey: webhookSigningKey(secret, token.id, token.keyVersion) };
}

/** Removes a token's webhook; its deliveries not made yet are given up. */
export async function clearWebhook(db: Database, name: string): Promise<{ abandoned: number }> {
  const cleared = await clearTokenWebhook(db, name);
  if (!cleared) throw tokenNotFound(name);
  return cleared;
}

export interface WebhookState {
  name: string;
  /** Scheme, host and path (webhookUrlForDisplay); null when none is set. */
  url: string | null;
  setAt: Date | null;
  deliveries: WebhookDeliveryCounts;
}

export async function describeWebhook(db: Database, name: string): Promise<WebhookState> {
  const token = await findLiveTokenByName(db, name);
  if (!token) throw tokenNotFound(name);
  return {
    name: token.name,
    url: token.webhookUrl === null ? null : webhookUrlForDisplay(token.webhookUrl),
    setAt: token.webhookSetAt,
    deliveries: await webhookDeliveryCounts(db, token.id),
  };
}

function tokenNotFound(name: string): UserError {
  return new UserError("token_not_found", `no live token named "${name}"`, { field: "name", kind: "not-found" });
}
