-- AlterTable
ALTER TABLE "campaigns" ADD COLUMN     "run_key" TEXT,
ADD COLUMN     "scheduled_at" TIMESTAMPTZ(3);

-- CreateTable
CREATE TABLE "schedules" (
    "name" TEXT NOT NULL,
    "cron" TEXT NOT NULL,
    "timezone" TEXT NOT NULL,
    "audience" TEXT NOT NULL,
    "template_id" TEXT NOT NULL,
    "params" JSONB NOT NULL DEFAULT '{}',
    "param_columns" JSONB NOT NULL DEFAULT '{}',
    "provider" "ProviderApi" NOT NULL DEFAULT 'messages',
    "send_options" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_run_at" TIMESTAMPTZ(3),

    CONSTRAINT "schedules_pkey" PRIMARY KEY ("name")
);

-- CreateIndex
CREATE UNIQUE INDEX "campaigns_run_key_key" ON "campaigns"("run_key");

