import { ProviderError, ProviderRequestError } from "./errors.ts";
import type { EngageLabHttpClient } from "./http-client.ts";
import { isRecord, readInt } from "./json-body.ts";
import {
  bulkTargets,
  type BatchSendRequest,
  type BatchSendResult,
  type FailedRecipient,
  type SmsProvider,
} from "./provider.ts";
import type { SendOptions } from "../model/send-options.ts";
import { UserError } from "../model/errors.ts";

export const LEGACY_PARTIAL_SUCCESS = 41031;
const MAX_CUSTOM_ARGS_BYTES = 1024;
const MAX_REQUEST_ID_LENGTH = 128;

/**
 * What counts as a link in a `vars` value: a POSIX and a JavaScript regular expression alike, matched
 * case-insensitively (in SQL with `~*` for per-row values, here for fixed ones), so both checks agree.
 */
export const LEGACY_LINK_PATTERN = "(https?://|www\\.)";
const LEGACY_LINK = new RegExp(LEGACY_LINK_PATTERN, "i");

/** Why legacy v1/send would refuse this `vars` value, or undefined. `maxChars` 0 = no length limit. */
export function legacyVarProblem(value: string, maxChars: number): string | undefined {
  // Characters as PostgreSQL's char_length counts them (code points), so fixed and per-row values agree.
  const length = [...value].length;
  if (maxChars > 0 && length > maxChars) {
    return `${length} characters; legacy v1/send takes at most ${maxChars} per variable (LEGACY_VAR_MAX_CHARS)`;
  }
  if (LEGACY_LINK.test(value)) return "contains a link; legacy v1/send refuses links in variables";
  return undefined;
}

/**
 * Fixed params go to every recipient: a value the provider refuses would fail every batch, so the launch
 * is refused before anything is stored, naming the variable.
 */
export function validateLegacyParams(params: Record<string, string>, maxChars: number): void {
  for (const [name, value] of Object.entries(params)) {
    const problem = legacyVarProblem(value, maxChars);
    if (problem) {
      throw new UserError("legacy_var_refused", `template variable "${name}": ${problem}; nothing was stored`, {
        field: "params",
      });
    }
  }
}

/** Options a legacy campaign may set (stored in Campaign.sendOptions). */
export type LegacySendOptions = Pick<SendOptions, "from" | "msgType" | "labelId" | "customArgs">;

/** Checks what the legacy API would refuse, before anything is stored or sent. */
export function validateLegacyOptions(templateId: string, options: LegacySendOptions): void {
  // Sent as a JSON number: at most 15 digits stay exact.
  if (!/^\d{1,15}$/.test(templateId)) {
    throw new ProviderRequestError(
      "template",
      `the legacy v1/send API takes a numeric template id, got "${templateId}"`,
    );
  }
  if (options.from !== undefined && !/^[A-Za-z0-9]{3,11}$/.test(options.from)) {
    throw new ProviderRequestError("from", "sender name must be 3-11 English letters or digits");
  }
  const size = Buffer.byteLength(
    JSON.stringify(
      legacyCustomArgs(options, "00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000"),
    ),
  );
  if (size > MAX_CUSTOM_ARGS_BYTES) {
    throw new ProviderRequestError(
      "custom_args",
      `is ${size} bytes with the campaign and batch ids; the limit is 1 KB`,
    );
  }
}

function legacyCustomArgs(options: LegacySendOptions, campaignId: string, batchId: string): Record<string, unknown> {
  return { ...options.customArgs, campaign_id: campaignId, batch_id: batchId };
}

/**
 * Legacy POST /v1/send (seed 001). `request_id` is the batch's idempotency key: the provider answers a
 * repeat within one hour with the first result, so a retry after a lost response cannot send twice.
 */
export class LegacySendApiProvider implements SmsProvider {
  readonly name = "legacy" as const;

  constructor(
    private readonly http: EngageLabHttpClient,
    private readonly baseUrl: string,
  ) {}

