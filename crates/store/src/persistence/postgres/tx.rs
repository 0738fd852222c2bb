//! A transaction on a pooled PostgreSQL connection: the persistence layer's reads and writes in SQL.

use postgres::types::{ToSql, Type};

use super::{map_err, PgConn};
use crate::catalog::{CatalogRows, IndexRow};
use crate::keys::{key_successor, prefix_successor};
use crate::persistence::{CatalogConn, StoredDoc, TxConn};
use crate::query::Order;
use crate::readset::{IndexId, KeyRange};
use crate::{Result, StoreError};

/// A transaction on a pooled connection.
pub(super) struct PgTx {
    pub(super) conn: PgConn,
}

pub(super) type Params<'a> = [(&'a (dyn ToSql + Sync), Type)];

impl PgTx {
    pub(super) fn exec(&mut self, sql: &str) -> Result<()> {
        self.conn.batch_execute(sql).map_err(map_err)
    }

    /// One round trip: `query_typed` skips the separate prepare step.
    pub(super) fn query(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<postgres::Row>> {
        self.conn.query_typed(sql, params).map_err(map_err)
    }
}

fn doc_from_row(row: &postgres::Row, first: usize) -> StoredDoc {
    StoredDoc {
        id: row.get(first),
        table_number: row.get::<_, i32>(first + 1) as u32,
        creation_time: row.get(first + 2),
        value: row.get(first + 3),
    }
}

impl TxConn for PgTx {
    fn get(&mut self, id: &[u8]) -> Result<Option<StoredDoc>> {
        let sql = "SELECT id, table_number, creation_time, value FROM ss_documents WHERE id = $1";
        Ok(self
            .query(sql, &[(&id, Type::BYTEA)])?
            .first()
            .map(|row| doc_from_row(row, 0)))
    }

    fn scan(
        &mut self,
        index: IndexId,
        range: &KeyRange,
        order: Order,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, StoredDoc)>> {
        let direction = match order {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        };
        let upper = if range.end.is_some() {
            "AND e.key < $4"
        } else {
            ""
        };
        let sql = format!(
            "SELECT e.key, d.id, d.table_number, d.creation_time, d.value \
             FROM ss_index_entries e JOIN ss_documents d ON d.id = e.doc_id \
             WHERE e.index_id = $1 AND e.key >= $2 {upper} ORDER BY e.key {direction} LIMIT $3"
        );
        let index = index as i32;
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = match &range.end {
            Some(end) => self.query(
                &sql,
                &[
                    (&index, Type::INT4),
                    (&range.start, Type::BYTEA),
                    (&limit, Type::INT8),
                    (end, Type::BYTEA),
                ],
            )?,
            None => self.query(
                &sql,
                &[
                    (&index, Type::INT4),
                    (&range.start, Type::BYTEA),
                    (&limit, Type::INT8),
                ],
            )?,
        };
        Ok(rows
            .iter()
            .map(|row| (row.get(0), doc_from_row(row, 1)))
            .collect())
    }

    fn count(&mut self, index: IndexId, range: &KeyRange) -> Result<u64> {
        let index = index as i32;
        let rows = match &range.end {
            Some(end) => self.query(
                "SELECT count(*) FROM ss_index_entries WHERE index_id = $1 AND key >= $2 AND key < $3",
                &[(&index, Type::INT4), (&range.start, Type::BYTEA), (end, Type::BYTEA)],
            )?,
            None => self.query(
                "SELECT count(*) FROM ss_index_entries WHERE index_id = $1 AND key >= $2",
                &[(&index, Type::INT4), (&range.start, Type::BYTEA)],
            )?,
        };
        Ok(rows.first().map_or(0, |row| row.get::<_, i64>(0)) as u64)
    }

    fn insert_doc(&mut self, doc: &StoredDoc) -> Result<()> {
        let sql = "INSERT INTO ss_documents (id, table_number, creation_time, value) VALUES ($1, $2, $3, $4)";
        let table = doc.table_number as i32;
        let params: &Params<'_> = &[
            (&doc.id, Type::BYTEA),
            (&table, Type::INT4),
            (&doc.creation_time, Type::FLOAT8),
            (&doc.value, Type::TEXT),
        ];
        self.query(sql, params).map(drop)
    }

