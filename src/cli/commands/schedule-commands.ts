import { Option, type Command } from "commander";
import { addSchedule, listSchedules, removeSchedule } from "../../campaigns/recurring-campaigns.ts";
import { openTemplates, withScheduler, withServices } from "../../runtime/services.ts";
import { formatTable } from "../format.ts";
import { collectKeyValue } from "../shared.ts";
import { PROVIDER_APIS, type ProviderApi } from "../../model/states.ts";

export function registerScheduleCommands(program: Command): void {
  program
    .command("scheduler")
    .description("run the scheduler process: each firing of a recurring schedule creates a campaign run")
    .action(async () => {
      const { runSchedulerProcess } = await import("../../../workers/scheduler.ts");
      await runSchedulerProcess();
    });

  const schedule = program.command("schedule").description("recurring campaigns from a database audience");
  schedule
    .command("add")
    .description("create or replace a recurring campaign")
    .argument("<name>")
    .requiredOption("--cron <pattern>", 'cron pattern, 5 fields (or 6 with seconds), e.g. "0 9 * * MON"')
    .option("--tz <zone>", "IANA time zone of the pattern", "UTC")
    .requiredOption(
      "--audience <tag-or-segment>",
      "contacts with this tag, or matching this saved segment, at each firing",
    )
    .requiredOption("-t, --template <id>", "EngageLab template id")
    .option("-p, --param <key=value>", "template parameter for every recipient (repeatable)", collectKeyValue, {})
    .option(
      "-m, --map <variable=attribute>",
      "template variable from a contact attribute (repeatable)",
      collectKeyValue,
      {},
    )
    .addOption(new Option("--provider <api>", "EngageLab send API").choices(PROVIDER_APIS).default("messages"))
    .option("--no-template-check", "skip the template pre-flight, now and at every firing")
    .action(
      async (
        name: string,
        opts: {
          cron: string;
          tz: string;
          audience: string;
          template: string;
          param: Record<string, string>;
          map: Record<string, string>;
          provider: ProviderApi;
          templateCheck: boolean;
        },
      ) => {
        await withServices(async ({ config, db }) => {
          const templates = openTemplates(config);
          try {
            const next = await withScheduler({ config, db }, (scheduler) =>
              addSchedule(
                { db, scheduler, templates: templates.api, legacyVarMaxChars: config.send.legacyVarMaxChars },
                {
                  name,
                  cron: opts.cron,
                  timezone: opts.tz,
                  audience: opts.audience,
                  templateId: opts.template,
                  params: opts.param,
                  paramColumns: opts.map,
                  provider: opts.provider,
                  sendOptions: {},
                  templateCheck: opts.templateCheck,
                },
              ),
            );
            console.log(
              `schedule "${name}" saved; next run ${next.toISOString()} (a running \`smsblast scheduler\` fires it)`,
            );
          } finally {
            await templates.close();
          }
        });
      },
    );

  schedule
    .command("list")
    .description("list recurring campaigns with their next and last run")
    .action(async () => {
      await withServices(async ({ config, db }) => {
        const schedules = await withScheduler({ config, db }, (scheduler) => listSchedules({ db, scheduler }));
        console.log(
          formatTable([
            ["name", "cron", "tz", "audience", "template", "provider", "next run", "last run"],
            ...schedules.map((s) => [
              s.name,
              s.cron,
              s.timezone,
              s.audience,
              s.templateId,
              s.provider,
              s.nextRunAt?.toISOString() ?? "-",
              s.lastRunAt?.toISOString() ?? "-",
            ]),
          ]),
        );
      });
    });

  schedule
    .command("remove")
    .description("stop a recurring campaign (campaigns it already created are not touched)")
    .argument("<name>")
    .action(async (name: string) => {
      await withServices(async ({ config, db }) => {
        await withScheduler({ config, db }, (scheduler) => removeSchedule({ db, scheduler }, name));
        console.log(`schedule "${name}" removed`);
      });
    });
}
