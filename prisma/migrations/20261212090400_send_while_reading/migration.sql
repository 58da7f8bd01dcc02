-- A launch that sends while it reads its list (`smsblast send --stream`, campaign-repository.ts
-- launchWhileReading) commits its recipients and batches in steps. Until its last step, reading_heartbeat_at
-- holds the time of its latest step: the campaign cannot complete while it is set, and the reconciler cancels
-- a campaign whose heartbeat went stale (its producer died part-way through the list).
ALTER TABLE "campaigns" ADD COLUMN "reading_heartbeat_at" TIMESTAMPTZ(3);

-- Such a launch is guarded before its first batch by the file's bytes (file_fingerprint); the order-free
-- fingerprint of its recipients exists only once the whole list is read, so it is NULL until then.
ALTER TABLE "launch_guards" ADD COLUMN "file_fingerprint" CHAR(64);
ALTER TABLE "launch_guards" ALTER COLUMN "fingerprint" DROP NOT NULL;
CREATE INDEX "launch_guards_file_fingerprint_created_at_idx" ON "launch_guards"("file_fingerprint", "created_at");
