-- The repeat guard (README "Repeat guard"): one row per campaign launched by hand, with its launch
-- fingerprint; a launch looks up the same fingerprint within the window under an advisory lock on it.

-- CreateTable
CREATE TABLE "launch_guards" (
    "campaign_id" UUID NOT NULL,
    "fingerprint" CHAR(64) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "launch_guards_pkey" PRIMARY KEY ("campaign_id")
);

-- CreateIndex
CREATE INDEX "launch_guards_fingerprint_created_at_idx" ON "launch_guards"("fingerprint", "created_at");

-- AddForeignKey
ALTER TABLE "launch_guards" ADD CONSTRAINT "launch_guards_campaign_id_fkey" FOREIGN KEY ("campaign_id") REFERENCES "campaigns"("id") ON DELETE CASCADE ON UPDATE CASCADE;
