-- Pledges, the partners that embed them, and the signatures they collect.
-- Counts live on the pledge and partner rows and are bumped in the same
-- transaction as the insert, so reading them is O(1) at any size.

CREATE TABLE pledges (
    id              INTEGER PRIMARY KEY,
    slug            TEXT NOT NULL UNIQUE,
    title           TEXT NOT NULL,
    statement_html  TEXT NOT NULL,   -- sanitised with the rich-text allowlist when saved
    goal            INTEGER,
    privacy_url     TEXT,
    contact         TEXT,            -- how supporters change contact preferences (phone, email)
    signature_count INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL
);

CREATE TABLE partners (
    id              INTEGER PRIMARY KEY,
    pledge_id       INTEGER NOT NULL REFERENCES pledges(id),
    name            TEXT NOT NULL,
    origins         TEXT NOT NULL,   -- JSON array of exact origins, e.g. ["https://example.org"]
    token_version   INTEGER NOT NULL DEFAULT 1,
    revoked_at      TEXT,
    signature_count INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    UNIQUE (pledge_id, name)
);

CREATE TABLE signatures (
    id             INTEGER PRIMARY KEY,
    pledge_id      INTEGER NOT NULL REFERENCES pledges(id),
    partner_id     INTEGER REFERENCES partners(id),   -- NULL: signed directly
    email          TEXT NOT NULL,                     -- normalised (trimmed, lower case)
    name           TEXT NOT NULL,
    occupation     TEXT NOT NULL DEFAULT '',
    organisation   TEXT NOT NULL DEFAULT '',
    opt_in_updates INTEGER NOT NULL DEFAULT 0,
    opt_in_partner INTEGER NOT NULL DEFAULT 0,
    origin         TEXT NOT NULL DEFAULT '',          -- the page origin that embedded the form
    source         TEXT NOT NULL DEFAULT '',
    utm_source     TEXT NOT NULL DEFAULT '',
    utm_medium     TEXT NOT NULL DEFAULT '',
    utm_campaign   TEXT NOT NULL DEFAULT '',
    utm_term       TEXT NOT NULL DEFAULT '',
    utm_content    TEXT NOT NULL DEFAULT '',
    created_at     TEXT NOT NULL                      -- UTC, ISO 8601
);

-- The real guard against duplicates: one signature per pledge and normalised email.
CREATE UNIQUE INDEX signatures_pledge_email ON signatures (pledge_id, email);
CREATE INDEX signatures_partner ON signatures (partner_id, created_at);

-- Signatures per pledge, partner (0 = direct) and UTC day, kept with the insert,
-- so "who brought how many, and when" never scans the signatures.
CREATE TABLE signature_days (
    pledge_id  INTEGER NOT NULL REFERENCES pledges(id),
    partner_id INTEGER NOT NULL,
    day        TEXT NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (pledge_id, partner_id, day)
) WITHOUT ROWID;
