// Entry point of a send worker process (`smsblast worker`, or `docker compose up --scale worker=N`).
import { startSendWorker } from "../src/runtime/send-worker-runtime.ts";
import { runIfMain, runUntilSignalled } from "./run-process.ts";

export const runSendWorkerProcess = () => runUntilSignalled(startSendWorker);

runIfMain(import.meta.url, runSendWorkerProcess);
