-- "Organisations that have signed the pledge so far": one row per organisation name per
-- pledge, kept current by the writer in the same transaction as the signature. Shown in
-- public only once campaign staff have approved it, because anyone can type any name.

CREATE TABLE organisations (
    pledge_id       INTEGER NOT NULL REFERENCES pledges(id),
    name_key        TEXT NOT NULL,                -- lower(name): "Hill School" = "hill school"
    name            TEXT NOT NULL,                -- as first typed (cleaned)
    signatures      INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'hidden')),
    first_signed_at TEXT NOT NULL,
    reviewed_at     TEXT,
    PRIMARY KEY (pledge_id, name_key)
) WITHOUT ROWID;

CREATE INDEX organisations_public ON organisations (pledge_id, status, name_key);

INSERT INTO organisations (pledge_id, name_key, name, signatures, first_signed_at)
SELECT pledge_id, lower(organisation), min(organisation), count(*), min(created_at)
FROM signatures
WHERE organisation != ''
GROUP BY pledge_id, lower(organisation);
