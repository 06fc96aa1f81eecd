-- Confirmed signatures and partner webhooks, and the outbox that sends their emails and deliveries.
--
-- A pledge with confirm_email keeps each new signature in pending_signatures (not counted) until
-- its signer follows the emailed link; it then moves to signatures with every kept count, in one
-- transaction (queries.confirm_pending). Pending rows are deleted after the retention period.

ALTER TABLE pledges ADD COLUMN confirm_email INTEGER NOT NULL DEFAULT 0;

-- Where signatures that consented to the partner's contact are POSTed, and the secret that signs
-- them (Standard Webhooks, whsec_…). NULL: no webhook.
ALTER TABLE partners ADD COLUMN webhook_url TEXT;
ALTER TABLE partners ADD COLUMN webhook_secret TEXT;

-- The columns of signatures, plus how many confirmation emails were queued and whether the one
-- reminder was. AUTOINCREMENT: a confirmation link names its id, so an id is never handed out
-- twice (a link to a signature confirmed or purged must not confirm someone else's).
CREATE TABLE pending_signatures (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    pledge_id      INTEGER NOT NULL REFERENCES pledges(id),
    partner_id     INTEGER REFERENCES partners(id),
    email          TEXT NOT NULL,
    name           TEXT NOT NULL,
    occupation     TEXT NOT NULL DEFAULT '',
    organisation   TEXT NOT NULL DEFAULT '',
    opt_in_updates INTEGER NOT NULL DEFAULT 0,
    opt_in_partner INTEGER NOT NULL DEFAULT 0,
    origin         TEXT NOT NULL DEFAULT '',
    source         TEXT NOT NULL DEFAULT '',
    utm_source     TEXT NOT NULL DEFAULT '',
    utm_medium     TEXT NOT NULL DEFAULT '',
    utm_campaign   TEXT NOT NULL DEFAULT '',
    utm_term       TEXT NOT NULL DEFAULT '',
    utm_content    TEXT NOT NULL DEFAULT '',
    created_at     TEXT NOT NULL,
    client_mark    TEXT NOT NULL DEFAULT '',
    sends          INTEGER NOT NULL DEFAULT 1,
    reminded       INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX pending_signatures_pledge_email ON pending_signatures (pledge_id, email);
-- The reminder and retention scans ("signed before …").
CREATE INDEX pending_signatures_time ON pending_signatures (created_at);
-- Pending per partner, for the dashboard and stats.
CREATE INDEX pending_signatures_partner ON pending_signatures (pledge_id, partner_id);

-- Which pending ids were confirmed, as which signature: a second click on the link answers
-- "already" without a second copy of the person's details. Gone with the signature (an erasure)
-- and after the retention period, as the links themselves.
CREATE TABLE confirmed_pending (
    id           INTEGER PRIMARY KEY,   -- the pending signature's id
    pledge_id    INTEGER NOT NULL REFERENCES pledges(id),
    signature_id INTEGER NOT NULL REFERENCES signatures(id) ON DELETE CASCADE,
    confirmed_at TEXT NOT NULL
);
CREATE INDEX confirmed_pending_signature ON confirmed_pending (signature_id);
CREATE INDEX confirmed_pending_time ON confirmed_pending (confirmed_at);

-- Per pledge and partner (0: signed directly): signatures that were asked to confirm (a new
-- pending signature) and those confirmed, moved in the same transactions. Counts of events, kept
-- whatever happens to the rows after (a purge, an erasure): the confirmation rate staff watch.
CREATE TABLE confirmation_counts (
    pledge_id  INTEGER NOT NULL REFERENCES pledges(id),
    partner_id INTEGER NOT NULL,
    asked      INTEGER NOT NULL DEFAULT 0,
    confirmed  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pledge_id, partner_id)
);

-- Emails and webhook deliveries, written in the same transaction as the signature (or its
-- confirmation) and sent by the outbox worker after the commit. No personal data: ref_id names
-- the pending signature (confirm, remind) or the signature (webhook), read when it is sent.
-- AUTOINCREMENT: the id is the delivery's stable id (webhook-id), so it is never reused.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL CHECK (kind IN ('confirm', 'remind', 'webhook')),
    ref_id          INTEGER NOT NULL,
    partner_id      INTEGER REFERENCES partners(id),   -- the webhook's partner; NULL for emails
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,        -- failed attempts so far
    next_attempt_at TEXT NOT NULL,                     -- a claim moves it to the lease's end
    leased_until    TEXT,                              -- claimed by a worker until then
    last_error      TEXT NOT NULL DEFAULT '',
    dead            INTEGER NOT NULL DEFAULT 0         -- out of attempts: waits for staff
);
-- The worker's "due and not dead" scan reads only live messages, in time order.
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE dead = 0;
-- Erasure, invalidation and purge remove the messages about the rows they remove.
CREATE INDEX outbox_ref ON outbox (ref_id);
