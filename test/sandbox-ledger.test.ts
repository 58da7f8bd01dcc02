import { describe, expect, it } from "vitest";
import { SandboxLedger } from "../src/sandbox/ledger.ts";
import { TargetCounts } from "../src/sandbox/target-counts.ts";

// The ledger packs each number's count per API into one Map value: what it answers must be what three
// separate counters would.
describe("sandbox ledger", () => {
  it("counts each number per API and in all, and its duplicates across APIs once", () => {
    const ledger = new SandboxLedger();
    ledger.recordAccepted("messages", "+6591000001");
    ledger.recordAccepted("messages", "+6591000002");
    ledger.recordAccepted("legacy", "+6591000002"); // a duplicate through another API
    ledger.recordAccepted("custom", "+6591000002");
    ledger.recordAccepted("custom", "+6591000003");
    ledger.recordAccepted("custom", "+6591000003");

    expect(ledger.timesReceived("+6591000002")).toBe(3);
    expect(ledger.timesReceived("+6591000002", "legacy")).toBe(1);
    expect(ledger.timesReceived("+6591000003", "custom")).toBe(2);
    expect(ledger.timesReceived("+6591000003", "messages")).toBe(0);
    expect(ledger.timesReceived("+6599999999")).toBe(0);
    expect(ledger.sent()).toEqual({ "+6591000001": 1, "+6591000002": 3, "+6591000003": 2 });
    expect(ledger.sent("custom")).toEqual({ "+6591000002": 1, "+6591000003": 2 });
    expect(ledger.sent("legacy")).toEqual({ "+6591000002": 1 });
    expect(ledger.stats()).toMatchObject({
      accepted: { messages: 2, legacy: 1, custom: 3 },
      uniqueNumbers: 3,
      duplicates: 2,
    });
    expect(JSON.parse([...ledger.sentJsonChunks("messages", 1)].join(""))).toEqual({
      "+6591000001": 1,
      "+6591000002": 1,
    });

    ledger.reset();
    expect(ledger.sent()).toEqual({});
    expect(ledger.stats()).toMatchObject({ uniqueNumbers: 0, duplicates: 0 });
  });

  it("keeps counting one API past another's high count without the fields mixing", () => {
    const ledger = new SandboxLedger();
    for (let i = 0; i < 70_000; i++) ledger.recordAccepted("messages", "+6591000001");
    ledger.recordAccepted("legacy", "+6591000001");
    expect(ledger.timesReceived("+6591000001", "messages")).toBe(70_000);
    expect(ledger.timesReceived("+6591000001", "legacy")).toBe(1);
    expect(ledger.timesReceived("+6591000001", "custom")).toBe(0);
    expect(ledger.timesReceived("+6591000001")).toBe(70_001);
  });
});

describe("TargetCounts", () => {
  it("keeps numbers exactly as given (plus sign, leading zeros), other targets beside them, in insertion order", () => {
    const counts = new TargetCounts();
    const targets = [
      "+6591234567",
      "6591234567",
      "006591234567",
      "+1",
      "99999999999999",
      "+999999999999999",
      "a@b.example",
    ];
    targets.forEach((target, i) => counts.set(target, i + 1));
    for (const [i, target] of targets.entries()) expect(counts.get(target)).toBe(i + 1);
    expect(counts.get("+6591234568")).toBe(0);
    expect([...counts]).toEqual([
      ["+6591234567", 1],
      ["6591234567", 2],
      ["006591234567", 3],
      ["+1", 4],
      ["99999999999999", 5],
      // 15 digits and an e-mail address are kept as strings, after the numbers
      ["+999999999999999", 6],
      ["a@b.example", 7],
    ]);
  });

  it("grows past its first tables without losing or mixing a count", () => {
    const counts = new TargetCounts();
    for (let i = 0; i < 50_000; i++) counts.set(`+65${String(i).padStart(8, "0")}`, i);
    for (let i = 0; i < 50_000; i += 7) counts.set(`+65${String(i).padStart(8, "0")}`, i + 0.5 * 2);
    let n = 0;
    for (const [target, count] of counts) {
      const i = Number(target.slice(3));
      expect(count).toBe(i % 7 === 0 ? i + 1 : i);
      n += 1;
    }
    expect(n).toBe(50_000);
    counts.clear();
    expect([...counts]).toEqual([]);
  });
});
