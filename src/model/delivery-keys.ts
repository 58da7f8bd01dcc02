/**
 * What the delivery applier needs of one callback row, read once by the receiver (which parses the body
 * anyway) and stored beside the raw row as typed columns, so the applier's statement does no JSON parsing
 * and no regular expressions per event (they were most of its cost: README "Delivery reports").
 *
 * The same rules exist in SQL for rows stored without keys (by a receiver of the previous release):
 * src/store/delivery-repository.ts `KEYS_OF_JSON`; test/delivery-keys.test.ts checks both give the same.
 */
export interface DeliveryEventKey {
  /** custom_args.batch_id when it is a UUID. */
  batchId: string | null;
  /** custom_args.campaign_id as sent, lower-cased (checked against the batch's campaign). */
  campaignText: string | null;
  /** custom_args.campaign_id when it is a UUID. */
  campaignId: string | null;
  /** `to` in E.164: "+" and its digits, a leading international 00 dropped ("+65…", "65…", "0065…"). */
  phone: string;
  /** status.message_status. */
  status: string | null;
  /** status.status_data.msg_time, else itime: Unix seconds or milliseconds, as milliseconds (text), or null. */
  eventTime: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  /** status.billing.cost when it is a plain decimal, as text. */
  cost: string | null;
  currency: string | null;
  messageId: string | null;
}

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const UNIX_TIME = /^\d{9,13}$/;
const DECIMAL = /^-?\d{1,6}(\.\d+)?$/;

/** A JSON value as Postgres' `->>` renders it: strings bare, other scalars as JSON text, null as null. */
function text(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

function field(value: unknown, ...path: string[]): unknown {
  let current = value;
  for (const key of path) {
    if (typeof current !== "object" || current === null || Array.isArray(current)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

// Milliseconds as text, not a Date: toISOString() per row was a sixth of the receiver's CPU; the insert
// turns them into timestamps.
function unixTime(value: unknown): string | null {
  const t = text(value);
  if (t === null || !UNIX_TIME.test(t)) return null;
  return t.length > 11 ? t : t + "000";
}

function nonEmpty(value: string | null): string | null {
  return value === "" ? null : value;
}

export function deliveryEventKey(row: Record<string, unknown>): DeliveryEventKey {
  const campaign = text(field(row, "custom_args", "campaign_id"));
  const batch = text(field(row, "custom_args", "batch_id"));
  const cost = text(field(row, "status", "billing", "cost"));
  return {
    batchId: batch !== null && UUID.test(batch) ? batch.toLowerCase() : null,
    campaignText: campaign?.toLowerCase() ?? null,
    campaignId: campaign !== null && UUID.test(campaign) ? campaign.toLowerCase() : null,
    phone: "+" + (text(row.to) ?? "").replace(/\D/g, "").replace(/^00/, ""),
    status: text(field(row, "status", "message_status")),
    eventTime: unixTime(field(row, "status", "status_data", "msg_time")) ?? unixTime(row.itime),
    errorCode: text(field(row, "status", "error_code")),
    errorMessage: text(field(row, "status", "error_detail", "message")),
    cost: cost !== null && DECIMAL.test(cost) ? cost : null,
    currency: nonEmpty(text(field(row, "status", "billing", "currency"))),
    messageId: nonEmpty(text(row.message_id)),
  };
}

/** The keys of a callback's rows as parallel arrays, one per column, in row order (query parameters). */
export function deliveryEventKeyColumns(rows: Record<string, unknown>[]): (string | null)[][] {
  const keys = rows.map(deliveryEventKey);
  return KEY_FIELDS.map((name) => keys.map((k) => k[name]));
}

/** Column order of the `delivery_event_key` type (migration 20261210140700_delivery_callback_rows). */
export const KEY_FIELDS = [
  "batchId",
  "campaignText",
  "campaignId",
  "phone",
  "status",
  "eventTime",
  "errorCode",
  "errorMessage",
  "cost",
  "currency",
  "messageId",
] as const satisfies readonly (keyof DeliveryEventKey)[];