    fn update_doc(&mut self, doc: &StoredDoc) -> Result<()> {
        let sql = "UPDATE ss_documents SET value = $2 WHERE id = $1";
        self.query(sql, &[(&doc.id, Type::BYTEA), (&doc.value, Type::TEXT)])
            .map(drop)
    }

    fn delete_doc(&mut self, id: &[u8]) -> Result<()> {
        self.query(
            "DELETE FROM ss_documents WHERE id = $1",
            &[(&id, Type::BYTEA)],
        )
        .map(drop)
    }

    fn insert_entry(&mut self, index: IndexId, key: &[u8], doc_id: &[u8]) -> Result<()> {
        let sql = "INSERT INTO ss_index_entries (index_id, key, doc_id) VALUES ($1, $2, $3)";
        let index = index as i32;
        self.query(
            sql,
            &[
                (&index, Type::INT4),
                (&key, Type::BYTEA),
                (&doc_id, Type::BYTEA),
            ],
        )
        .map(drop)
    }

    fn delete_entry(&mut self, index: IndexId, key: &[u8]) -> Result<()> {
        let index = index as i32;
        self.query(
            "DELETE FROM ss_index_entries WHERE index_id = $1 AND key = $2",
            &[(&index, Type::INT4), (&key, Type::BYTEA)],
        )
        .map(drop)
    }
}

impl CatalogConn for PgTx {
    fn load_catalog(&mut self) -> Result<CatalogRows> {
        let tables = self.query("SELECT name, number FROM ss_tables", &[])?;
        let tables = tables
            .iter()
            .map(|row| (row.get(0), row.get::<_, i32>(1) as u32))
            .collect();
        let indexes = self.query("SELECT id, table_number, name, fields FROM ss_indexes", &[])?;
        let indexes = indexes
            .iter()
            .map(|row| {
                let fields: String = row.get(3);
                let fields = serde_json::from_str(&fields)
                    .map_err(|e| StoreError::Internal(format!("bad index catalog row: {e}")))?;
                Ok(IndexRow {
                    id: row.get::<_, i32>(0) as u32,
                    table_number: row.get::<_, i32>(1) as u32,
                    name: row.get(2),
                    fields,
                })
            })
            .collect::<Result<_>>()?;
        Ok(CatalogRows { tables, indexes })
    }

    fn add_table(&mut self, name: &str, number: u32) -> Result<()> {
        let number = number as i32;
        self.query(
            "INSERT INTO ss_tables (name, number) VALUES ($1, $2)",
            &[(&name, Type::TEXT), (&number, Type::INT4)],
        )
        .map(drop)
    }

    fn rename_table(&mut self, old: &str, new: &str) -> Result<()> {
        self.query(
            "UPDATE ss_tables SET name = $2 WHERE name = $1",
            &[(&old, Type::TEXT), (&new, Type::TEXT)],
        )
        .map(drop)
    }

    fn add_index(&mut self, row: &IndexRow) -> Result<()> {
        let fields =
            serde_json::to_string(&row.fields).map_err(|e| StoreError::Internal(e.to_string()))?;
        let (id, table) = (row.id as i32, row.table_number as i32);
        let sql = "INSERT INTO ss_indexes (id, table_number, name, fields) VALUES ($1, $2, $3, $4)";
        self.query(
            sql,
            &[
                (&id, Type::INT4),
                (&table, Type::INT4),
                (&row.name, Type::TEXT),
                (&fields, Type::TEXT),
            ],
        )
        .map(drop)
    }

    fn drop_index(&mut self, id: IndexId) -> Result<()> {
        let id = id as i32;
        self.query(
            "DELETE FROM ss_index_entries WHERE index_id = $1",
            &[(&id, Type::INT4)],
        )?;
        self.query("DELETE FROM ss_indexes WHERE id = $1", &[(&id, Type::INT4)])
            .map(drop)
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
        let limit = limit as i64;
        let sql = "SELECT id, table_number, creation_time, value FROM ss_documents WHERE id >= $1 AND id < $2 ORDER BY id LIMIT $3";
        let rows = self.query(
            sql,
            &[
                (&start, Type::BYTEA),
                (&end, Type::BYTEA),
                (&limit, Type::INT8),
            ],
        )?;
        Ok(rows.iter().map(|row| doc_from_row(row, 0)).collect())
    }
}
