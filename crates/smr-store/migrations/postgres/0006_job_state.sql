-- Issue 11: the state of long-running jobs that are not feed consumers, e.g. the safety review
-- of every record after the bundled rules change (`safety-rules-sweep`): which rules version it
-- reviews for and how far through the patients it has got, so a restart resumes it.
CREATE TABLE job_state (
    name TEXT COLLATE "C" PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
