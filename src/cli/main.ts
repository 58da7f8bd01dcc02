#!/usr/bin/env node
import { Command, InvalidArgumentError } from "commander";
import { ConfigError } from "../config/config.ts";
import { CampaignNotFoundError } from "../campaigns/campaign-status.ts";
import { RecipientInputError } from "../campaigns/send-one.ts";
import { TemplatePreflightError } from "../campaigns/template-preflight.ts";
import { ProviderError, ProviderRequestError } from "../engagelab/errors.ts";
import { createTemplatesApi, TemplateNotFoundError } from "../engagelab/templates-api.ts";
import { CsvInputError } from "../recipients/csv-source.ts";
import { AudienceError } from "../store/audience-repository.ts";
import { CampaignStateError } from "../model/campaign-state.ts";
import { MigrationError } from "../store/migrate.ts";
import { loadConfig } from "../config/config.ts";
import { registerAudienceCommands } from "./commands/audience-commands.ts";
import { registerCampaignCommands } from "./commands/campaign-commands.ts";
import { registerServiceCommands } from "./commands/service-commands.ts";
import { registerScheduleCommands } from "./commands/schedule-commands.ts";
import { ScheduleError } from "../campaigns/recurring-campaigns.ts";
import { registerTemplateCommands } from "./templates-command.ts";

/** Errors a user can fix; printed as one clear line, without a stack trace. */
const USER_ERRORS = [
  AudienceError,
  CampaignNotFoundError,
  CampaignStateError,
  ConfigError,
  CsvInputError,
  InvalidArgumentError,
  MigrationError,
  ProviderError,
  ProviderRequestError,
  RecipientInputError,
  ScheduleError,
  TemplateNotFoundError,
  TemplatePreflightError,
];

export function buildCli(): Command {
  const program = new Command("smsblast")
    .description("Queue-backed bulk SMS campaigns for the EngageLab SMS API")
    .showHelpAfterError();
  registerServiceCommands(program);
  registerCampaignCommands(program);
  registerAudienceCommands(program);
  registerScheduleCommands(program);
  registerTemplateCommands(program, async () => createTemplatesApi(loadConfig()));
  return program;
}

export async function runCli(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (error) {
    if (USER_ERRORS.some((type) => error instanceof type)) {
      console.error(`smsblast: ${(error as Error).message}`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await runCli(process.argv);
}
