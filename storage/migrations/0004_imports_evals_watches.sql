-- What a dataset is: 'csv' (an uploaded table) or 'chat' (chat examples that carry the teacher's answers, from a
-- JSONL file or the provider's stored completions: its `answer` column holds them).
ALTER TABLE datasets ADD COLUMN kind TEXT NOT NULL DEFAULT 'csv' CHECK (kind IN ('csv', 'chat'));

-- A separate eval file: when set, the run's eval split is its rows instead of rows carved from the data.
ALTER TABLE runs ADD COLUMN eval_dataset_id INTEGER REFERENCES datasets(id);

-- `/distill eval NAME`: a finished run's teacher, base and distilled students on a new eval file, with its own
-- approval and report. Their answers are the run's completions under the split 'reeval<id>'.
CREATE TABLE reevals (
    id           INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    dataset_id   INTEGER NOT NULL REFERENCES datasets(id),
    filename     TEXT NOT NULL,
    shared_by    TEXT NOT NULL,
    approval_id  INTEGER REFERENCES approvals(id),
    state        TEXT NOT NULL DEFAULT 'shared' CHECK (state IN ('shared', 'running', 'done', 'failed')),
    report_json  TEXT NOT NULL DEFAULT '{}',
    error        TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX reevals_run ON reevals (run_id, id);

-- `/distill watch NAME`: every period, a sample of the distilled model's recent answers is scored against the
-- teacher's. The approval is a standing one: its amount is the monthly cap.
CREATE TABLE watches (
    id             INTEGER PRIMARY KEY,
    run_id         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    every_seconds  INTEGER NOT NULL,
    sample         INTEGER NOT NULL,
    metadata_json  TEXT NOT NULL DEFAULT '{}',
    alert_below    REAL,
    cap_micro_usd  INTEGER,  -- the monthly cap the team set (NULL: the most its periods can cost)
    dataset_id     INTEGER REFERENCES datasets(id),
    approval_id    INTEGER REFERENCES approvals(id),
    state          TEXT NOT NULL DEFAULT 'asked' CHECK (state IN ('asked', 'on', 'off')),
    next_due_at    TEXT,
    created_by     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX watches_state ON watches (state, next_due_at);

-- One period of a watch, claimed before its work starts so a restart neither skips nor repeats it.
CREATE TABLE watch_ticks (
    watch_id      INTEGER NOT NULL REFERENCES watches(id) ON DELETE CASCADE,
    number        INTEGER NOT NULL,
    due_at        TEXT NOT NULL,
    window_start  TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed')),
    result_json   TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (watch_id, number)
) WITHOUT ROWID;
