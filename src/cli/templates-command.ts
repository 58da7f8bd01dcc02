import { InvalidArgumentError, Option, type Command } from "commander";
import {
  describeApprovalStatus,
  describeTemplateType,
  type ApprovalStatus,
  type SmsTemplate,
  type TemplateChanges,
  type TemplatesApi,
  type TemplateType,
} from "../campaigns/template-catalog.ts";
import { formatTable } from "./format.ts";
import { wholeNumber } from "./shared.ts";

export type OpenTemplatesApi = () => Promise<{ api: TemplatesApi; close: () => Promise<void> }>;

/** What commander hands each action, as the options and argParsers below declare it. */
interface ListOpts {
  status?: ApprovalStatus;
  name?: string;
  ids?: string[];
  offset?: number;
  limit?: number;
  json?: boolean;
}
interface CreateOpts {
  name: string;
  content: string;
  type: TemplateType;
  signId?: number;
  submit?: boolean;
  json?: boolean;
}
interface UpdateOpts {
  name?: string;
  content?: string;
  type?: TemplateType;
  signId?: number;
}

const STATUS_NAMES: Record<string, ApprovalStatus> = {
  "0": 0,
  "1": 1,
  "-1": -1,
  "-2": -2,
  pending: 0,
  approved: 1,
  rejected: -1,
  "not-submitted": -2,
};

function approvalStatus(value: string): ApprovalStatus {
  const status = STATUS_NAMES[value.trim().toLowerCase()];
  if (status === undefined) {
    throw new InvalidArgumentError(
      `expected 0 (pending), 1 (approved), -1 (rejected) or -2 (not-submitted), got "${value}"`,
    );
  }
  return status;
}

function templateType(value: string): TemplateType {
  if (value !== "0" && value !== "1" && value !== "2") {
    throw new InvalidArgumentError(`expected 0 (verification code), 1 (notification) or 2 (marketing), got "${value}"`);
  }
  return Number(value) as TemplateType;
}

function idList(value: string): string[] {
  return value
    .split(",")
    .map((id) => id.trim())
    .filter((id) => id !== "");
}

function statusWords(template: SmsTemplate): string {
  const words = describeApprovalStatus(template.approvalStatus);
  return template.approvalStatus === -1 && template.approvalMessage ? `${words}: ${template.approvalMessage}` : words;
}

