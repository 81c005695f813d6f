-- Hidden reasoning is billed as output; the provider reports it per answer
-- (usage.completion_tokens_details.reasoning_tokens), inside completion_tokens.
ALTER TABLE completions ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;

-- A pilot: the teacher answers a run's first train rows (answers the run keeps), and what its reasoning measured,
-- so a quote can expect that many reasoning tokens per answer instead of only bounding them.
CREATE TABLE pilots (
    id                      INTEGER PRIMARY KEY,
    run_id                  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    model                   TEXT NOT NULL,
    effort                  TEXT,
    max_completion_tokens   INTEGER NOT NULL,
    rows                    INTEGER NOT NULL,
    answered                INTEGER NOT NULL,
    cut_off                 INTEGER NOT NULL,
    mean_reasoning_tokens   REAL NOT NULL,
    p90_reasoning_tokens    INTEGER NOT NULL,
    max_reasoning_tokens    INTEGER NOT NULL,
    mean_completion_tokens  REAL NOT NULL,
    cost_micro_usd          INTEGER NOT NULL,
    created_at              TEXT NOT NULL
);
CREATE INDEX pilots_run ON pilots (run_id, id);
