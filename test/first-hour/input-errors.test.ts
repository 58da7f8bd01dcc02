import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEnv, runCli } from "../helpers/cli.ts";
import { createTestEnv, singaporeNumbers, type TestEnv } from "../helpers/test-env.ts";

// Issue 13.9 and 13.10: spreadsheet exports and silent surprises, through the CLI as a user runs it.
describe("clear input errors", { timeout: 240_000 }, () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("input-errors");
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  const send = (file: string, ...extra: string[]) =>
    runCli(["send", file, "--template", "1", "--no-template-check", "--allow-repeat", ...extra], cliEnv(env));
  const rejectsOf = async (campaignId: string) =>
    (
      await env.db.pool.query<{ row_number: number; raw_value: string; reason: string }>(
        `SELECT row_number, raw_value, reason FROM rejects WHERE campaign_id = $1 ORDER BY row_number`,
        [campaignId],
      )
    ).rows.map((r) => [r.row_number, r.raw_value, r.reason]);

  it("Excel's exports: sep= line, an apostrophe-marked number, scientific notation, national numbers without a region", async () => {
    const [a, b] = singaporeNumbers(2, 60_000);
    const file = await env.writeCsv(
      "excel.csv",
      [
        "sep=;",
        "phone;name",
        `${a};A`,
        `'${b};B`,
        "6.59123E+09;C",
        "81230001;D",
        "81230002;E",
        "81230003;F",
        "81230004;G",
      ].join("\r\n") + "\r\n",
    );
    const sent = await send(file);
    expect(sent.code, sent.output).toBe(0);
    const campaignId = sent.stdout.trim();
    const recipients = await env.db.prisma.recipient.findMany({ where: { campaignId }, orderBy: { rowNumber: "asc" } });
    expect(recipients.map((r) => [r.rowNumber, r.phone])).toEqual([
      [2, a],
      [3, b],
    ]);
    const rejects = await rejectsOf(campaignId);
    expect(rejects[0]).toEqual([
      4,
      "6.59123E+09",
      "number in scientific notation (6.59123E+09): the spreadsheet stored it as a number and lost digits; format the phone column as Text and export again",
    ]);
    expect(rejects.slice(1).map((r) => r[2])).toEqual(
      Array(4).fill(
        "no country code and no region: write the number with + and its country code, or set --region or a country column",
      ),
    );
    // Said once in the summary, since most rows failed that way.
    expect(sent.stderr.match(/note: /g)).toHaveLength(1);
    expect(sent.stderr).toContain(
      "note: 4 of 7 rows have numbers without a country code: if they are national numbers, send again with --region (e.g. --region SG) or a country column (--country-column)",
    );

    // DEFAULT_REGION in lower case is accepted as --region sg is, and reads the national numbers.
    const withRegion = await runCli(
      ["send", file, "--template", "1", "--no-template-check", "--allow-repeat"],
      cliEnv(env, { DEFAULT_REGION: "sg" }),
    );
    expect(withRegion.code, withRegion.output).toBe(0);
    expect(await env.db.prisma.recipient.count({ where: { campaignId: withRegion.stdout.trim() } })).toBe(6);
    expect(withRegion.stderr).not.toContain("note:");
  });

  it("a ragged row names the real field counts, even in the first chunk", async () => {
    const [a, b] = singaporeNumbers(2, 61_000);
    const result = await send(await env.writeCsv("ragged.csv", `phone,name\n${a},A\n${b},B,extra\n`));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/row 3: 3 fields but the header has 2 \(fields are separated by ","/);
    expect(await env.db.prisma.campaign.count({ where: { name: { startsWith: "ragged.csv" } } })).toBe(0);
  });

  it("an empty mapped cell is a reject naming the variable, unless --allow-empty", async () => {
    const [a, b, c] = singaporeNumbers(3, 62_000);
    const file = await env.writeCsv("orders.csv", `phone,code\n${a},A1\n${b},\n${c},C3\n`);
    const strict = await send(file, "--map", "order=code");
    expect(strict.code, strict.output).toBe(0);
    expect(await rejectsOf(strict.stdout.trim())).toEqual([[3, b, 'no value for order (column "code" is empty)']]);

    const allowed = await send(file, "--map", "order=code", "--allow-empty", "order");
    expect(allowed.code, allowed.output).toBe(0);
    expect(await env.db.prisma.recipient.count({ where: { campaignId: allowed.stdout.trim() } })).toBe(3);

    const unmapped = await send(file, "--map", "order=code", "--allow-empty", "name");
    expect(unmapped.code).toBe(1);
    expect(unmapped.stderr).toContain('--allow-empty name: "name" is not mapped to a column (--map name=<column>)');
  });

  it("the same variable given twice is an error naming it, and nothing is stored", async () => {
    const before = await env.db.prisma.campaign.count();
    const file = await env.writeCsv("twice.csv", `phone,code\n${singaporeNumbers(1, 63_000)[0]},A\n`);
    const paramTwice = await send(file, "--param", "order=A", "--param", "order=B");
    expect(paramTwice.code).toBe(1);
    expect(paramTwice.stderr).toContain('"order" is given twice (order=A and order=B); keep one');
    const paramAndMap = await send(file, "--param", "order=A", "--map", "order=code");
    expect(paramAndMap.code).toBe(1);
    expect(paramAndMap.stderr).toContain(
      'template variable "order" is given twice: as a fixed param (order=A) and mapped to column "code"; keep one',
    );
    expect(paramAndMap.stderr).not.toMatch(/\n\s+at /);
    expect(await env.db.prisma.campaign.count()).toBe(before);
  });

  it("segments list counts as sendable only contacts a campaign would send to", async () => {
    const numbers = singaporeNumbers(4, 64_000);
    // Suppressed first, imported as contacts afterwards: still suppressed.
    const suppressed = await runCli(["suppress", "add", numbers[0]!, "--reason", "stop"], cliEnv(env));
    expect(suppressed.code, suppressed.output).toBe(0);
    const contacts = await env.writeCsv("contacts.csv", `phone\n${numbers.join("\n")}\n`);
    expect((await runCli(["contacts", "import", contacts, "--tag", "vip"], cliEnv(env))).code).toBe(0);
    expect((await runCli(["segments", "add", "vips", "--tag", "vip"], cliEnv(env))).code).toBe(0);
    const listed = await runCli(["segments", "list"], cliEnv(env));
    expect(listed.code, listed.output).toBe(0);
    expect(listed.stdout).toMatch(/vips\s+vip\s+\{\}\s+3\b/);
    const sent = await runCli(
      ["send", "--audience", "vips", "--template", "1", "--no-template-check", "--dry-run"],
      cliEnv(env),
    );
    expect(sent.stderr).toContain("would store 3 recipients");
  });

  it("--region is upper-cased for suppress and send-one, and an unknown code is refused naming the option", async () => {
    const national = singaporeNumbers(1, 65_000)[0]!.slice(3);
    const added = await runCli(["suppress", "add", national, "--region", "sg", "--reason", "stop"], cliEnv(env));
    expect(added.code, added.output).toBe(0);
    expect(await env.db.prisma.suppression.count({ where: { phone: `+65${national}` } })).toBe(1);
    for (const args of [
      ["suppress", "add", national, "--region", "XX"],
      ["send-one", national, "--template", "1", "--region", "singapore"],
    ]) {
      const refused = await runCli(args, cliEnv(env));
      expect(refused.code, refused.output).not.toBe(0);
      expect(refused.stderr).toContain("--region must be a two-letter ISO country code such as SG");
      expect(refused.stderr).not.toMatch(/\n\s+at /);
    }
    // send-one with a lower-case region reaches the provider with the E.164 number (not a parse error).
    const sent = await runCli(["send-one", national, "--template", "1", "--region", "sg"], cliEnv(env));
    expect(sent.output).not.toContain("not a valid phone number");
    expect(sent.output).toMatch(/suppress/i);
  });
});
