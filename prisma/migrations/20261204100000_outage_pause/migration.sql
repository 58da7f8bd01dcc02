-- Expand only: why a campaign is paused, since when, and how often it resumed by itself after a provider outage
-- (README "Campaign lifecycle"). NULL pause_kind: paused before this migration, treated like a user's pause.
ALTER TABLE "campaigns" ADD COLUMN "pause_kind" TEXT,
ADD COLUMN "paused_at" TIMESTAMPTZ(3),
ADD COLUMN "auto_resumes" INTEGER NOT NULL DEFAULT 0;
