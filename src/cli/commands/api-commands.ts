import { Option, type Command } from "commander";
import { createApiToken, listApiTokens, revokeApiToken } from "../../access/api-tokens.ts";
import { cliActor, readAuditLog, recordAudit } from "../../access/audit-log.ts";
import { clearWebhook, describeWebhook, setWebhook, webhookUrlForDisplay } from "../../access/webhooks.ts";
import { UserError } from "../../model/errors.ts";
import { API_ROLES, type ApiRole } from "../../model/roles.ts";
import { withServices } from "../../runtime/services.ts";
import { formatTable } from "../format.ts";
import { numberBetween, wholeNumber } from "../shared.ts";

/** `smsblast serve`, `tokens`, `audit`: the HTTP API process and what its operators manage. */
export function registerApiCommands(program: Command): void {
  program
    .command("serve")
    .description("run the HTTP API (OpenAPI at /openapi.json, docs at /docs) until SIGTERM/SIGINT")
    .option("--port <port>", "port to listen on (default API_PORT, 3000)", numberBetween("--port", 0, 65535))
    .option("--host <host>", "address to listen on (default API_HOST, 127.0.0.1)")
    .action(async (opts: { port?: number; host?: string }) => {
      const { runApiProcess } = await import("../../../workers/api.ts");
      await runApiProcess({
        ...opts,
        onFirstRunToken: printFirstRunToken,
        onListening: (url) => console.log(`smsblast console and API on ${url}/ (API docs: ${url}/docs)`),
      });
    });

  const tokens = program.command("tokens").description("API tokens for the HTTP API");
  tokens
    .command("create")
    .description("create a token and print it once (only its SHA-256 is stored)")
    .requiredOption("--name <name>", "who or what uses it (shown in the audit log)")
    .addOption(new Option("--role <role>", "what it may do").choices(API_ROLES).default("viewer"))
    .action(async (opts: { name: string; role: ApiRole }) => {
      await withServices(async ({ db }) => {
        const created = await createApiToken(db, opts);
        await recordAudit(db, cliActor(), "token.create", {
          details: { name: created.token.name, role: created.token.role },
        });
        console.error(`token "${created.token.name}" (${created.token.role}) created; it is shown this once:`);
        console.log(created.secret);
      });
    });
  tokens
    .command("list")
    .description("tokens with their role, prefix, creation and last use (never the secret)")
    .action(async () => {
      await withServices(async ({ db }) => {
        const list = await listApiTokens(db);
        console.log(
          formatTable([
            ["name", "role", "prefix", "created", "last used", "revoked", "webhook"],
            ...list.map((t) => [
              t.name,
              t.role,
              `${t.prefix}…`,
              t.createdAt.toISOString(),
              t.lastUsedAt?.toISOString() ?? "-",
              t.revokedAt?.toISOString() ?? "-",
              t.webhookUrl === null ? "-" : webhookUrlForDisplay(t.webhookUrl),
            ]),
          ]),
        );
      });
    });
  tokens
    .command("revoke")
    .description("revoke a token: every request with it is refused from now on")
    .argument("<name>")
    .action(async (name: string) => {
      await withServices(async ({ db }) => {
        await revokeApiToken(db, name);
        await recordAudit(db, cliActor(), "token.revoke", { details: { name } });
        console.log(`token "${name}" revoked`);
      });
    });
  tokens
    .command("webhook")
    .description(
      "the token's webhook: with --url, campaign events are POSTed there, signed with a new key printed once; " +
        "--clear removes it; neither: shows it and its deliveries",
    )
    .argument("<name>")
    .option(
      "--url <url>",
      "https:// URL receiving the events (http:// only to localhost); needs WEBHOOK_SIGNING_SECRET",
    )
    .option("--clear", "remove the webhook (events not delivered yet are given up)")
    .action(async (name: string, opts: { url?: string; clear?: boolean }) => {
      if (opts.url !== undefined && opts.clear)
        throw new UserError("conflicting_options", "give --url or --clear, not both");
      await withServices(async ({ db, config }) => {
        if (opts.url !== undefined) {
          const set = await setWebhook(db, config, { name, url: opts.url });
          await recordAudit(db, cliActor(), "token.webhook.set", {
            details: { name: set.name, receiver: webhookUrlForDisplay(set.url) },
          });
          console.error(
            `token "${set.name}": campaign events now go to ${webhookUrlForDisplay(set.url)}; its signing key is ` +
              `shown this once (any earlier key no longer verifies):`,
          );
          console.log(set.signingKey);
          return;
        }
        if (opts.clear) {
          const { abandoned } = await clearWebhook(db, name);
          await recordAudit(db, cliActor(), "token.webhook.clear", { details: { name } });
          console.log(
            `token "${name}": webhook removed` + (abandoned > 0 ? `; ${abandoned} undelivered events given up` : ""),
          );
          return;
        }
        const state = await describeWebhook(db, name);
        const d = state.deliveries;
        const failure = d.lastFailure
          ? `${d.lastFailure.at.toISOString()} ${d.lastFailure.status ?? d.lastFailure.error ?? "?"}`
          : "-";
        console.log(
          formatTable([
            ["token", "webhook", "set", "open", "delivered", "given up", "last failure"],
            [
              state.name,
              state.url ?? "-",
              state.setAt?.toISOString() ?? "-",
              String(d.open),
              String(d.delivered),
              String(d.givenUp),
              failure,
            ],
          ]),
        );
      });
    });

  program
    .command("audit")
    .description("state-changing actions, newest first (who, what, which campaign, when)")
    .option("--limit <n>", "how many", wholeNumber("--limit"), 50)
    .option("--campaign <id>", "only this campaign's")
    .option("--json", "print JSON")
    .action(async (opts: { limit: number; campaign?: string; json?: boolean }) => {
      await withServices(async ({ db }) => {
        const entries = await readAuditLog(db, { limit: opts.limit, campaignId: opts.campaign });
        if (opts.json) {
          console.log(JSON.stringify(entries));
          return;
        }
        console.log(
          formatTable([
            ["time", "actor", "action", "campaign", "details"],
            ...entries.map((e) => [
              e.createdAt.toISOString(),
              e.actor,
              e.action,
              e.campaignId ?? "-",
              JSON.stringify(e.details),
            ]),
          ]),
        );
      });
    });
}

/** A new install has no token: the first start creates an admin token and prints it, once, on stdout. */
function printFirstRunToken(created: { name: string; secret: string; consoleUrl: string }): void {
  console.log(
    [
      `No API token existed, so an admin token named "${created.name}" was created. It is shown this once:`,
      "",
      `  ${created.secret}`,
      "",
      `Sign in to the web console at ${created.consoleUrl} with it, and create tokens for people and systems under Settings.`,
    ].join("\n"),
  );
}
