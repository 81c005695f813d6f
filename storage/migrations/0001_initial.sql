-- Initial schema. Times are ISO-8601 UTC text; money is integer micro-dollars (1 USD = 1,000,000).

CREATE TABLE datasets (
    id            INTEGER PRIMARY KEY,
    sha256        TEXT NOT NULL UNIQUE,
    filename      TEXT NOT NULL,
    size_bytes    INTEGER NOT NULL,
    encoding      TEXT NOT NULL,
    delimiter     TEXT NOT NULL,
    columns_json  TEXT NOT NULL,
    row_count     INTEGER NOT NULL,
    profile_json  TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL
);

-- One row of the CSV; row_index is its 0-based position among the data rows of the file.
CREATE TABLE dataset_rows (
    dataset_id  INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    row_index   INTEGER NOT NULL,
    data_json   TEXT NOT NULL,
    PRIMARY KEY (dataset_id, row_index)
) WITHOUT ROWID;

CREATE TABLE runs (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL,
    channel_id       TEXT NOT NULL,
    thread_ts        TEXT,
    card_ts          TEXT,
    requester        TEXT NOT NULL,
    dataset_id       INTEGER REFERENCES datasets(id),
    spec_json        TEXT NOT NULL DEFAULT '{}',
    state            TEXT NOT NULL DEFAULT 'created',
    state_before     TEXT,
    error            TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (channel_id, name)
);

-- Which dataset rows a run uses, in which split; input_hash is the sha256 of the normalized rendered input.
CREATE TABLE run_rows (
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    split       TEXT NOT NULL CHECK (split IN ('train', 'validation', 'eval')),
    row_index   INTEGER NOT NULL,
    input_hash  TEXT NOT NULL,
    gold_label  TEXT,
    PRIMARY KEY (run_id, row_index)
) WITHOUT ROWID;
CREATE INDEX run_rows_split ON run_rows (run_id, split);

-- One stored answer per (run, split, role, row). request_hash = sha256(model + messages + response format):
-- an identical request answered before (in any run) is reused instead of paid again.
CREATE TABLE completions (
    id                      INTEGER PRIMARY KEY,
    run_id                  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    row_index               INTEGER NOT NULL,
    split                   TEXT NOT NULL,
    role                    TEXT NOT NULL,
    model                   TEXT NOT NULL,
    request_hash            TEXT NOT NULL,
    status                  TEXT NOT NULL CHECK (status IN ('ok', 'invalid', 'failed')),
    raw_output              TEXT,
    parsed_label            TEXT,
    prompt_tokens           INTEGER NOT NULL DEFAULT 0,
    completion_tokens       INTEGER NOT NULL DEFAULT 0,
    cost_micro_usd          INTEGER NOT NULL DEFAULT 0,
    latency_ms              INTEGER,
    provider_request_id     TEXT,
    provider_completion_id  TEXT,
    attempts                INTEGER NOT NULL DEFAULT 1,
    error                   TEXT,
    reused_from             INTEGER REFERENCES completions(id),
    created_at              TEXT NOT NULL,
    UNIQUE (run_id, split, role, row_index)
);
CREATE INDEX completions_request_hash ON completions (request_hash, status);

CREATE TABLE approvals (
    id                INTEGER PRIMARY KEY,
    run_id            INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    stage             TEXT NOT NULL,
    quote_hash        TEXT NOT NULL,
    amount_micro_usd  INTEGER NOT NULL,
    quote_json        TEXT NOT NULL,
    requester         TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'approved', 'rejected', 'voided', 'expired')),
    auto_approved     INTEGER NOT NULL DEFAULT 0,
    message_ts        TEXT,
    created_at        TEXT NOT NULL,
    expires_at        TEXT NOT NULL,
    decided_at        TEXT
);
CREATE INDEX approvals_run ON approvals (run_id, stage, status);

CREATE TABLE approval_decisions (
    approval_id  INTEGER NOT NULL REFERENCES approvals(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL,
    decision     TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    created_at   TEXT NOT NULL,
    PRIMARY KEY (approval_id, user_id)
) WITHOUT ROWID;

-- A training job at a trainer (OpenAI fine-tuning, Together, ...); event_cursor is the id of the last
-- event already posted to the thread, so a restart does not post it again.
CREATE TABLE jobs (
    id                  INTEGER PRIMARY KEY,
    run_id              INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    trainer             TEXT NOT NULL,
    idempotency_key     TEXT NOT NULL UNIQUE,
    external_id         TEXT,
    base_model          TEXT NOT NULL,
    training_file_id    TEXT,
    validation_file_id  TEXT,
    status              TEXT NOT NULL DEFAULT 'PREPARING',
    raw_status          TEXT,
    fine_tuned_model    TEXT,
    endpoint_id         TEXT,
    trained_tokens      INTEGER,
    quote_micro_usd     INTEGER,
    cost_micro_usd      INTEGER,
    event_cursor        TEXT,
    error               TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    finished_at         TEXT
);
CREATE INDEX jobs_status ON jobs (status);

-- A Batch API collection (50% discount); polled by the scheduler like a job.
CREATE TABLE batches (
    id              INTEGER PRIMARY KEY,
    run_id          INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    split           TEXT NOT NULL,
    role            TEXT NOT NULL,
    model           TEXT NOT NULL,
    external_id     TEXT,
    input_file_id   TEXT,
    output_file_id  TEXT,
    error_file_id   TEXT,
    status          TEXT NOT NULL DEFAULT 'preparing',
    error           TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX batches_status ON batches (status);

CREATE TABLE evals (
    id            INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    role          TEXT NOT NULL,
    model         TEXT NOT NULL,
    metrics_json  TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX evals_run ON evals (run_id);

-- Messages that must reach a thread exactly once (a milestone, a report); key names the message.
CREATE TABLE notices (
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    message_ts  TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY,
    run_id       INTEGER REFERENCES runs(id) ON DELETE CASCADE,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    detail_json  TEXT NOT NULL DEFAULT '{}',
    created_at   TEXT NOT NULL
);
CREATE INDEX audit_log_run ON audit_log (run_id, id);

CREATE TABLE slack_events (
    event_id     TEXT PRIMARY KEY,
    received_at  TEXT NOT NULL
) WITHOUT ROWID;
