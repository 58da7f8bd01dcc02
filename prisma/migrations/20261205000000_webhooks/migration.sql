-- Outgoing webhooks (docs/webhooks.md). Expand only: nullable or defaulted columns, new tables, a trigger;
-- nothing existing is altered, renamed or dropped, so processes of the previous release keep working.

-- A token's webhook: where to POST, since when (a webhook gets only the events after it was set), and the
-- version of its signing key. The key itself is never stored: it is HMAC(WEBHOOK_SIGNING_SECRET, id:version),
-- and each `tokens webhook --url` bumps the version, so setting a webhook again rotates that token's key only.
ALTER TABLE "api_tokens" ADD COLUMN "webhook_url" TEXT;
ALTER TABLE "api_tokens" ADD COLUMN "webhook_set_at" TIMESTAMPTZ(3);
ALTER TABLE "api_tokens" ADD COLUMN "webhook_key_version" INTEGER NOT NULL DEFAULT 0;

-- The outbox: one row per campaign status change, written by the trigger below in the transaction that
-- changed the status, whichever code path did it (launch, worker, pause, resume, cancel, completion). The
-- dispatcher of `smsblast serve` fans each row out to the webhooks (fanned_out_at), once.
CREATE TABLE "campaign_events" (
    "id" BIGSERIAL NOT NULL,
    "campaign_id" UUID NOT NULL,
    "from_status" "CampaignStatus",
    "to_status" "CampaignStatus" NOT NULL,
    "reason" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT clock_timestamp(),
    "fanned_out_at" TIMESTAMPTZ(3),

    CONSTRAINT "campaign_events_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "campaign_events_campaign_id_fkey" FOREIGN KEY ("campaign_id") REFERENCES "campaigns"("id") ON DELETE CASCADE
);
CREATE INDEX "campaign_events_pending_idx" ON "campaign_events" ("id") WHERE "fanned_out_at" IS NULL;
CREATE INDEX "campaign_events_fanned_out_at_idx" ON "campaign_events" ("fanned_out_at");

-- One event for one token's webhook: attempts, when the next one is due (also the lease of an attempt in
-- flight), when it was delivered or given up, and the last answer (HTTP status, or why there was none).
CREATE TABLE "webhook_deliveries" (
    "id" BIGSERIAL NOT NULL,
    "event_id" BIGINT NOT NULL,
    "token_id" UUID NOT NULL,
    "campaign_id" UUID NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "delivered_at" TIMESTAMPTZ(3),
    "given_up_at" TIMESTAMPTZ(3),
    "last_attempt_at" TIMESTAMPTZ(3),
    "last_status" INTEGER,
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "webhook_deliveries_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "webhook_deliveries_event_id_fkey" FOREIGN KEY ("event_id") REFERENCES "campaign_events"("id") ON DELETE CASCADE,
    CONSTRAINT "webhook_deliveries_token_id_fkey" FOREIGN KEY ("token_id") REFERENCES "api_tokens"("id") ON DELETE CASCADE
);
-- One delivery per event and token, whatever happens to a fan-out.
CREATE UNIQUE INDEX "webhook_deliveries_event_id_token_id_key" ON "webhook_deliveries" ("event_id", "token_id");
-- The dispatcher's work list, and the per-(token, campaign) order check: open deliveries only.
CREATE INDEX "webhook_deliveries_due_idx" ON "webhook_deliveries" ("next_attempt_at")
    WHERE "delivered_at" IS NULL AND "given_up_at" IS NULL;
CREATE INDEX "webhook_deliveries_open_order_idx" ON "webhook_deliveries" ("token_id", "campaign_id", "event_id")
    WHERE "delivered_at" IS NULL AND "given_up_at" IS NULL;

CREATE FUNCTION "record_campaign_event"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO "campaign_events" ("campaign_id", "from_status", "to_status", "reason")
    VALUES (NEW."id", CASE WHEN TG_OP = 'UPDATE' THEN OLD."status" END, NEW."status", NEW."status_reason");
    RETURN NULL;
END
$$;

-- Every status change; the row lock of the UPDATE orders one campaign's events by id in commit order.
CREATE TRIGGER "campaigns_status_event" AFTER UPDATE OF "status" ON "campaigns"
    FOR EACH ROW WHEN (OLD."status" IS DISTINCT FROM NEW."status") EXECUTE FUNCTION "record_campaign_event"();
-- Campaigns are inserted as draft and moved on by an UPDATE; one inserted in any other status is an event too.
CREATE TRIGGER "campaigns_insert_event" AFTER INSERT ON "campaigns"
    FOR EACH ROW WHEN (NEW."status" <> 'draft') EXECUTE FUNCTION "record_campaign_event"();
