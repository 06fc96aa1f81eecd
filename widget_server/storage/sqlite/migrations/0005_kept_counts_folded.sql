-- The staff area's kept counts per hour, minute, occupation, source and partner are folded in
-- from the signature rows after their commit, not written by the commit itself: a signing commit
-- then writes fewer pages, and the fold's work is done once for many batches
-- (queries.fold_kept_counts). This row says how far the fold has come: every signature with an
-- id up to signature_id is in those five tables, every later one is not yet. The fold and the
-- mark move in one transaction, so after a crash the rows past the mark are folded on the next
-- read, and nothing is counted twice. SQLite hands out ids in commit order (one writer at a time);
-- a removal that takes the highest id lowers the mark with it, so a reused id is never skipped.
CREATE TABLE kept_counts_folded (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    signature_id INTEGER NOT NULL
);

-- Every signature so far was counted by its own commit (migration 0003 and the writer until now).
INSERT INTO kept_counts_folded (id, signature_id) SELECT 1, COALESCE(MAX(id), 0) FROM signatures;
