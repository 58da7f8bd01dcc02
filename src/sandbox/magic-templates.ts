/**
 * Template ids that make the send APIs (/v1/messages, /v1/custom-messages) fail on purpose,
 * so tests can reach every error path without creating templates first:
 *
 *   "missing", "missing*"        → 400 code 4001 (template does not exist)
 *   "rate-limited", "freq-*"     → 400 code 3004 (frequency limit exceeded)
 *   "fail-*"                     → 400 code 5001 (delivery failed)
 *   "code-*" (custom-messages)   → template.params.code is required, else 400 code 3002
 *
 * Every other id is accepted; the template store is deliberately not consulted.
 */
export type MagicTemplateFailure = "not-found" | "frequency-limit" | "delivery-failed";

export function magicTemplateFailure(templateId: string): MagicTemplateFailure | undefined {
  if (templateId.startsWith("missing")) return "not-found";
  if (templateId === "rate-limited" || templateId.startsWith("freq-")) return "frequency-limit";
  if (templateId.startsWith("fail-")) return "delivery-failed";
  return undefined;
}

export function requiresVerificationCode(templateId: string): boolean {
  return templateId.startsWith("code-");
}
