import type { SandboxContext } from "./context.ts";
import type { Reply } from "./http.ts";
import type { SendApi } from "./ledger.ts";
import type { SandboxPlatform } from "./options.ts";

export interface ErrorCode {
  code: number;
  message: string;
}

/** One send API: its error shape plus the validate-and-send step that runs after auth, parsing and faults. */
export interface SendEndpoint {
  api: SendApi;
  /** Whose key pair signs this API's requests. */
  platform: SandboxPlatform;
  path: string;
  unauthorized: ErrorCode;
  invalidJson: ErrorCode;
  /** Code used for generic parameter errors such as an oversized body. */
  invalidParameter: number;
  /**
   * Builds an error in this API's shape; `body` is the parsed request when there is one. `acceptedCount`:
   * how many of its targets were sent anyway (only v1/messages' error body says so).
   */
  errorReply(ctx: SandboxContext, status: number, error: ErrorCode, body?: unknown, acceptedCount?: number): Reply;
  send(ctx: SandboxContext, body: unknown): Reply;
}
