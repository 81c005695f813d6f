-- Embeddings for trainer=dicl: the train rows' inputs (the index of the teacher's examples) and the eval rows'
-- (the queries), each stored with its share of what its request cost and the job that paid for it, in the same
-- transaction: a crash loses no vector it paid for, and a job's spend is the sum of its vectors' costs.
CREATE TABLE example_vectors (
    id              INTEGER PRIMARY KEY,
    run_id          INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    job_id          INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    split           TEXT NOT NULL CHECK (split IN ('train', 'eval')),
    row_index       INTEGER NOT NULL,
    model           TEXT NOT NULL,
    text_sha256     TEXT NOT NULL,
    vector          BLOB NOT NULL,
    prompt_tokens   INTEGER NOT NULL,
    cost_micro_usd  INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    UNIQUE (job_id, split, row_index)
);
CREATE INDEX example_vectors_run ON example_vectors (run_id, split, model);
