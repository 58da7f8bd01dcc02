import type { ProviderApi } from "../model/states.ts";
import { ProviderError } from "./errors.ts";
import type { EngageLabHttpClient } from "./http-client.ts";

export interface ProbeResult {
  up: boolean;
  /** What answered (or failed): an HTTP status, a transport failure's kind; no body, no secret. */
  detail: string;
}

/**
 * Asks a platform whether it is up with a request that cannot send anything. Legacy: the template list (a read).
 * The send APIs: a POST with an empty body, which the API must refuse (no `to`). Any answer below 500, a
 * refusal included, means the provider is up; a 5xx, a timeout or no connection means it is still down.
 */
export async function probeProvider(
  http: EngageLabHttpClient,
  urls: { messagesUrl: string; smsUrl: string; otpUrl: string },
  api: ProviderApi,
): Promise<ProbeResult> {
  try {
    const { status } =
      api === "legacy"
        ? await http.call("templates", "GET", new URL("/v1/templates", urls.smsUrl).href)
        : api === "messages"
          ? await http.call("messages", "POST", new URL("/v1/messages", urls.messagesUrl).href, {})
          : await http.call("custom", "POST", new URL("/v1/custom-messages", urls.otpUrl).href, {});
    return { up: true, detail: `HTTP ${status}` };
  } catch (error) {
    if (!(error instanceof ProviderError)) throw error;
    if (error.status !== undefined && error.status < 500) return { up: true, detail: `HTTP ${error.status}` };
    return { up: false, detail: error.status !== undefined ? `HTTP ${error.status}` : error.kind };
  }
}
