-- One row: this database's deployment id, created by `smsblast migrate`. The default queue prefix is derived from
-- it, and an explicit QUEUE_PREFIX is claimed in Redis for it, so deployments sharing a Redis never take each
-- other's jobs (README "Two deployments, one Redis").
CREATE TABLE "deployment" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "singleton" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "deployment_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "deployment_singleton_check" CHECK ("singleton")
);

-- CreateIndex
CREATE UNIQUE INDEX "deployment_singleton_key" ON "deployment"("singleton");

INSERT INTO "deployment" DEFAULT VALUES;
