-- "Organisations that have signed the pledge so far", as the SQLite engine's 0002. name_key
-- folds ASCII letters only, exactly as SQLite's lower() does, so both engines group the same
-- names together and a campaign moved between them keeps its list.

CREATE TABLE organisations (
    pledge_id       bigint NOT NULL REFERENCES pledges (id),
    name_key        text NOT NULL,
    name            text NOT NULL,
    signatures      bigint NOT NULL DEFAULT 0,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'hidden')),
    first_signed_at timestamptz NOT NULL,
    reviewed_at     timestamptz,
    PRIMARY KEY (pledge_id, name_key)
);

CREATE INDEX organisations_public ON organisations (pledge_id, status, name_key);

INSERT INTO organisations (pledge_id, name_key, name, signatures, first_signed_at)
SELECT pledge_id,
       translate(organisation, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'),
       min(organisation), count(*), min(created_at)
FROM signatures
WHERE organisation != ''
GROUP BY 1, 2;
