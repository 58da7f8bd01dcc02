-- The repeat guard (README "Repeat guard"): one row per campaign launched by hand, keyed by its launch
-- fingerprint. Later the HTTP API's Idempotency-Key lives here too: a repeated key returns the campaign of
-- its row, a repeated fingerprint is refused.

-- CreateTable
CREATE TABLE "launch_guards" (
    "campaign_id" UUID NOT NULL,
    "fingerprint" CHAR(64) NOT NULL,
    "idempotency_key" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "launch_guards_pkey" PRIMARY KEY ("campaign_id")
);

-- CreateIndex
CREATE UNIQUE INDEX "launch_guards_idempotency_key_key" ON "launch_guards"("idempotency_key");

-- CreateIndex
CREATE INDEX "launch_guards_fingerprint_created_at_idx" ON "launch_guards"("fingerprint", "created_at");

-- AddForeignKey
ALTER TABLE "launch_guards" ADD CONSTRAINT "launch_guards_campaign_id_fkey" FOREIGN KEY ("campaign_id") REFERENCES "campaigns"("id") ON DELETE CASCADE ON UPDATE CASCADE;
