-- sqlite schema version 1 (applied by persistence/sqlite.rs at open).
CREATE TABLE ss_tables (name TEXT PRIMARY KEY, number INTEGER NOT NULL UNIQUE);
CREATE TABLE ss_indexes (
    id INTEGER PRIMARY KEY,
    table_number INTEGER NOT NULL,
    name TEXT NOT NULL,
    fields TEXT NOT NULL,
    UNIQUE (table_number, name)
);
-- A rowid table: documents can be large, which WITHOUT ROWID handles poorly.
CREATE TABLE ss_documents (
    id BLOB PRIMARY KEY,
    table_number INTEGER NOT NULL,
    creation_time REAL NOT NULL,
    value TEXT NOT NULL
);
CREATE TABLE ss_index_entries (
    index_id INTEGER NOT NULL,
    key BLOB NOT NULL,
    doc_id BLOB NOT NULL,
    PRIMARY KEY (index_id, key)
) WITHOUT ROWID;
