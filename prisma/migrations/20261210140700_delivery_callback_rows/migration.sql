-- Delivery callbacks stored ONE row per callback (README "Delivery reports"): `row` holds the callback's
-- status rows as a JSON array and `row_count` how many, so the receiver's insert on the request path is one
-- small row instead of a hundred rows with their index entries. The applier expands the array; when a
-- callback's events end differently (some applied, some waiting), it splits the row by outcome and campaign,
-- so counts stay per event (sum of row_count). A single-event row (`row` an object, row_count 1) is what
-- older receivers and reply (uplink) rows still store, and is applied the same way.
ALTER TABLE "delivery_events" ADD COLUMN "row_count" INTEGER NOT NULL DEFAULT 1;

-- The work list of callback rows: `received` is a new outcome, so an applier of the previous release
-- (which picks `pending` only) never takes an array row it would not understand.
CREATE INDEX "delivery_events_received_idx" ON "delivery_events"("next_attempt_at", "id") WHERE "outcome" = 'received';
