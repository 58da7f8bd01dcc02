import type { Config } from "../config/config.ts";
import type { ProviderApi } from "../store/generated/enums.ts";
import { EngageLabHttpClient } from "./http-client.ts";
import { MessagesApiProvider } from "./messages-api.ts";
import { ProviderRequestError } from "./errors.ts";
import type { SmsProvider } from "./provider.ts";

export interface ProviderRegistry {
  providers: Record<ProviderApi, SmsProvider>;
  close(): Promise<void>;
}

class NotYetSupportedProvider implements SmsProvider {
  constructor(readonly name: "legacy" | "custom") {}
  async sendBatch(): Promise<never> {
    throw new ProviderRequestError("provider", `the ${this.name} API is not supported yet`);
  }
}

/** One keep-alive HTTP client shared by every provider adapter of the process. */
export function createProviders(config: Config): ProviderRegistry {
  const http = new EngageLabHttpClient(
    { apiKey: config.engagelab.apiKey, apiSecret: config.engagelab.apiSecret },
    { timeoutMs: config.engagelab.timeoutMs, connections: config.send.concurrency * 2 },
  );
  return {
    providers: {
      messages: new MessagesApiProvider(http, config.engagelab.messagesUrl),
      legacy: new NotYetSupportedProvider("legacy"),
      custom: new NotYetSupportedProvider("custom"),
    },
    close: () => http.close(),
  };
}
