-- postgres schema version 1 (applied by persistence/postgres/mod.rs at open).
CREATE TABLE ss_tables (name TEXT PRIMARY KEY, number INTEGER NOT NULL UNIQUE);
CREATE TABLE ss_indexes (
    id INTEGER PRIMARY KEY,
    table_number INTEGER NOT NULL,
    name TEXT NOT NULL,
    fields TEXT NOT NULL,
    UNIQUE (table_number, name)
);
CREATE TABLE ss_documents (
    id BYTEA PRIMARY KEY,
    table_number INTEGER NOT NULL,
    creation_time DOUBLE PRECISION NOT NULL,
    value TEXT NOT NULL
);
CREATE TABLE ss_index_entries (
    index_id INTEGER NOT NULL,
    key BYTEA NOT NULL,
    doc_id BYTEA NOT NULL,
    PRIMARY KEY (index_id, key)
);
CREATE TABLE ss_commit_log (ts BIGINT PRIMARY KEY, writes BYTEA NOT NULL);
CREATE SEQUENCE ss_commit_ts AS BIGINT MINVALUE 0 START WITH 0;
-- Called just before COMMIT; see the comment on MIGRATIONS in postgres/mod.rs for why this gives
-- commit-ordered timestamps. 1397948418 is the commit lock (the catalog lock is 1397948417).
CREATE FUNCTION ss_next_commit_ts() RETURNS BIGINT LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    commit_ts BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(1397948418);
    commit_ts := GREATEST(
        COALESCE(pg_sequence_last_value('ss_commit_ts'), 0) + 1,
        (extract(epoch FROM clock_timestamp()) * 1000000000)::BIGINT);
    PERFORM setval('ss_commit_ts', commit_ts);
    PERFORM pg_notify('ss_commits', commit_ts::TEXT);
    RETURN commit_ts;
END
$$;
