// Entry point of the HTTP API process (`smsblast serve`, or the `api` service of docker-compose).
import { startApiServer, type ApiServerOptions } from "../src/runtime/api-server.ts";
import { runIfMain, runUntilSignalled } from "./run-process.ts";

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

export const runApiProcess = (options: ApiServerOptions = {}) =>
  runUntilSignalled((config, log) =>
    startApiServer(config, log, { onFirstRunToken: printFirstRunToken, ...options }).then((server) => {
      console.log(`smsblast console and API on ${server.url}/ (API docs: ${server.url}/docs)`);
      return server;
    }),
  );

runIfMain(import.meta.url, () => runApiProcess());
