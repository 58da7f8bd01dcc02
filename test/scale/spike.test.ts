// The spike: one worker process on one host (its own network namespace) reaching PostgreSQL, Redis and
// the sandbox only through the host's relay. From inside the namespace this machine's 127.0.0.1 services
// are unreachable, so every byte the worker exchanged went through the relay; a small campaign over each
// platform is then checked against the ledger like every scale run.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { ScaleWorld } from "./harness.ts";

const execFileP = promisify(execFile);

describe("scale spike: one namespaced worker through the relay", () => {
  let world: ScaleWorld | undefined;
  afterEach(async () => {
    await world?.dispose();
    world = undefined;
  });

  it("reaches the services only through the relay, and sends both campaigns once each", async () => {
    world = await ScaleWorld.create("spike", { hosts: 1, workers: 1, recipients: 3_000, latencyMs: 100 });
    await world.start();
    const host = world.hosts[0]!;
    const [worker] = world.workersOn(host);
    expect(host.pids(), "the worker's pid is a process of the namespace").toContain(worker!.pid);

    // Inside the namespace, PostgreSQL's and Redis's loopback listeners do not exist.
    const probe = `const s = require("net").connect(Number(process.argv[1]), "127.0.0.1");
      s.on("connect", () => { console.log("connected"); s.destroy(); });
      s.on("error", (e) => console.log(e.code));`;
    for (const port of [5432, 6379]) {
      const [command, ...args] = [...host.launcher, process.execPath, "-e", probe, String(port)];
      const { stdout } = await execFileP(command, args);
      expect(stdout.trim(), `127.0.0.1:${port} from inside ${host.ns}`).toBe("ECONNREFUSED");
    }

    const results = await world.finish({ graceful: true });
    const relay = host.relay.snapshot();
    world.fleet.note(`spike: relay of ${host.name}: ${JSON.stringify(relay)}`);
    expect(relay.connections, "connections through the relay").toBeGreaterThanOrEqual(3);
    expect(relay.bytes).toBeGreaterThan(0);
    expect(results.map((r) => r.accepted)).toEqual([3_000, 3_000]);
  });
});
