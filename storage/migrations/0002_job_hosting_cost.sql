-- What hosting a fine-tuned model for its eval cost (a dedicated endpoint billed by the minute), kept apart from
-- the training cost so each can be compared with its quote.
ALTER TABLE jobs ADD COLUMN hosting_micro_usd INTEGER NOT NULL DEFAULT 0;
