-- Recording a batch the provider accepted whole no longer rewrites its recipients' rows: a recipient of a
-- `sent` batch whose row still says `pending` was accepted with it (src/store/recipient-state.ts). This view
-- shows every recipient with that state, for ad-hoc queries (`SELECT state, count(*) FROM recipient_outcomes
-- WHERE campaign_id = … GROUP BY 1`); the application builds the same CASE into its own statements. It
-- joins per recipient: for counts over a big campaign, count per batch first as recipient-state.ts does.
-- A later migration that changes a column it names must drop and re-create it.
CREATE VIEW "recipient_outcomes" AS
SELECT r.campaign_id, r.batch_sequence, r.phone, r.row_number, r.params,
       CASE WHEN r.state = 'pending' AND b.state = 'sent' THEN 'accepted'::"RecipientState" ELSE r.state END AS state,
       r.sms_id, r.message_id, r.send_channel, r.failure_code, r.failure_message, r.delivered_at, r.reported_at,
       r.delivery_error_code, r.delivery_error_message, r.cost, r.currency, r.updated_at
FROM recipients r
LEFT JOIN batches b ON b.campaign_id = r.campaign_id AND b.sequence = r.batch_sequence;