  async sendBatch(request: BatchSendRequest): Promise<BatchSendResult> {
    const phones = bulkTargets(request, "v1/send");
    if (request.idempotencyKey.length > MAX_REQUEST_ID_LENGTH) {
      throw new ProviderRequestError("request_id", `is longer than ${MAX_REQUEST_ID_LENGTH} characters`);
    }
    const options: LegacySendOptions = request.sendOptions;
    const customArgs = legacyCustomArgs(options, request.campaignId, request.batchId);
    if (Buffer.byteLength(JSON.stringify(customArgs)) > MAX_CUSTOM_ARGS_BYTES) {
      throw new ProviderRequestError("custom_args", "is over the 1 KB limit");
    }
    const body: Record<string, unknown> = { template_id: Number(request.templateId), vars: request.params };
    if (options.msgType !== undefined) body.msg_type = options.msgType;
    if (options.labelId !== undefined) body.label_id = options.labelId;
    const payload: Record<string, unknown> = {
      to: phones,
      body,
      custom_args: customArgs,
      request_id: request.idempotencyKey,
    };
    if (options.from) payload.from = options.from;

    const response = await this.http.call("legacy", "POST", new URL("/v1/send", this.baseUrl).href, payload, [
      LEGACY_PARTIAL_SUCCESS,
    ]);
    const reply = response.body;
    if (!isRecord(reply) || !Array.isArray(reply.sms_ids)) {
      throw new ProviderError({
        api: "legacy",
        kind: "invalid-response",
        status: response.status,
        detail: "success body lacks sms_ids",
      });
    }
    // An answer for another request (a proxy or cache mixing them up) says nothing about ours.
    if (reply.request_id !== undefined && reply.request_id !== request.idempotencyKey) {
      throw new ProviderError({
        api: "legacy",
        kind: "invalid-response",
        status: response.status,
        detail: `the answer echoes request_id ${JSON.stringify(reply.request_id).slice(0, 140)}, not this batch's`,
      });
    }
    return legacyResult(phones, reply);
  }
}

/**
 * Reads a v1/send answer (docs/engagelab-apis.md#legacy-response). The provider may echo a number in
 * another form than sent (no `+`, spaces, `00`, national), so sms_ids and failed_items are matched to the
 * batch's numbers by `matchEchoedNumber`. A failed item is that number's own refusal: its message, no
 * code (41031 is the code of the whole answer). When the answer does not account for every number (a failed
 * item that is none of ours, a success_count short of the rest), only numbers proven by an sms_id count as
 * accepted and the batch rules make the others `unknown`.
 */
export function legacyResult(phones: readonly string[], reply: Record<string, unknown>): BatchSendResult {
  const match = echoedNumberMatcher(phones);
  const smsIdByPhone = new Map<string, string>();
  for (const smsId of Array.isArray(reply.sms_ids) ? reply.sms_ids : []) {
    if (typeof smsId !== "string") continue;
    const dollar = smsId.lastIndexOf("$");
    const phone = dollar >= 0 ? match(smsId.slice(dollar + 1)) : undefined;
    if (phone !== undefined) smsIdByPhone.set(phone, smsId);
  }
  const failedByPhone = new Map<string, FailedRecipient>();
  let unmatchedFailures = 0;
  for (const item of Array.isArray(reply.failed_items) ? reply.failed_items : []) {
    const phone = isRecord(item) && typeof item.phone === "string" ? match(item.phone) : undefined;
    if (phone === undefined) {
      unmatchedFailures += 1;
      continue;
    }
    const reason = isRecord(item) && typeof item.message === "string" && item.message !== "" ? item.message : null;
    failedByPhone.set(phone, { phone, message: reason ?? "refused by the provider (no reason given)" });
  }
  const failed = [...failedByPhone.values()];
  const rest = phones.filter((phone) => !failedByPhone.has(phone));
  const acceptedCount = readInt(reply.success_count) ?? rest.length;
  const accountedFor = unmatchedFailures === 0 && acceptedCount >= rest.length;
  const accepted = (accountedFor ? rest : rest.filter((phone) => smsIdByPhone.has(phone))).map((phone) => ({
    phone,
    smsId: smsIdByPhone.get(phone),
  }));
  return { totalCount: phones.length, acceptedCount, accepted, failed, unaccountedFor: rest.length - accepted.length };
}

/**
 * Finds which of the batch's E.164 numbers an echoed number means: same digits; or after an international
 * `00`; or, for a national form (leading zeros dropped, at least 6 digits), the one number it ends.
 */
export function echoedNumberMatcher(phones: readonly string[]): (echoed: string) => string | undefined {
  const byDigits = new Map<string, string>();
  for (const phone of phones) byDigits.set(phone.replace(/\D/g, ""), phone);
  return (echoed) => {
    const digits = echoed.replace(/\D/g, "");
    if (digits === "") return undefined;
    const exact = byDigits.get(digits) ?? (digits.startsWith("00") ? byDigits.get(digits.slice(2)) : undefined);
    if (exact !== undefined) return exact;
    const national = digits.replace(/^0+/, "");
    if (national.length < 6) return undefined;
    let found: string | undefined;
    for (const [candidate, phone] of byDigits) {
      if (!candidate.endsWith(national)) continue;
      if (found !== undefined) return undefined; // two numbers end the same way: say none
      found = phone;
    }
    return found;
  };
}
