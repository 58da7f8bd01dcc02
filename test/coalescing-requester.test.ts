// The receiver's apply requests (src/queue/delivery-queue.ts coalescingRequester): a few per second reach
// Redis, and every callback is still covered by a request made after its rows were stored.
import { describe, expect, it } from "vitest";
import { coalescingRequester } from "../src/queue/delivery-queue.ts";

/** A request function whose calls are answered by hand; records when each started. */
function manualRequests() {
  const started: number[] = [];
  const answers: (() => void)[] = [];
  let clock = 0;
  return {
    started,
    tick: () => ++clock,
    request: () => {
      started.push(++clock);
      return new Promise<void>((resolve) => answers.push(resolve));
    },
    answerNext: async () => {
      answers.shift()?.();
      // let the follower start
      for (let i = 0; i < 5; i++) await Promise.resolve();
    },
  };
}

describe("coalescingRequester", () => {
  it("sends one request, and one more for everything that came while it was out", async () => {
    const fake = manualRequests();
    const request = coalescingRequester(fake.request);
    const first = request();
    const calledAt: number[] = [];
    const followers = Array.from({ length: 100 }, () => {
      calledAt.push(fake.tick());
      return request();
    });
    expect(fake.started).toHaveLength(1);
    await fake.answerNext();
    await first;
    expect(fake.started).toHaveLength(2);
    // every follower's request started after the follower asked
    expect(fake.started[1]!).toBeGreaterThan(Math.max(...calledAt));
    await fake.answerNext();
    await Promise.all(followers);
    expect(fake.started).toHaveLength(2);
    // idle again: the next call goes out at once
    void request();
    expect(fake.started).toHaveLength(3);
    await fake.answerNext();
  });

  it("a failed request does not stop the one after it; the caller of the failed one sees the error", async () => {
    let calls = 0;
    const request = coalescingRequester(() => {
      calls += 1;
      return calls === 1 ? Promise.reject(new Error("redis down")) : Promise.resolve();
    });
    const first = request();
    const second = request();
    await expect(first).rejects.toThrow("redis down");
    await expect(second).resolves.toBeUndefined();
    expect(calls).toBe(2);
  });
});
