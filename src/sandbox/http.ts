import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

/** A complete HTTP answer; the body is kept as text so replays are byte-identical. */
export interface Reply {
  status: number;
  text: string;
  headers?: Record<string, string>;
}

export function jsonReply(status: number, body: unknown, headers?: Record<string, string>): Reply {
  return { status, text: JSON.stringify(body), headers };
}

export function writeReply(res: ServerResponse, reply: Reply): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(reply.status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(reply.text),
    ...reply.headers,
  });
  res.end(reply.text);
}

export interface RequestBody {
  text: string;
  tooLarge: boolean;
}

/** Reads the whole body; past `maxBytes` it keeps draining but stops storing. */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<RequestBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        tooLarge = true;
        chunks.length = 0;
      } else if (!tooLarge) {
        chunks.push(chunk);
      }
    });
    req.on("end", () => resolve({ text: tooLarge ? "" : Buffer.concat(chunks).toString("utf8"), tooLarge }));
    req.on("error", reject);
  });
}

export type JsonParse = { ok: true; value: unknown } | { ok: false };

export function parseJson(text: string): JsonParse {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function hasValidBasicAuth(header: string | undefined, apiKey: string, apiSecret: string): boolean {
  if (!header) return false;
  const match = /^basic\s+(\S+)\s*$/i.exec(header);
  if (!match?.[1]) return false;
  const given = Buffer.from(match[1], "base64");
  const expected = Buffer.from(`${apiKey}:${apiSecret}`, "utf8");
  // Constant-time compare so the fake does not teach clients timing-leaky habits.
  return given.length === expected.length && timingSafeEqual(given, expected);
}

// After an optional '+', 6–15 digits: loose on purpose, the sandbox is not a numbering plan.
const PHONE_SHAPE = /^\+?\d{6,15}$/;
const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function looksLikePhone(value: string): boolean {
  return PHONE_SHAPE.test(value);
}

export function looksLikeEmail(value: string): boolean {
  return EMAIL_SHAPE.test(value);
}
