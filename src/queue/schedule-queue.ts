import type { RedisConnection } from "./redis.ts";
import { Queue, Worker, type Job } from "bullmq";

export const SCHEDULE_QUEUE_NAME = "schedules";
export const RUN_SCHEDULE_JOB_NAME = "run-schedule";

export interface ScheduleJobData {
  schedule: string;
}

export function createScheduleQueue(connection: RedisConnection, prefix: string): Queue<ScheduleJobData> {
  return new Queue<ScheduleJobData>(SCHEDULE_QUEUE_NAME, {
    connection,
    prefix,
    defaultJobOptions: { removeOnComplete: { count: 1_000 }, removeOnFail: { count: 1_000 } },
  });
}

/**
 * One BullMQ job scheduler per schedule (id = schedule name). Upserting is idempotent, so every scheduler
 * process may do it at start-up; BullMQ creates exactly one job per firing whatever the number of processes.
 */
export async function upsertCronScheduler(
  queue: Queue<ScheduleJobData>,
  name: string,
  cron: string,
  timezone: string,
): Promise<void> {
  await queue.upsertJobScheduler(
    name,
    { pattern: cron, tz: timezone },
    { name: RUN_SCHEDULE_JOB_NAME, data: { schedule: name } },
  );
}

export async function removeCronScheduler(queue: Queue<ScheduleJobData>, name: string): Promise<boolean> {
  return queue.removeJobScheduler(name);
}

/** Next firing time of each scheduler known to Redis, by schedule name. */
export async function nextFirings(queue: Queue<ScheduleJobData>): Promise<Map<string, Date>> {
  const schedulers = await queue.getJobSchedulers(0, -1, true);
  return new Map(schedulers.filter((s) => s.next).map((s) => [s.key, new Date(s.next!)]));
}

export function createScheduleWorker(
  connection: RedisConnection,
  prefix: string,
  run: (schedule: string, firingId: string) => Promise<unknown>,
): Worker<ScheduleJobData> {
  return new Worker<ScheduleJobData>(
    SCHEDULE_QUEUE_NAME,
    // The job id is unique per firing (BullMQ derives it from the scheduler and the firing time).
    async (job: Job<ScheduleJobData>) => run(job.data.schedule, String(job.id)),
    { connection, prefix, concurrency: 1, autorun: false },
  );
}
