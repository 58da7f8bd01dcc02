import { TemplateNotFoundError, type SmsTemplate, type TemplatesApi } from "../engagelab/templates-api.ts";
import { UserError } from "../model/errors.ts";
import type { ProviderApi } from "../model/states.ts";
import { userFacingProviderError } from "./template-catalog.ts";

/** Variables EngageLab fills in itself; a campaign never has to supply them. */
const PRESET_VARIABLES = new Set(["brand_name", "ttl", "pwa_url"]);

// One pattern for both syntaxes keeps the order of first appearance across them; group 1 is `{{name}}`,
// group 2 `%name%`. `%name%` must start with a letter or underscore so "50% off, 20% more" is not read as a variable.
export const TEMPLATE_VARIABLE_PATTERN = /\{\{\s*([A-Za-z0-9_][\w.-]*)\s*\}\}|%([A-Za-z_]\w*)%/g;

/**
 * Which placeholders a platform fills: `%var%` on the legacy platform (v1/send, seed 001 and 003), `{{var}}` on
 * the current SMS and OTP platforms (v1/messages, v1/custom-messages). Text in the other syntax is sent as
 * written. "any" reads both (a text whose platform is not known).
 */
export type TemplateSyntax = "legacy" | "double-braces" | "any";

export function templateSyntaxOf(provider: ProviderApi): Exclude<TemplateSyntax, "any"> {
  return provider === "legacy" ? "legacy" : "double-braces";
}

/** Unique variable names in a template's content in the given syntax, minus the provider's presets. */
export function extractTemplateVariables(content: string, syntax: TemplateSyntax = "any"): string[] {
  const seen = new Set<string>();
  for (const match of content.matchAll(TEMPLATE_VARIABLE_PATTERN)) {
    const name = syntax === "legacy" ? match[2] : syntax === "double-braces" ? match[1] : (match[1] ?? match[2]);
    if (name !== undefined && !PRESET_VARIABLES.has(name)) seen.add(name);
  }
  return [...seen];
}

/** A campaign must not start with this template; `problems` lists every reason, not just the first. */
export class TemplatePreflightError extends UserError {
  override name = "TemplatePreflightError";
  constructor(
    readonly templateId: string,
    readonly problems: string[],
    /** Template variables with no fixed param and no mapped column; empty when the template was not readable. */
    readonly missingVariables: string[] = [],
  ) {
    super("template_not_usable", `template ${templateId} cannot be used:\n  - ${problems.join("\n  - ")}`, {
      field: "templateId",
    });
  }
}

export interface AvailableValues {
  /** Names given with `--param name=value`. */
  params: readonly string[];
  /** Variable names that CSV columns are mapped to with `--map variable=column`. */
  mappedColumns: readonly string[];
}

function approvalProblem(template: SmsTemplate): string | undefined {
  const id = template.templateId;
  switch (template.approvalStatus) {
    case 1:
      return undefined;
    case 0:
      return `template ${id} is pending review (approval_status 0); wait until EngageLab approves it`;
    case -1:
      return `template ${id} was rejected (approval_status -1): ${template.approvalMessage || "no reason given"}`;
    case -2:
      return `template ${id} has not been submitted for review (approval_status -2); run: smsblast templates submit ${id}`;
  }
}

function missingVariablesProblem(missing: readonly string[]): string {
  return (
    `no value for template variable${missing.length === 1 ? "" : "s"} ${missing.join(", ")} ` +
    "(give --param name=value or --map variable=column)"
  );
}

/**
 * What a launch could check of its template. Only the legacy template API (seed 003) says whether a template
 * exists and is approved; the current SMS and OTP platforms' templates are not visible to smsblast.
 */
export interface TemplateCheckReport {
  templateId: string;
  /** The provider confirmed the template exists and is approved. */
  approvalChecked: boolean;
  /** Every variable of the template's text has a value (the text came from the template API or the user). */
  variablesChecked: boolean;
  /** What was not checked and why, in plain words. */
  notChecked: string[];
}

/**
 * Legacy (v1/send) templates: refuses one before any message is sent unless it exists in the legacy template API
 * (integer ids, seed 003), is approved, and every `%var%` in its content gets a value. Provider failures other
 * than "not found" (network, auth) propagate unchanged.
 */
export async function checkTemplateReady(
  api: Pick<TemplatesApi, "get">,
  templateId: string,
  available: AvailableValues,
): Promise<SmsTemplate> {
  const id = templateId.trim();
  // Template ids are integers in seed 003; asking the provider about "abc" would only cost a round trip.
  if (!/^\d+$/.test(id)) throw new TemplatePreflightError(templateId, [`template ${templateId} does not exist`]);

  let template: SmsTemplate;
  try {
    template = await api.get(id);
  } catch (error) {
    if (error instanceof TemplateNotFoundError) throw new TemplatePreflightError(id, [`template ${id} does not exist`]);
    throw userFacingProviderError(error);
  }

  const problems: string[] = [];
  const approval = approvalProblem(template);
  if (approval) problems.push(approval);

  const supplied = new Set([...available.params, ...available.mappedColumns]);
  const missing = extractTemplateVariables(template.content, "legacy").filter((name) => !supplied.has(name));
  if (missing.length > 0) problems.push(missingVariablesProblem(missing));

  if (problems.length > 0) throw new TemplatePreflightError(id, problems, missing);
  return template;
}

/**
 * v1/messages and v1/custom-messages templates: string ids on platforms whose template APIs smsblast does not
 * call, so existence and approval cannot be checked here, and the legacy template API must never be asked (it
 * knows nothing of them). What can be checked: the id is not empty, and, when the user gives the template's
 * text, every `{{var}}` in it gets a value.
 */
export function checkStringTemplate(
  provider: Exclude<ProviderApi, "legacy">,
  templateId: string,
  content: string | undefined,
  available: AvailableValues,
): TemplateCheckReport {
  const id = templateId.trim();
  if (id === "") throw new TemplatePreflightError(templateId, ["the template id is empty"]);
  const platform = provider === "messages" ? "current SMS platform" : "OTP platform";
  const notChecked = [
    `whether template ${id} exists and is approved: ${provider} templates live on the EngageLab ${platform}, ` +
      "which smsblast cannot query; check it in the EngageLab console",
  ];
  if (content === undefined) {
    notChecked.push("its variables: the template's text was not given");
    return { templateId: id, approvalChecked: false, variablesChecked: false, notChecked };
  }
  const supplied = new Set([...available.params, ...available.mappedColumns]);
  const missing = extractTemplateVariables(content, "double-braces").filter((name) => !supplied.has(name));
  if (missing.length > 0) throw new TemplatePreflightError(id, [missingVariablesProblem(missing)], missing);
  return { templateId: id, approvalChecked: false, variablesChecked: true, notChecked };
}
