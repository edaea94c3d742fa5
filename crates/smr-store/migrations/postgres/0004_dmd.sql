-- Issue 8: the imported dm+d release (NHSBSA XML), one at a time. A new import replaces the
-- old in one transaction. Each concept is a row (its JSON body holds links, ingredients,
-- form, route…); each previous code is a row too, with no body, pointing at its current code,
-- so old codes keep resolving after a release retires them.
CREATE TABLE dmd_release (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    release TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    counts TEXT NOT NULL
);
CREATE TABLE dmd_concept (
    code TEXT PRIMARY KEY,
    level TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT,
    current_code TEXT NOT NULL
);
