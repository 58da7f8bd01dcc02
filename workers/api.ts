// Entry point of the HTTP API process (`smsblast serve`, or the `api` service of docker-compose).
import { startApiServer, type ApiServerOptions } from "../src/runtime/api-server.ts";
import { runIfMain, runUntilSignalled } from "./run-process.ts";

export const runApiProcess = (options: ApiServerOptions = {}) =>
  runUntilSignalled((config, log) => startApiServer(config, log, options));

runIfMain(import.meta.url, () => runApiProcess());
