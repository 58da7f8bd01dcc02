import type { ProviderApi } from "../model/states.ts";

/**
 * EngageLab runs the APIs smsblast uses on three platforms, each with its own host and its own key pair; a
 * pair from one is refused by the others (docs/engagelab-apis.md#platforms-and-credentials).
 */
export const PLATFORMS = ["messages", "sms", "otp"] as const;
export type Platform = (typeof PLATFORMS)[number];

export interface PlatformSettings {
  /** How messages name the platform to an operator. */
  label: string;
  /** The APIs of the platform smsblast calls. */
  apis: string;
  urlVariable: string;
  /** The pair, named as the platform's console names it (sms_user:sms_key on the legacy platform). */
  keyVariable: string;
  secretVariable: string;
}

export const PLATFORM_SETTINGS: Readonly<Record<Platform, PlatformSettings>> = {
  messages: {
    label: "current SMS platform",
    apis: "v1/messages",
    urlVariable: "ENGAGELAB_MESSAGES_URL",
    keyVariable: "ENGAGELAB_MESSAGES_KEY",
    secretVariable: "ENGAGELAB_MESSAGES_SECRET",
  },
  sms: {
    label: "legacy SMS platform",
    apis: "v1/send and v1/templates",
    urlVariable: "ENGAGELAB_SMS_URL",
    keyVariable: "ENGAGELAB_SMS_USER",
    secretVariable: "ENGAGELAB_SMS_KEY",
  },
  otp: {
    label: "OTP platform",
    apis: "v1/custom-messages",
    urlVariable: "ENGAGELAB_OTP_URL",
    keyVariable: "ENGAGELAB_OTP_KEY",
    secretVariable: "ENGAGELAB_OTP_SECRET",
  },
};

/** The pair used for every platform that has none of its own. */
export const FALLBACK_KEY_VARIABLE = "ENGAGELAB_API_KEY";
export const FALLBACK_SECRET_VARIABLE = "ENGAGELAB_API_SECRET";

const PLATFORM_OF_API: Readonly<Record<ProviderApi | "templates", Platform>> = {
  messages: "messages",
  legacy: "sms",
  templates: "sms",
  custom: "otp",
};

/** Which platform (and so which key pair) serves an API. */
export function platformOfApi(api: ProviderApi | "templates"): Platform {
  return PLATFORM_OF_API[api];
}

/** "the current SMS platform (v1/messages; ENGAGELAB_MESSAGES_KEY/ENGAGELAB_MESSAGES_SECRET)": what to fix. */
export function describePlatform(platform: Platform): string {
  const s = PLATFORM_SETTINGS[platform];
  return `the ${s.label} (${s.apis}; key pair ${s.keyVariable}/${s.secretVariable})`;
}

/**
 * The sandbox is reached on a loopback address (`smsblast sandbox`, the tests) or as the `sandbox` service
 * of docker-compose.yml; any other host is taken to be EngageLab, which needs real credentials.
 */
export function isSandboxUrl(url: string): boolean {
  const host = new URL(url).hostname.toLowerCase();
  return (
    host === "localhost" ||
    host === "sandbox" ||
    host === "[::1]" ||
    host === "::1" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
  );
}
