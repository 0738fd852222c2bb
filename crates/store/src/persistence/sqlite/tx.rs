//! A transaction on a SQLite connection: the persistence layer's reads and writes in SQL.

use rusqlite::{params, Connection, OptionalExtension};

use super::map_err;
use crate::catalog::{CatalogRows, IndexRow};
use crate::keys::{key_successor, prefix_successor};
use crate::persistence::{CatalogConn, StoredDoc, TxConn};
use crate::query::Order;
use crate::readset::{IndexId, KeyRange};
use crate::{Result, StoreError};

pub(super) struct SqliteTx {
    pub(super) conn: Connection,
}

impl SqliteTx {
    pub(super) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(super) fn exec(&self, sql: &str) -> Result<()> {
        self.conn().execute_batch(sql).map_err(map_err)
    }

    /// A single statement, prepared once per connection (BEGIN, COMMIT, savepoints: run per query).
    pub(super) fn exec_cached(&self, sql: &str) -> Result<()> {
        self.run(sql, [])
    }

    pub(super) fn meta(&self, key: &str) -> Result<Option<i64>> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT value FROM ss_meta WHERE key = ?1")
            .map_err(map_err)?;
        stmt.query_row([key], |row| row.get(0))
            .optional()
            .map_err(map_err)
    }

    pub(super) fn set_meta(&self, key: &str, value: i64) -> Result<()> {
        let sql = "INSERT INTO ss_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        self.run(sql, params![key, value])
    }

    fn run(&self, sql: &str, params: impl rusqlite::Params) -> Result<()> {
        let mut stmt = self.conn().prepare_cached(sql).map_err(map_err)?;
        stmt.execute(params).map(|_| ()).map_err(map_err)
    }
}

fn doc_from_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<StoredDoc> {
    Ok(StoredDoc {
        id: row.get(first)?,
        table_number: row.get(first + 1)?,
        creation_time: row.get(first + 2)?,
        value: row.get(first + 3)?,
    })
}

impl TxConn for SqliteTx {
    fn get(&mut self, id: &[u8]) -> Result<Option<StoredDoc>> {
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT id, table_number, creation_time, value FROM ss_documents WHERE id = ?1",
            )
            .map_err(map_err)?;
        stmt.query_row([id], |row| doc_from_row(row, 0))
            .optional()
            .map_err(map_err)
    }

    fn scan(
        &mut self,
        index: IndexId,
        range: &KeyRange,
        order: Order,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, StoredDoc)>> {
        // CROSS JOIN keeps the entries as the outer loop, so SQLite walks the index range in order.
        let direction = match order {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        };
        let upper = if range.end.is_some() {
            "AND e.key < ?4"
        } else {
            ""
        };
        let sql = format!(
            "SELECT e.key, d.id, d.table_number, d.creation_time, d.value \
             FROM ss_index_entries e CROSS JOIN ss_documents d ON d.id = e.doc_id \
             WHERE e.index_id = ?1 AND e.key >= ?2 {upper} ORDER BY e.key {direction} LIMIT ?3"
        );
        let mut stmt = self.conn().prepare_cached(&sql).map_err(map_err)?;
        let limit = limit.min(i64::MAX as usize) as i64;
        let map = |row: &rusqlite::Row<'_>| Ok((row.get(0)?, doc_from_row(row, 1)?));
        let rows = match &range.end {
            Some(end) => stmt.query_map(params![index, range.start, limit, end], map),
            None => stmt.query_map(params![index, range.start, limit], map),
        };
        rows.and_then(|rows| rows.collect()).map_err(map_err)
    }

    fn count(&mut self, index: IndexId, range: &KeyRange) -> Result<u64> {
        let count = |row: &rusqlite::Row<'_>| row.get::<_, i64>(0);
        let counted = match &range.end {
            Some(end) => self
                .conn()
                .prepare_cached("SELECT count(*) FROM ss_index_entries WHERE index_id = ?1 AND key >= ?2 AND key < ?3")
                .and_then(|mut stmt| stmt.query_row(params![index, range.start, end], count)),
            None => self
                .conn()
                .prepare_cached("SELECT count(*) FROM ss_index_entries WHERE index_id = ?1 AND key >= ?2")
                .and_then(|mut stmt| stmt.query_row(params![index, range.start], count)),
        };
        counted.map(|n| n as u64).map_err(map_err)
    }

    fn insert_doc(&mut self, doc: &StoredDoc) -> Result<()> {
        let sql = "INSERT INTO ss_documents (id, table_number, creation_time, value) VALUES (?1, ?2, ?3, ?4)";
        self.run(
            sql,
            params![doc.id, doc.table_number, doc.creation_time, doc.value],
        )
    }

    fn update_doc(&mut self, doc: &StoredDoc) -> Result<()> {
        self.run(
            "UPDATE ss_documents SET value = ?2 WHERE id = ?1",
            params![doc.id, doc.value],
        )
    }

    fn delete_doc(&mut self, id: &[u8]) -> Result<()> {
        self.run("DELETE FROM ss_documents WHERE id = ?1", params![id])
    }

    fn insert_entry(&mut self, index: IndexId, key: &[u8], doc_id: &[u8]) -> Result<()> {
        self.run(
            "INSERT INTO ss_index_entries (index_id, key, doc_id) VALUES (?1, ?2, ?3)",
            params![index, key, doc_id],
        )
    }

    fn delete_entry(&mut self, index: IndexId, key: &[u8]) -> Result<()> {
        self.run(
            "DELETE FROM ss_index_entries WHERE index_id = ?1 AND key = ?2",
            params![index, key],
        )
    }
}

