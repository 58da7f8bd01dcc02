// Entry point of the scheduler process (`smsblast scheduler`): turns cron firings into campaign runs.
import { startScheduler } from "../src/runtime/scheduler-runtime.ts";
import { runIfMain, runUntilSignalled } from "./run-process.ts";

export const runSchedulerProcess = () => runUntilSignalled(startScheduler);

runIfMain(import.meta.url, runSchedulerProcess);
