-- The staff area: pledge settings, the counts its dashboard reads, accounts and the audit log.
--
-- Every kept count below moves in the same transaction as the signature that it counts
-- (queries.insert_signatures) and falls with it (queries.remove_signatures), so the dashboard
-- reads a few hundred small rows at any size and never counts signatures. partner_id 0 means
-- "signed directly", as in signature_days.

-- Closed pledges refuse signatures; optional_fields says which optional questions the form asks.
ALTER TABLE pledges ADD COLUMN closed_at TEXT;
ALTER TABLE pledges ADD COLUMN optional_fields TEXT NOT NULL DEFAULT 'occupation,organisation';

-- A keyed hash of the signing client's network under a key that lives only in the server's
-- memory and is replaced daily (SECURITY.md, "Abuse marks"): it groups one client's bursts,
-- and once the key is gone nobody can tell which address it stood for. '' = not known.
ALTER TABLE signatures ADD COLUMN client_mark TEXT NOT NULL DEFAULT '';

-- The abuse panel and burst invalidation read one pledge's signatures in a time window.
CREATE INDEX signatures_pledge_time ON signatures (pledge_id, created_at);

-- Per pledge, UTC hour ('2026-11-30T10') and partner: the last 48 hours, the last 24.
CREATE TABLE signature_hours (
    pledge_id  INTEGER NOT NULL REFERENCES pledges(id),
    hour       TEXT NOT NULL,
    partner_id INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (pledge_id, hour, partner_id)
) WITHOUT ROWID;

-- Per pledge and UTC minute ('2026-11-30T10:07'): the last hour and the rate now.
CREATE TABLE signature_minutes (
    pledge_id INTEGER NOT NULL REFERENCES pledges(id),
    minute    TEXT NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (pledge_id, minute)
) WITHOUT ROWID;

-- Per pledge and partner: the dashboard's per-partner row beyond the signature count.
CREATE TABLE partner_totals (
    pledge_id      INTEGER NOT NULL REFERENCES pledges(id),
    partner_id     INTEGER NOT NULL,
    signatures     INTEGER NOT NULL,
    opt_in_updates INTEGER NOT NULL,
    opt_in_partner INTEGER NOT NULL,
    first_at       TEXT NOT NULL,
    last_at        TEXT NOT NULL,
    PRIMARY KEY (pledge_id, partner_id)
) WITHOUT ROWID;

-- Per pledge, partner and occupation key: lower(trim(occupation)), '' = not given.
CREATE TABLE signature_occupations (
    pledge_id  INTEGER NOT NULL REFERENCES pledges(id),
    partner_id INTEGER NOT NULL,
    occupation TEXT NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (pledge_id, partner_id, occupation)
) WITHOUT ROWID;

-- Per pledge, partner and the partner page's source / utm_* tags.
CREATE TABLE signature_sources (
    pledge_id    INTEGER NOT NULL REFERENCES pledges(id),
    partner_id   INTEGER NOT NULL,
    source       TEXT NOT NULL,
    utm_source   TEXT NOT NULL,
    utm_medium   TEXT NOT NULL,
    utm_campaign TEXT NOT NULL,
    utm_term     TEXT NOT NULL,
    utm_content  TEXT NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (pledge_id, partner_id, source, utm_source, utm_medium, utm_campaign, utm_term, utm_content)
) WITHOUT ROWID;

-- Staff accounts. session_epoch moves on a password change or "log out everywhere", which ends
-- every session cookie issued before it.
CREATE TABLE staff_users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'campaigner', 'viewer')),
    password_hash TEXT NOT NULL,
    session_epoch INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL
);

-- Who did what, when: every staff action, in the browser or at the command line.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    pledge  TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);

-- The kept counts of signatures stored before this migration.
INSERT INTO signature_hours (pledge_id, hour, partner_id, count)
SELECT pledge_id, substr(created_at, 1, 13), COALESCE(partner_id, 0), COUNT(*)
FROM signatures GROUP BY 1, 2, 3;

INSERT INTO signature_minutes (pledge_id, minute, count)
SELECT pledge_id, substr(created_at, 1, 16), COUNT(*) FROM signatures GROUP BY 1, 2;

INSERT INTO partner_totals (pledge_id, partner_id, signatures, opt_in_updates, opt_in_partner, first_at, last_at)
SELECT pledge_id, COALESCE(partner_id, 0), COUNT(*), SUM(opt_in_updates != 0), SUM(opt_in_partner != 0),
       MIN(created_at), MAX(created_at)
FROM signatures GROUP BY 1, 2;

INSERT INTO signature_occupations (pledge_id, partner_id, occupation, count)
SELECT pledge_id, COALESCE(partner_id, 0), lower(trim(occupation)), COUNT(*) FROM signatures GROUP BY 1, 2, 3;

INSERT INTO signature_sources (pledge_id, partner_id, source, utm_source, utm_medium, utm_campaign, utm_term,
                               utm_content, count)
SELECT pledge_id, COALESCE(partner_id, 0), source, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
       COUNT(*)
FROM signatures GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
