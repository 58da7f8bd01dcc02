// Entry point of the HTTP API process (`smsblast serve` runs it and prints its address and first-run token; the bench runs it bare).
import { startApiServer, type ApiServerOptions } from "../src/runtime/api-server.ts";
import { runIfMain, runUntilSignalled } from "./run-process.ts";

/** `onListening` gets the address once the server listens (`smsblast serve` prints it for the person who started it). */
export const runApiProcess = (options: ApiServerOptions & { onListening?: (url: string) => void } = {}) =>
  runUntilSignalled((config, log) =>
    startApiServer(config, log, options).then((server) => {
      log.info({ url: server.url }, "console and API listening");
      options.onListening?.(server.url);
      return server;
    }),
  );

runIfMain(import.meta.url, () => runApiProcess());
