-- Room on each page for a recipient's next version: the send's outcome and then its delivery report each
-- rewrite the row, and with free space on the page those updates are HOT (no new primary-key entry, and the
-- page prunes the dead version itself, without VACUUM). Applies to pages written from now on.
ALTER TABLE "recipients" SET (fillfactor = 50);
