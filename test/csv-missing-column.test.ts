import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CsvInputError } from "../src/recipients/csv-source.ts";
import { csvOf, createTestEnv, type TestEnv } from "./helpers/test-env.ts";
import { launchCampaign } from "./helpers/campaign-runner.ts";

describe("a CSV the producer cannot use", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("csvbad");
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it("without the phone column: names the column and the columns found, and leaves no campaign behind", async () => {
    const file = await env.writeCsv("nophone.csv", csvOf(["Name", "Mobile Number"], [["a", "+6581234567"]]));
    const error = await launchCampaign(env, { file }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CsvInputError);
    expect((error as Error).message).toContain('no "phone" column');
    expect((error as Error).message).toContain('"Name", "Mobile Number"');
    expect(await env.db.prisma.campaign.count()).toBe(0);
    expect(await env.db.prisma.recipient.count()).toBe(0);
  });

  it("finds the phone column case-insensitively with --phone-column", async () => {
    const file = await env.writeCsv("mobile.csv", csvOf(["Name", " Mobile Number "], [["a", "+6581234567"]]));
    const campaign = await launchCampaign(env, { file, phoneColumn: "mobile number" });
    expect(campaign.recipientCount).toBe(1);
  });

  it("with a malformed row late in the file: the error names the line and nothing is stored", async () => {
    const before = await env.db.prisma.campaign.count();
    const recipientsBefore = await env.db.prisma.recipient.count();
    const rows = Array.from({ length: 5_000 }, (_, i) => `+65${80_000_000 + i}`);
    const file = await env.writeCsv("broken.csv", `phone\n${rows.join("\n")}\n"+6589999999\n`);
    const error = await launchCampaign(env, { file }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CsvInputError);
    expect((error as Error).message).toMatch(/line \d+/);
    expect(await env.db.prisma.campaign.count()).toBe(before);
    expect(await env.db.prisma.recipient.count()).toBe(recipientsBefore);
  });
});
