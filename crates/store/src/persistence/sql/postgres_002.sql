-- postgres schema version 2 (applied by persistence/postgres/mod.rs at open).
-- How far ss_commit_log has been pruned: the largest ts deleted so far. A pruner deletes rows and
-- raises it in one transaction, so a reader that sees one sees the other (see feed.rs).
CREATE TABLE ss_commit_log_pruned (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    pruned_through BIGINT NOT NULL
);
INSERT INTO ss_commit_log_pruned (pruned_through) VALUES (0);