impl CatalogConn for SqliteTx {
    fn load_catalog(&mut self) -> Result<CatalogRows> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT name, number FROM ss_tables")
            .map_err(map_err)?;
        let tables = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(map_err)?;
        let mut stmt = conn
            .prepare("SELECT id, table_number, name, fields FROM ss_indexes")
            .map_err(map_err)?;
        let raw: Vec<(IndexId, u32, String, String)> = stmt
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(map_err)?;
        let indexes = raw
            .into_iter()
            .map(|(id, table_number, name, fields)| {
                let fields = serde_json::from_str(&fields)
                    .map_err(|e| StoreError::Internal(format!("bad index catalog row: {e}")))?;
                Ok(IndexRow {
                    id,
                    table_number,
                    name,
                    fields,
                })
            })
            .collect::<Result<_>>()?;
        Ok(CatalogRows { tables, indexes })
    }

    fn add_table(&mut self, name: &str, number: u32) -> Result<()> {
        self.run(
            "INSERT INTO ss_tables (name, number) VALUES (?1, ?2)",
            params![name, number],
        )
    }

    fn rename_table(&mut self, old: &str, new: &str) -> Result<()> {
        self.run(
            "UPDATE ss_tables SET name = ?2 WHERE name = ?1",
            params![old, new],
        )
    }

    fn add_index(&mut self, row: &IndexRow) -> Result<()> {
        let fields =
            serde_json::to_string(&row.fields).map_err(|e| StoreError::Internal(e.to_string()))?;
        let sql = "INSERT INTO ss_indexes (id, table_number, name, fields) VALUES (?1, ?2, ?3, ?4)";
        self.run(sql, params![row.id, row.table_number, row.name, fields])
    }

    fn drop_index(&mut self, id: IndexId) -> Result<()> {
        self.run(
            "DELETE FROM ss_index_entries WHERE index_id = ?1",
            params![id],
        )?;
        self.run("DELETE FROM ss_indexes WHERE id = ?1", params![id])
    }

    fn table_documents(
        &mut self,
        table_number: u32,
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<StoredDoc>> {
        // Raw Ids start with the big-endian table number, so a table's documents form one id range.
        let prefix = table_number.to_be_bytes();
        let start = if after.is_empty() {
            prefix.to_vec()
        } else {
            key_successor(after)
        };
        let end = prefix_successor(&prefix).unwrap_or_else(|| vec![0xFF; 5]);
        let sql = "SELECT id, table_number, creation_time, value FROM ss_documents WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3";
        let mut stmt = self.conn().prepare_cached(sql).map_err(map_err)?;
        let rows = stmt.query_map(params![start, end, limit as i64], |row| {
            doc_from_row(row, 0)
        });
        rows.and_then(|rows| rows.collect()).map_err(map_err)
    }
}
