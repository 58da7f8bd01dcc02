import { Command } from "commander";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  checkTemplateReady,
  checkStringTemplate,
  extractTemplateVariables,
  TemplatePreflightError,
} from "../src/campaigns/template-preflight.ts";
import { registerTemplateCommands } from "../src/cli/templates-command.ts";
import { ProviderError, ProviderRequestError, ProviderUnavailableError } from "../src/engagelab/errors.ts";
import {
  createTemplatesApi,
  TemplateNotFoundError,
  type ApprovalStatus,
  type SmsTemplate,
  type TemplatePage,
  type TemplatesApi,
} from "../src/engagelab/templates-api.ts";
import { createTestEnv, type TestEnv } from "./helpers/test-env.ts";

describe("EngageLab templates: client, pre-flight and CLI against the sandbox", () => {
  let env: TestEnv;
  let api: TemplatesApi;
  let close: () => Promise<void>;
  beforeAll(async () => {
    env = await createTestEnv("templates");
    ({ api, close } = createTemplatesApi(env.config));
  });
  afterAll(async () => {
    await close?.();
    await env?.cleanup();
  });

  async function setApproval(id: string, approval_status: ApprovalStatus, approval_message?: string): Promise<void> {
    const response = await fetch(`${env.sandbox.url}/_sandbox/templates/${id}/approval`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ approval_status, ...(approval_message === undefined ? {} : { approval_message }) }),
    });
    expect(response.status).toBe(200);
  }

  describe("TemplatesApi", () => {
    it("reads the pre-seeded template in camelCase", async () => {
      const template = await api.get(1);
      expect(template).toMatchObject({
        templateId: "1",
        templateName: "sandbox-notice",
        msgType: 2,
        templateType: 1,
        content: "Your order %order% has shipped",
        approvalStatus: 1,
        approvalMessage: "",
      });
      expect(template.createTime).toMatch(/^\d{4}-\d{2}-\d{2}T/);
      expect(template).not.toHaveProperty("signId");
    });

    it("creates, lists with every filter, updates, submits and deletes", async () => {
      const a = await api.create({ name: "list-alpha", content: "Hi %name%, code {{code}}", type: 0 });
      expect(a).toMatchObject({ templateName: "list-alpha", templateType: 0, approvalStatus: -2, msgType: 2 });
      const b = await api.create({
        name: "list-beta",
        content: "Sale for {{ who }}",
        type: 2,
        signId: 77,
        submit: true,
      });
      expect(b).toMatchObject({ templateType: 2, approvalStatus: 0, signId: "77" });
      const c = await api.create({ name: "other-gamma", content: "Plain notice", type: 1 });

      const all = await api.list();
      expect(all.total).toBeGreaterThanOrEqual(4);
      expect(all.templates.map((t) => t.templateId)).toEqual(
        expect.arrayContaining(["1", a.templateId, b.templateId, c.templateId]),
      );

      expect(
        (await api.list({ templateIds: [a.templateId, Number(c.templateId)] })).templates.map((t) => t.templateName),
      ).toEqual(["list-alpha", "other-gamma"]);
      const named = await api.list({ templateName: "LIST-" });
      expect(named).toMatchObject({ count: 2, total: 2 });
      const pending = await api.list({ approvalStatus: 0 });
      expect(pending.templates.map((t) => t.templateId)).toEqual([b.templateId]);

      const page = await api.list({ templateName: "list-", offset: 1, limit: 1 });
      expect(page).toMatchObject({ count: 1, total: 2 });
      expect(page.templates[0]?.templateName).toBe("list-beta");
      expect(await api.list({ limit: 0 })).toMatchObject({ count: 0, templates: [] });

      await api.update(a.templateId, { name: "list-alpha-renamed" });
      expect(await api.get(a.templateId)).toMatchObject({ templateName: "list-alpha-renamed", approvalStatus: -2 });
      await setApproval(a.templateId, 1);
      await api.update(a.templateId, { name: "list-alpha-2" });
      expect((await api.get(a.templateId)).approvalStatus).toBe(1);
      await api.update(a.templateId, { content: "Hi %name%", type: 1, signId: "5" });
      expect(await api.get(a.templateId)).toMatchObject({
        content: "Hi %name%",
        templateType: 1,
        signId: "5",
        approvalStatus: -2,
      });

      await api.submit(a.templateId);
      expect((await api.get(a.templateId)).approvalStatus).toBe(0);

      await api.delete(c.templateId);
      const gone = await api.get(c.templateId).catch((error: unknown) => error);
      expect(gone).toBeInstanceOf(TemplateNotFoundError);
      expect(gone).toMatchObject({
        templateId: c.templateId,
        providerCode: 33001,
        code: "template_not_found",
        message: `template ${c.templateId} does not exist`,
      });
      await expect(api.delete(c.templateId)).rejects.toThrow(TemplateNotFoundError);
      await expect(api.submit(c.templateId)).rejects.toThrow(TemplateNotFoundError);
      await expect(api.update(c.templateId, { name: "ghost" })).rejects.toThrow(TemplateNotFoundError);
    });

    it("refuses bad arguments before sending anything", async () => {
      const before = (await api.list()).total;
      const refusals: Array<[Promise<unknown>, string]> = [
        [api.list({ limit: 101 }), "limit"],
        [api.list({ limit: -1 }), "limit"],
        [api.list({ offset: 1.5 }), "offset"],
        [api.list({ templateIds: ["1", "x"] }), "template_ids"],
        [api.list({ approvalStatus: 3 as ApprovalStatus }), "approval_status"],
        [api.create({ name: "n".repeat(65), content: "ok", type: 1 }), "template_name"],
        [api.create({ name: " ", content: "ok", type: 1 }), "template_name"],
        [api.create({ name: "long", content: "é".repeat(513), type: 1 }), "template_content"],
        [api.create({ name: "brackets", content: "see [here]", type: 1 }), "template_content"],
        [api.create({ name: "bad-type", content: "ok", type: 3 as 0 }), "template_type"],
        [api.create({ name: "bad-sign", content: "ok", type: 1, signId: "abc" }), "sign_id"],
        [api.update(1, {}), "changes"],
        [api.update(1, { content: "x".repeat(513) }), "template_content"],
        [api.get("../messages"), "template_id"],
        [api.delete("1;2"), "template_id"],
      ];
      for (const [attempt, field] of refusals) {
        const error = await attempt.catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ProviderRequestError);
        expect((error as ProviderRequestError).field).toBe(field);
      }
      // The sandbox still answers 30002 for the same limit, had it been sent: the check mirrors the provider.
      const raw = await fetch(`${env.sandbox.url}/v1/templates?limit=101`, {
        headers: { authorization: `Basic ${Buffer.from("sandbox-key:sandbox-secret").toString("base64")}` },
      });
      expect(await raw.json()).toEqual({ code: 30002, message: "invalid limit" });

      // Exactly 64 and 512 characters are allowed.
      const edge = await api.create({ name: "e".repeat(64), content: "c".repeat(512), type: 2 });
      expect(edge.content).toHaveLength(512);
      expect((await api.list()).total).toBe(before + 1);
      await api.delete(edge.templateId);
    });

    it("surfaces provider refusals as ProviderError with the provider's code", async () => {
      await api.create({ name: "dup-name", content: "once", type: 1 });
      const error = await api.create({ name: "dup-name", content: "twice", type: 1 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProviderError);
      expect(error).not.toBeInstanceOf(TemplateNotFoundError);
      expect(error).toMatchObject({ api: "templates", code: 33005, status: 400 });
      expect((error as Error).message).not.toContain("sandbox-secret");
    });
  });

  describe("extractTemplateVariables", () => {
    it.each([
      ["Your order {{order}} has shipped", ["order"]],
      ["Hi {{ name }}, {{name}} again and {{  code}}", ["name", "code"]],
      ["Dear %name%,your amount is %amount%", ["name", "amount"]],
      ["{{b}} then %a% then {{a}} then %b%", ["b", "a"]],
      ["{{brand_name}}: code {{code}} valid {{ttl}} min, open %pwa_url%", ["code"]],
      ["50% off, 20% more, 100%", []],
      ["no variables here", []],
      ["{{first_name}} {{order.id}} %last_name%", ["first_name", "order.id", "last_name"]],
    ])("%s", (content, expected) => {
      expect(extractTemplateVariables(content)).toEqual(expected);
    });

    it("reads only the platform's own syntax when told which", () => {
      const mixed = "{{b}} then %a% then {{a}} then %c% {{ttl}}";
      expect(extractTemplateVariables(mixed, "legacy")).toEqual(["a", "c"]);
      expect(extractTemplateVariables(mixed, "double-braces")).toEqual(["b", "a"]);
    });
  });

  describe("checkStringTemplate (messages and custom: never the legacy template API)", () => {
    const available = { params: ["order"], mappedColumns: ["name"] };

    it("accepts any non-empty id and says the approval was not checked", () => {
      const report = checkStringTemplate("messages", "promo-winter", undefined, available);
      expect(report).toMatchObject({ templateId: "promo-winter", approvalChecked: false, variablesChecked: false });
      expect(report.notChecked[0]).toMatch(
        /whether template promo-winter exists and is approved.*current SMS platform/,
      );
      expect(report.notChecked[1]).toMatch(/variables/);
      expect(() => checkStringTemplate("messages", "  ", undefined, available)).toThrow(/template id is empty/);
    });

    it("checks every {{var}} of the text given, presets and %x% excepted", () => {
      const ok = checkStringTemplate("messages", "p", "Hi {{name}}, {{ order }} {{brand_name}} 50%off%", available);
      expect(ok).toMatchObject({ variablesChecked: true, approvalChecked: false });
      expect(ok.notChecked).toHaveLength(1);
      const error = (() => {
        try {
          checkStringTemplate("custom", "p", "{{name}} {{code}} {{when}}", available);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(TemplatePreflightError);
      expect((error as TemplatePreflightError).missingVariables).toEqual(["code", "when"]);
    });
  });

  describe("checkTemplateReady", () => {
    const none = { params: [], mappedColumns: [] };

    async function refusal(templateId: string, available: { params: string[]; mappedColumns: string[] } = none) {
      const error = await checkTemplateReady(api, templateId, available).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TemplatePreflightError);
      return error as TemplatePreflightError;
    }

    it("passes an approved template whose variables all have values", async () => {
      const t = await api.create({ name: "ready", content: "Hi %name%, order {{ order }} ({{brand_name}})", type: 1 });
      await setApproval(t.templateId, 1);
      const ready = await checkTemplateReady(api, t.templateId, { params: ["order"], mappedColumns: ["name"] });
      expect(ready).toMatchObject({ templateId: t.templateId, approvalStatus: 1 });
      expect(
        await checkTemplateReady(api, ` ${t.templateId} `, { params: ["order", "name"], mappedColumns: [] }),
      ).toBeTruthy();
    });

    it("refuses a template that does not exist, numeric or not", async () => {
      const missing = await refusal("999999");
      expect(missing.problems).toEqual(["template 999999 does not exist"]);
      expect(missing.message).toContain("template 999999 does not exist");
      const word = await refusal("welcome-sms");
      expect(word.problems).toEqual(["template welcome-sms does not exist"]);
    });

    it("refuses pending, rejected (with the reviewer's reason) and unsubmitted templates", async () => {
      const t = await api.create({ name: "review-states", content: "Fixed text", type: 1 });
      expect((await refusal(t.templateId)).problems).toEqual([
        `template ${t.templateId} has not been submitted for review (approval_status -2); run: smsblast templates submit ${t.templateId}`,
      ]);
      await api.submit(t.templateId);
      const pending = await refusal(t.templateId);
      expect(pending.problems).toHaveLength(1);
      expect(pending.problems[0]).toMatch(/pending review/);
      await setApproval(t.templateId, -1, "Marketing wording in a notification template");
      const rejected = await refusal(t.templateId);
      expect(rejected.problems).toEqual([
        `template ${t.templateId} was rejected (approval_status -1): Marketing wording in a notification template`,
      ]);
    });

    it("lists exactly the %variables% that have no value, together with the approval problem", async () => {
      // A legacy template's placeholders are %var%; {{c}} is sent as written on that platform.
      const t = await api.create({ name: "vars", content: "%a% %b% {{ c }} %a% %ttl% %d%", type: 1 });
      const error = await refusal(t.templateId, { params: ["b"], mappedColumns: ["zzz"] });
      expect(error.missingVariables).toEqual(["a", "d"]);
      expect(error.problems).toHaveLength(2);
      expect(error.problems[1]).toBe(
        "no value for template variables a, d (give --param name=value or --map variable=column)",
      );
      expect(error.message).toContain("not been submitted");
      expect(error.message).toContain("a, d");

      await setApproval(t.templateId, 1);
      const onlyVars = await refusal(t.templateId, { params: [], mappedColumns: ["a"] });
      expect(onlyVars.missingVariables).toEqual(["b", "d"]);
      expect(onlyVars.problems).toEqual([
        "no value for template variables b, d (give --param name=value or --map variable=column)",
      ]);
    });

    it("lets provider failures other than not-found through", async () => {
      const failing = {
        get: () => Promise.reject(new ProviderError({ api: "templates", kind: "timeout", detail: "no response" })),
      };
      await expect(checkTemplateReady(failing, "1", none)).rejects.toBeInstanceOf(ProviderUnavailableError);
    });
  });

  describe("smsblast templates", () => {
    let logged: string[];
    afterEach(() => vi.restoreAllMocks());

    async function run(...args: string[]): Promise<string> {
      logged = [];
      vi.spyOn(console, "log").mockImplementation((...parts: unknown[]) => void logged.push(parts.join(" ")));
      const program = new Command("smsblast").exitOverride().configureOutput({ writeErr: () => {} });
      let opened = 0;
      let closed = 0;
      registerTemplateCommands(program, () => {
        opened++;
        const handle = createTemplatesApi(env.config);
        return Promise.resolve({ api: handle.api, close: () => (closed++, handle.close()) });
      });
      try {
        await program.parseAsync(args, { from: "user" });
      } finally {
        expect(closed).toBe(opened);
        vi.restoreAllMocks();
      }
      return logged.join("\n");
    }

    it("create, get, update, submit, list and delete", async () => {
      const created = JSON.parse(
        await run(
          "templates",
          "create",
          "--name",
          "cli-one",
          "--content",
          "Hello {{name}}",
          "--type",
          "1",
          "--sign-id",
          "9",
          "--json",
        ),
      ) as SmsTemplate;
      expect(created).toMatchObject({ templateName: "cli-one", signId: "9", approvalStatus: -2 });
      const id = created.templateId;

      expect(
        await run("templates", "create", "--name", "cli-two", "--content", "Promo", "--type", "2", "--submit"),
      ).toMatch(/^created template \d+ "cli-two" \(pending review\)$/);

      const shown = await run("templates", "get", id);
      expect(shown).toMatch(/^id\s+\d+$/m);
      expect(shown).toMatch(/^status\s+not submitted \(-2\)$/m);
      expect(shown).toMatch(/^content\s+Hello \{\{name\}\}$/m);
      expect(JSON.parse(await run("templates", "get", id, "--json"))).toEqual(created);

      expect(await run("templates", "update", id, "--content", "Hello {{name}}!", "--type", "0")).toBe(
        `updated template ${id} "cli-one" (not submitted)`,
      );
      expect(await api.get(id)).toMatchObject({ content: "Hello {{name}}!", templateType: 0 });

      expect(await run("templates", "submit", id)).toBe(`submitted template ${id} for review (pending review)`);
      await setApproval(id, -1, "too short");

      const table = await run("templates", "list", "--name", "cli-");
      const lines = table.split("\n");
      expect(lines[0]).toMatch(/^ID\s+NAME\s+TYPE\s+STATUS\s+UPDATED\s+CONTENT$/);
      expect(lines[1]).toMatch(
        new RegExp(`^${id}\\s+cli-one\\s+verification code\\s+rejected: too short\\s+\\S+\\s+Hello \\{\\{name\\}\\}!$`),
      );
      expect(lines[2]).toMatch(/cli-two\s+marketing\s+pending review/);
      expect(lines.at(-1)).toBe("2 shown (from 1) of 2");
      // Columns line up: STATUS starts at the same offset on every row.
      const at = lines[0]!.indexOf("STATUS");
      expect(lines[1]!.slice(at)).toMatch(/^rejected/);
      expect(lines[2]!.slice(at)).toMatch(/^pending/);

      const rejectedOnly = JSON.parse(
        await run("templates", "list", "--status", "-1", "--name", "cli-", "--json"),
      ) as TemplatePage;
      expect(rejectedOnly.templates.map((t) => t.templateId)).toEqual([id]);
      const paged = JSON.parse(
        await run("templates", "list", "--name", "cli-", "--offset", "1", "--limit", "1", "--json"),
      ) as TemplatePage;
      expect(paged).toMatchObject({ count: 1, total: 2, templates: [{ templateName: "cli-two" }] });
      const byIds = JSON.parse(
        await run("templates", "list", "--ids", `1, ${id}`, "--status", "approved", "--json"),
      ) as TemplatePage;
      expect(byIds.templates.map((t) => t.templateId)).toEqual(["1"]);

      expect(await run("templates", "delete", id)).toBe(`deleted template ${id}`);
      await expect(run("templates", "get", id)).rejects.toBeInstanceOf(TemplateNotFoundError);
    });

    it("reports bad input as typed errors", async () => {
      await expect(run("templates", "list", "--limit", "500")).rejects.toBeInstanceOf(ProviderRequestError);
      await expect(run("templates", "update", "1")).rejects.toThrow(/at least one of/);
      await expect(run("templates", "create", "--name", "x", "--content", "y", "--type", "5")).rejects.toThrow(
        /expected 0/,
      );
      await expect(run("templates", "list", "--status", "7")).rejects.toThrow(/expected 0/);
    });
  });
});
