import type { Command } from "commander";
import { importContactsFromCsv, importSuppressionsFromCsv } from "../../recipients/audience-import.ts";
import {
  listSegments,
  listSuppressions,
  saveSegment,
  suppressNumbers,
  unsuppressNumber,
} from "../../recipients/audience-lists.ts";
import { cliActor, recordAudit } from "../../access/audit-log.ts";
import { withServices } from "../../runtime/services.ts";
import { formatTable } from "../format.ts";
import { collectKeyValue, collectList, regionCode, wholeNumber } from "../shared.ts";

export function registerAudienceCommands(program: Command): void {
  const contacts = program.command("contacts").description("the database audience");
  contacts
    .command("import")
    .description(
      "upsert contacts from a CSV: the phone column, an optional `tags` column (separated by ; or |), every other column as an attribute",
    )
    .argument("<file>")
    .option("--tag <tag>", "tag every imported contact (repeatable, or comma-separated)", collectList, [])
    .option("--phone-column <column>", "header of the phone number column", "phone")
    .option("--region <code>", "default country for numbers without a country code", regionCode("--region"))
    .action(async (file: string, opts: { tag: string[]; phoneColumn: string; region?: string }) => {
      await withServices(async ({ config, db }) => {
        const report = await importContactsFromCsv(db, file, {
          phoneColumn: opts.phoneColumn,
          defaultRegion: opts.region ?? config.defaultRegion,
          tags: opts.tag,
          maxBytes: config.csvMaxBytes,
        });
        console.log(
          `${report.rows} rows: ${report.inserted} new contacts, ${report.updated} updated, ${report.rejects.length} rejected`,
        );
        printRejects(report.rejects);
      });
    });

  const segments = program.command("segments").description("saved audience queries");
  segments
    .command("add")
    .description("save (or replace) a segment: contacts with any of the tags and all of the attributes")
    .argument("<name>")
    .option("--tag <tag>", "contacts with this tag (repeatable; any of them matches)", collectList, [])
    .option(
      "--where <attribute=value>",
      "contacts whose attribute has this value (repeatable; all must match)",
      collectKeyValue,
      {},
    )
    .action(async (name: string, opts: { tag: string[]; where: Record<string, string> }) => {
      await withServices(async ({ db }) => {
        await saveSegment(db, { name, tags: opts.tag, attributes: opts.where });
        console.log(`segment "${name}" saved`);
      });
    });
  segments
    .command("list")
    .description("list saved segments with how many sendable contacts each matches")
    .action(async () => {
      await withServices(async ({ db }) => {
        const rows = await listSegments(db);
        console.log(
          formatTable([
            ["segment", "tags", "attributes", "contacts"],
            ...rows.map((s) => [s.name, s.tags.join(",") || "-", JSON.stringify(s.attributes), s.contacts]),
          ]),
        );
      });
    });

  const suppress = program
    .command("suppress")
    .description("the suppression list: numbers never texted by any campaign");
  suppress
    .command("remove")
    .description(
      "take a number off the suppression list (and clear its contact's opt-out): campaigns may text it again",
    )
    .argument("<phone>")
    .option("--region <code>", "default country for a number without a country code", regionCode("--region"))
    .action(async (phone: string, opts: { region?: string }) => {
      await withServices(async ({ config, db }) => {
        const removed = await unsuppressNumber(db, { phone, defaultRegion: opts.region ?? config.defaultRegion });
        await recordAudit(db, cliActor(), "suppression.remove", {
          details: { reason: removed.reason, suppressedAt: removed.createdAt.toISOString() },
        });
        console.log(
          `${removed.phone} removed from the suppression list (was: ${removed.reason}` +
            (removed.forgottenAt ? `; kept as a keyed hash since ${removed.forgottenAt.toISOString()}` : "") +
            ")",
        );
      });
    });
  suppress
    .command("add")
    .description("suppress numbers")
    .argument("<phones...>")
    .option("--reason <reason>", "why (kept with the entry)", "opt-out")
    .option("--region <code>", "default country for numbers without a country code", regionCode("--region"))
    .action(async (phones: string[], opts: { reason: string; region?: string }) => {
      await withServices(async ({ config, db }) => {
        const { added, given } = await suppressNumbers(db, {
          phones,
          reason: opts.reason,
          source: "cli",
          defaultRegion: opts.region ?? config.defaultRegion,
        });
        console.log(`${added} number(s) added to the suppression list (${given - added} already there)`);
      });
    });
  suppress
    .command("import")
    .description("suppress every number of a CSV's phone column")
    .argument("<file>")
    .option("--phone-column <column>", "header of the phone number column", "phone")
    .option("--reason <reason>", "why (kept with each entry)", "opt-out")
    .option("--region <code>", "default country for numbers without a country code", regionCode("--region"))
    .action(async (file: string, opts: { phoneColumn: string; reason: string; region?: string }) => {
      await withServices(async ({ config, db }) => {
        const report = await importSuppressionsFromCsv(db, file, {
          phoneColumn: opts.phoneColumn,
          defaultRegion: opts.region ?? config.defaultRegion,
          reason: opts.reason,
          maxBytes: config.csvMaxBytes,
        });
        console.log(`${report.rows} rows: ${report.added} numbers added, ${report.rejects.length} rejected`);
        printRejects(report.rejects);
      });
    });
  suppress
    .command("list")
    .description("list suppressed numbers, newest first")
    .option("--limit <n>", "how many", wholeNumber("--limit"), 100)
    .option("--offset <n>", "skip this many", wholeNumber("--offset"), 0)
    .action(async (opts: { limit: number; offset: number }) => {
      await withServices(async ({ db }) => {
        const { total, forgotten, entries } = await listSuppressions(db, opts);
        console.log(
          formatTable([
            ["phone", "reason", "source", "since"],
            ...entries.map((e) => [e.phone, e.reason, e.source ?? "", e.createdAt.toISOString()]),
          ]),
        );
        console.log(
          `${entries.length} of ${total}` +
            (forgotten > 0 ? `; and ${forgotten} forgotten number(s), suppressed as keyed hashes (never listed)` : ""),
        );
      });
    });
}

/** The first rejected rows of an import, on stderr. */
function printRejects(rejects: ReadonlyArray<{ rowNumber: number; raw: string; reason: string }>): void {
  for (const r of rejects.slice(0, 20)) console.error(`  row ${r.rowNumber}: ${JSON.stringify(r.raw)} ${r.reason}`);
}
