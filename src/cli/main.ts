#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { Command, CommanderError, InvalidArgumentError } from "commander";
import { loadConfig } from "../config/config.ts";
import { isUserError, type UserError } from "../model/errors.ts";
import { openTemplates } from "../runtime/services.ts";
import { registerApiCommands } from "./commands/api-commands.ts";
import { registerAudienceCommands } from "./commands/audience-commands.ts";
import { registerCampaignCommands } from "./commands/campaign-commands.ts";
import { registerRetentionCommands } from "./commands/retention-commands.ts";
import { registerScheduleCommands } from "./commands/schedule-commands.ts";
import { registerServiceCommands } from "./commands/service-commands.ts";
import { registerTemplateCommands } from "./templates-command.ts";

import { EXIT } from "./exit-codes.ts";

/**
 * The domain names concepts; the CLI says them as the flags a user typed. A field without an entry here
 * is printed as the domain named it.
 */
const FIELD_FLAGS: Readonly<Record<string, string>> = {
  startAt: "--at",
  timezone: "--tz",
  cron: "--cron",
  templateId: "--template",
  params: "--param",
  audience: "--audience",
  phoneColumn: "--phone-column",
  countryColumn: "--country-column",
  from: "--from",
  msgType: "--msg-type",
  labelId: "--label-id",
  custom_args: "--custom-arg",
  schedule_time: "--at … --provider-schedule",
  url: "--url",
};

/**
 * Refusals a flag overrides: the CLI names it after the message ("add --allow-repeat to …") instead of
 * prefixing it, since the user typed nothing wrong.
 */
const OVERRIDE_FLAGS: Readonly<Record<string, string>> = {
  allowRepeat: "add --allow-repeat to send it again anyway",
};

export function describeUserError(error: UserError): string {
  const override = error.field === undefined ? undefined : OVERRIDE_FLAGS[error.field];
  if (override) return `${error.message}; ${override}`;
  const flag = error.field === undefined ? undefined : FIELD_FLAGS[error.field];
  return flag && !error.message.startsWith(flag) ? `${flag}: ${error.message}` : error.message;
}

export function buildCli(): Command {
  const program = new Command("smsblast")
    .description("Queue-backed bulk SMS campaigns for the EngageLab SMS API")
    .version(packageVersion(), "-V, --version", "print the version")
    .showHelpAfterError();
  registerServiceCommands(program);
  registerCampaignCommands(program);
  registerAudienceCommands(program);
  registerRetentionCommands(program);
  registerScheduleCommands(program);
  registerApiCommands(program);
  registerTemplateCommands(program, () => Promise.resolve(openTemplates(loadConfig())));
  return program;
}

export async function runCli(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (error) {
    if (isUserError(error) || error instanceof InvalidArgumentError) {
      console.error(`smsblast: ${isUserError(error) ? describeUserError(error) : error.message}`);
      process.exitCode = EXIT.refused;
      return;
    }
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    throw error;
  }
}

function packageVersion(): string {
  // src/cli/main.ts is two levels below the package root, dist/src/cli/main.js three.
  for (const up of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "smsblast" && pkg.version) return pkg.version;
    } catch {
      // not at this level
    }
  }
  return "unknown";
}

/**
 * ioredis rejects the commands still queued on a connection when it is closed ("Connection is closed."),
 * which happens by design when a command ends while BullMQ has a request in flight. They are not errors of
 * the command, so they never reach the user; any other unhandled rejection still does.
 */
function ignoreClosedRedisConnections(): void {
  process.on("unhandledRejection", (reason) => {
    if (reason instanceof Error && reason.message === "Connection is closed.") return;
    console.error(`smsblast: internal error: ${reason instanceof Error ? reason.message : String(reason)}`);
    if (process.env.LOG_LEVEL === "debug" || process.env.LOG_LEVEL === "trace") console.error(reason);
    process.exitCode = EXIT.internal;
  });
}

/** The process entry (bin/smsblast.js, or this file run directly): every error ends as one line and an exit code. */
export async function main(argv: string[]): Promise<void> {
  ignoreClosedRedisConnections();
  try {
    await runCli(argv);
  } catch (error) {
    // A bug or an outage, not the user's mistake: one line, the stack only when asked for.
    console.error(`smsblast: internal error: ${error instanceof Error ? error.message : String(error)}`);
    if (process.env.LOG_LEVEL === "debug" || process.env.LOG_LEVEL === "trace") console.error(error);
    process.exitCode = EXIT.internal;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main(process.argv);
