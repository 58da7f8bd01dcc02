import { TemplateNotFoundError, type SmsTemplate, type TemplatesApi } from "../engagelab/templates-api.ts";
import { UserError } from "../model/errors.ts";
import { userFacingProviderError } from "./template-catalog.ts";

/** Variables EngageLab fills in itself; a campaign never has to supply them. */
const PRESET_VARIABLES = new Set(["brand_name", "ttl", "pwa_url"]);

// One pass over both syntaxes keeps the order of first appearance across them.
// `%name%` must start with a letter or underscore so "50% off, 20% more" is not read as a variable.
export const TEMPLATE_VARIABLE_PATTERN = /\{\{\s*([A-Za-z0-9_][\w.-]*)\s*\}\}|%([A-Za-z_]\w*)%/g;

/** Unique variable names in a template's content, `{{var}}` (v1/messages) and `%var%` (legacy), minus presets. */
export function extractTemplateVariables(content: string): string[] {
  const seen = new Set<string>();
  for (const match of content.matchAll(TEMPLATE_VARIABLE_PATTERN)) {
    const name = match[1] ?? match[2];
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

/**
 * Refuses a template before any message is sent: it must exist, be approved, and every variable in its
 * content must get a value. Provider failures other than "not found" (network, auth) propagate unchanged.
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
  const missing = extractTemplateVariables(template.content).filter((name) => !supplied.has(name));
  if (missing.length > 0) {
    problems.push(
      `no value for template variable${missing.length === 1 ? "" : "s"} ${missing.join(", ")} ` +
        "(give --param name=value or --map variable=column)",
    );
  }

  if (problems.length > 0) throw new TemplatePreflightError(id, problems, missing);
  return template;
}