function shorten(text: string, max: number): string {
  const flat = text.replace(/\s+/g, " ");
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

// formatTable pads the last column too; trailing blanks only get in the way of copying and grepping.
function table(rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  return formatTable(rows)
    .split("\n")
    .map((line) => line.trimEnd())
    .join("\n");
}

function formatTemplateList(templates: readonly SmsTemplate[]): string {
  return table([
    ["ID", "NAME", "TYPE", "STATUS", "UPDATED", "CONTENT"],
    ...templates.map((t) => [
      t.templateId,
      t.templateName,
      describeTemplateType(t.templateType),
      statusWords(t),
      t.updateTime,
      shorten(t.content, 48),
    ]),
  ]);
}

function formatTemplate(t: SmsTemplate): string {
  return table([
    ["id", t.templateId],
    ["name", t.templateName],
    ["type", `${describeTemplateType(t.templateType)} (${t.templateType})`],
    ["status", `${statusWords(t)} (${t.approvalStatus})`],
    ["msg type", String(t.msgType)],
    ["sign id", t.signId ?? "-"],
    ["created", t.createTime],
    ["updated", t.updateTime],
    ["content", t.content],
  ]);
}

/** Opens the API for one command and always releases its keep-alive sockets, so the process can exit. */
async function withApi<T>(openApi: OpenTemplatesApi, use: (api: TemplatesApi) => Promise<T>): Promise<T> {
  const { api, close } = await openApi();
  try {
    return await use(api);
  } finally {
    await close();
  }
}

/** `smsblast templates …`: manage EngageLab SMS templates (seed 003). */
export function registerTemplateCommands(program: Command, openApi: OpenTemplatesApi): void {
  const templates = program
    .command("templates")
    .description("list, inspect, create, change, submit and delete EngageLab SMS templates");

  templates
    .command("list")
    .description("list templates, newest last")
    .option(
      "--status <status>",
      "only this approval status: 0 pending, 1 approved, -1 rejected, -2 not submitted",
      approvalStatus,
    )
    .option("--name <text>", "only names containing this text")
    .option("--ids <ids>", "only these template ids, comma-separated", idList)
    .option("--offset <n>", "skip this many templates", wholeNumber("--offset"))
    .option("--limit <n>", "at most this many templates (0-100, default 100)", wholeNumber("--limit"))
    .option("--json", "print one JSON object")
    .action(async (opts: ListOpts) => {
      await withApi(openApi, async (api) => {
        const page = await api.list({
          ...(opts.status !== undefined ? { approvalStatus: opts.status } : {}),
          ...(opts.name !== undefined ? { templateName: opts.name } : {}),
          ...(opts.ids !== undefined ? { templateIds: opts.ids } : {}),
          ...(opts.offset !== undefined ? { offset: opts.offset } : {}),
          ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
        });
        if (opts.json) {
          console.log(JSON.stringify(page));
          return;
        }
        if (page.templates.length === 0) {
          console.log(`no templates on this page (${page.total} match)`);
          return;
        }
        const offset = opts.offset ?? 0;
        console.log(
          `${formatTemplateList(page.templates)}\n\n${page.count} shown (from ${offset + 1}) of ${page.total}`,
        );
      });
    });

  templates
    .command("get")
    .description("show one template")
    .argument("<id>", "template id")
    .option("--json", "print one JSON object")
    .action(async (id: string, opts: { json?: boolean }) => {
      await withApi(openApi, async (api) => {
        const template = await api.get(id);
        console.log(opts.json ? JSON.stringify(template) : formatTemplate(template));
      });
    });

  templates
    .command("create")
    .description("add a template (left unsubmitted unless --submit)")
    .requiredOption("--name <name>", "template name, unique in the account, at most 64 characters")
    .requiredOption("--content <text>", "template text, at most 512 characters; variables as {{name}} or %name%")
    .addOption(
      new Option("--type <type>", "0 verification code, 1 notification, 2 marketing")
        .argParser(templateType)
        .makeOptionMandatory(),
    )
    .option("--sign-id <n>", "id of the signature to attach", wholeNumber("--sign-id"))
    .option("--submit", "submit for review immediately")
    .option("--json", "print the created template as JSON")
    .action(async (opts: CreateOpts) => {
      await withApi(openApi, async (api) => {
        const template = await api.create({
          name: opts.name,
          content: opts.content,
          type: opts.type,
          ...(opts.signId !== undefined ? { signId: opts.signId } : {}),
          ...(opts.submit ? { submit: true } : {}),
        });
        console.log(
          opts.json
            ? JSON.stringify(template)
            : `created template ${template.templateId} "${template.templateName}" (${statusWords(template)})`,
        );
      });
    });

  templates
    .command("update")
    .description("change a template; anything but the name sends it back for review")
    .argument("<id>", "template id")
    .option("--name <name>", "new name, at most 64 characters")
    .option("--content <text>", "new template text, at most 512 characters")
    .addOption(new Option("--type <type>", "0 verification code, 1 notification, 2 marketing").argParser(templateType))
    .option("--sign-id <n>", "id of the signature to attach", wholeNumber("--sign-id"))
    .action(async (id: string, opts: UpdateOpts) => {
      const changes: TemplateChanges = {
        ...(opts.name !== undefined ? { name: opts.name } : {}),
        ...(opts.content !== undefined ? { content: opts.content } : {}),
        ...(opts.type !== undefined ? { type: opts.type } : {}),
        ...(opts.signId !== undefined ? { signId: opts.signId } : {}),
      };
      if (Object.keys(changes).length === 0)
        throw new InvalidArgumentError("give at least one of --name, --content, --type, --sign-id");
      await withApi(openApi, async (api) => {
        await api.update(id, changes);
        // The provider answers only {count}; read back so the user sees whether approval was reset.
        const template = await api.get(id);
        console.log(`updated template ${template.templateId} "${template.templateName}" (${statusWords(template)})`);
      });
    });

  templates
    .command("submit")
    .description("submit a template for review")
    .argument("<id>", "template id")
    .action(async (id: string) => {
      await withApi(openApi, async (api) => {
        await api.submit(id);
        console.log(`submitted template ${id} for review (${describeApprovalStatus(0)})`);
      });
    });

  templates
    .command("delete")
    .description("delete a template")
    .argument("<id>", "template id")
    .action(async (id: string) => {
      await withApi(openApi, async (api) => {
        await api.delete(id);
        console.log(`deleted template ${id}`);
      });
    });
}
