// Entry point of a delivery-reports worker (`smsblast delivery-worker`): applies stored callback events in bulk.
import { startDeliveryWorker } from "../src/runtime/delivery-worker-runtime.ts";
import { runIfMain, runUntilSignalled } from "./run-process.ts";

export const runDeliveryWorkerProcess = () => runUntilSignalled((config, log) => startDeliveryWorker(config, log));

runIfMain(import.meta.url, runDeliveryWorkerProcess);
