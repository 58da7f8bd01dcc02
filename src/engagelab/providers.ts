import type { Config } from "../config/config.ts";
import type { ProviderApi } from "../model/states.ts";
import { EngageLabHttpClient } from "./http-client.ts";
import { MessagesApiProvider } from "./messages-api.ts";
import { LegacySendApiProvider } from "./legacy-send-api.ts";
import { CustomMessagesApiProvider } from "./custom-messages-api.ts";
import type { SmsProvider } from "./provider.ts";

export interface ProviderRegistry {
  providers: Record<ProviderApi, SmsProvider>;
  custom: CustomMessagesApiProvider;
  close(): Promise<void>;
}

/** One keep-alive HTTP client shared by every provider adapter of the process. */
export function createProviders(config: Config): ProviderRegistry {
  const http = new EngageLabHttpClient(config.engagelab.credentials, {
    timeoutMs: config.engagelab.timeoutMs,
    connections: config.send.concurrency * Math.max(2, config.send.customParallelism),
  });
  const custom = new CustomMessagesApiProvider(http, config.engagelab.otpUrl, config.send.customParallelism);
  return {
    providers: {
      messages: new MessagesApiProvider(http, config.engagelab.messagesUrl),
      legacy: new LegacySendApiProvider(http, config.engagelab.smsUrl),
      custom,
    },
    custom,
    close: () => http.close(),
  };
}
