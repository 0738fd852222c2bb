//! The catalog: declared tables and indexes with their persisted numbers and ids, reconciled with the
//! schema at open, and the index keys of a document.

use std::collections::HashMap;
use std::sync::Arc;

use values::validator::TableNumbers;
use values::{DocumentId, Object, Validator, Value};

use crate::keys::{encode_value, id_bytes};
use crate::readset::IndexId;
use crate::schema::{Schema, TableDef, INDEX_BY_CREATION_TIME, INDEX_BY_ID};

/// The first user table number, as in Convex (system tables use lower numbers).
pub(crate) const FIRST_TABLE_NUMBER: u32 = 10001;
/// Pseudo-fields that every index ends with.
pub(crate) const ID_FIELD: &str = "_id";
pub(crate) const CREATION_TIME_FIELD: &str = "_creationTime";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IndexKind {
    /// Key: the Id bytes.
    ById,
    /// Key: creation time, Id.
    ByCreationTime,
    /// Key: the declared fields' values, creation time, Id.
    User,
}

#[derive(Clone, Debug)]
pub(crate) struct IndexInfo {
    pub id: IndexId,
    pub name: String,
    /// Declared fields (empty for the implicit indexes).
    pub fields: Vec<String>,
    pub kind: IndexKind,
}

impl IndexInfo {
    /// The key of a document in this index. Keys are unique because they end with the Id.
    pub fn key(&self, id: &DocumentId, creation_time: f64, fields: &Object) -> Vec<u8> {
        let mut key = Vec::with_capacity(64);
        if self.kind == IndexKind::User {
            for path in &self.fields {
                encode_value(lookup(fields, path), &mut key);
            }
        }
        if self.kind != IndexKind::ById {
            encode_value(Some(&Value::Float64(creation_time)), &mut key);
        }
        key.extend_from_slice(&id_bytes(id));
        key
    }

    /// The fields a range may constrain, in key order.
    pub fn range_fields(&self) -> Vec<&str> {
        match self.kind {
            IndexKind::ById => vec![ID_FIELD],
            IndexKind::ByCreationTime => vec![CREATION_TIME_FIELD],
            IndexKind::User => self
                .fields
                .iter()
                .map(String::as_str)
                .chain([CREATION_TIME_FIELD])
                .collect(),
        }
    }

    /// How the catalog stores the field list.
    fn stored_fields(&self) -> Vec<String> {
        match self.kind {
            IndexKind::ById => vec![ID_FIELD.to_string()],
            IndexKind::ByCreationTime => vec![CREATION_TIME_FIELD.to_string()],
            IndexKind::User => self.fields.clone(),
        }
    }
}

/// A dotted path into the user fields; `None` when any step is missing or not an object.
fn lookup<'a>(fields: &'a Object, path: &str) -> Option<&'a Value> {
    let mut segments = path.split('.');
    let mut value = fields.get(segments.next()?)?;
    for segment in segments {
        value = value.get(segment)?;
    }
    Some(value)
}

#[derive(Debug)]
pub(crate) struct TableInfo {
    pub name: String,
    pub number: u32,
    pub validator: Validator,
    /// `by_id`, `by_creation_time`, then the declared indexes.
    pub indexes: Vec<IndexInfo>,
    pub tenant_field: Option<String>,
}

impl TableInfo {
    pub fn index(&self, name: &str) -> Option<&IndexInfo> {
        self.indexes.iter().find(|i| i.name == name)
    }
    pub fn by_id(&self) -> &IndexInfo {
        &self.indexes[0]
    }
    pub fn by_creation_time(&self) -> &IndexInfo {
        &self.indexes[1]
    }
}

/// The declared tables with their numbers, shared read-only by every transaction.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    by_name: HashMap<String, Arc<TableInfo>>,
    by_number: HashMap<u32, Arc<TableInfo>>,
}

impl Catalog {
    pub fn table(&self, name: &str) -> Option<&Arc<TableInfo>> {
        self.by_name.get(name)
    }
    pub fn table_by_number(&self, number: u32) -> Option<&Arc<TableInfo>> {
        self.by_number.get(&number)
    }
}

impl TableNumbers for Catalog {
    fn table_number(&self, table: &str) -> Option<u32> {
        self.by_name.get(table).map(|t| t.number)
    }
}

/// One row of the persisted index catalog.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct IndexRow {
    pub id: IndexId,
    pub table_number: u32,
    pub name: String,
    pub fields: Vec<String>,
}

/// The persisted catalog as loaded at open.
#[derive(Clone, Debug, Default)]
pub(crate) struct CatalogRows {
    pub tables: Vec<(String, u32)>,
    pub indexes: Vec<IndexRow>,
}

/// What reconciling the schema with the persisted catalog must change.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub new_tables: Vec<(String, u32)>,
    /// Tables stored under a former name: `(former, new)`.
    pub renamed: Vec<(String, String)>,
    pub new_indexes: Vec<IndexRow>,
    /// Indexes no longer declared (or redeclared with other fields): their rows and entries go.
    pub dropped: Vec<IndexId>,
    /// New indexes on tables that may already hold documents, with their table number.
    pub backfill: Vec<(u32, IndexId)>,
    pub catalog: Catalog,
}

/// Matches the schema against the persisted catalog. Tables keep their numbers and indexes their ids
/// for as long as they are declared with the same fields; tables that vanish from the schema keep
/// their data (and indexes) untouched, in case they come back.
pub(crate) fn plan(schema: &Schema, rows: &CatalogRows) -> Plan {
    let mut plan = Plan::default();
    let mut next_table = rows
        .tables
        .iter()
        .map(|(_, n)| n + 1)
        .max()
        .unwrap_or(FIRST_TABLE_NUMBER)
        .max(FIRST_TABLE_NUMBER);
    let mut next_index = rows.indexes.iter().map(|i| i.id + 1).max().unwrap_or(1);
    for def in &schema.tables {
        let stored = |wanted: &str| {
            rows.tables
                .iter()
                .find(|(name, _)| name == wanted)
                .map(|(_, n)| *n)
        };
        // A former name counts only while no declared table still uses it.
        let former = || {
            def.former_names
                .iter()
                .filter(|old| schema.tables.iter().all(|t| t.name != **old))
                .find_map(|old| stored(old).map(|n| (old.clone(), n)))
        };
        let existing = stored(&def.name).or_else(|| {
            let (old, n) = former()?;
            plan.renamed.push((old, def.name.clone()));
            Some(n)
        });
        let number = existing.unwrap_or_else(|| {
            let n = next_table;
            next_table += 1;
            plan.new_tables.push((def.name.clone(), n));
            n
        });
        let mut indexes = Vec::new();
        for mut wanted in declared_indexes(def) {
            let stored = rows
                .indexes
                .iter()
                .find(|r| r.table_number == number && r.name == wanted.name);
            match stored {
                Some(row) if row.fields == wanted.stored_fields() => wanted.id = row.id,
                _ => {
                    wanted.id = next_index;
                    next_index += 1;
                    plan.new_indexes.push(IndexRow {
                        id: wanted.id,
                        table_number: number,
                        name: wanted.name.clone(),
                        fields: wanted.stored_fields(),
                    });
                    if existing.is_some() {
                        plan.backfill.push((number, wanted.id));
                    }
                }
            }
            indexes.push(wanted);
        }
        let kept: Vec<IndexId> = indexes.iter().map(|i| i.id).collect();
        plan.dropped.extend(
            rows.indexes
                .iter()
                .filter(|r| r.table_number == number && !kept.contains(&r.id))
                .map(|r| r.id),
        );
        let info = Arc::new(TableInfo {
            name: def.name.clone(),
            number,
            validator: def.validator(),
            indexes,
            tenant_field: def.tenant_field.clone(),
        });
        plan.catalog.by_name.insert(def.name.clone(), info.clone());
        plan.catalog.by_number.insert(number, info);
    }
    plan
}

/// The implicit indexes followed by the declared ones, ids not yet assigned.
fn declared_indexes(def: &TableDef) -> Vec<IndexInfo> {
    let implicit = [
        (INDEX_BY_ID, IndexKind::ById),
        (INDEX_BY_CREATION_TIME, IndexKind::ByCreationTime),
    ];
    let implicit = implicit.into_iter().map(|(name, kind)| IndexInfo {
        id: 0,
        name: name.to_string(),
        fields: Vec::new(),
        kind,
    });
    let declared = def.indexes.iter().map(|i| IndexInfo {
        id: 0,
        name: i.name.clone(),
        fields: i.fields.clone(),
        kind: IndexKind::User,
    });
    implicit.chain(declared).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(indexes: &[(&str, &[&str])]) -> Schema {
        let mut users = TableDef::new("users")
            .field("email", Validator::String)
            .field("age", Validator::Float64);
        for (name, fields) in indexes {
            users = users.index(name, fields);
        }
        Schema::new().table(users)
    }

    fn persist(rows: &mut CatalogRows, plan: &Plan) {
        for (old, new) in &plan.renamed {
            for (name, _) in rows.tables.iter_mut().filter(|(name, _)| name == old) {
                *name = new.clone();
            }
        }
        rows.tables.extend(plan.new_tables.iter().cloned());
        rows.indexes.retain(|r| !plan.dropped.contains(&r.id));
        rows.indexes.extend(plan.new_indexes.iter().cloned());
    }

    #[test]
    fn numbers_are_stable_and_changes_are_planned() {
        let mut rows = CatalogRows::default();
        let first = plan(&schema(&[("by_email", &["email"])]), &rows);
        assert_eq!(
            first.new_tables,
            vec![("users".to_string(), FIRST_TABLE_NUMBER)]
        );
        assert_eq!(first.new_indexes.len(), 3);
        assert!(
            first.backfill.is_empty(),
            "a new table has nothing to backfill"
        );
        persist(&mut rows, &first);

        let same = plan(&schema(&[("by_email", &["email"])]), &rows);
        assert!(
            same.new_tables.is_empty() && same.new_indexes.is_empty() && same.dropped.is_empty()
        );
        let users = same.catalog.table("users").unwrap();
        assert_eq!(users.number, FIRST_TABLE_NUMBER);
        assert_eq!(users.index("by_email").unwrap().id, first.new_indexes[2].id);

        // Redeclaring by_email with other fields drops and rebuilds it; a new index is backfilled.
        let changed = plan(
            &schema(&[("by_email", &["email", "age"]), ("by_age", &["age"])]),
            &rows,
        );
        assert_eq!(changed.dropped, vec![first.new_indexes[2].id]);
        assert_eq!(changed.backfill.len(), 2);
        persist(&mut rows, &changed);

        let removed = plan(&schema(&[]), &rows);
        assert_eq!(removed.dropped.len(), 2);
        assert_eq!(removed.catalog.table("users").unwrap().indexes.len(), 2);
    }

    #[test]
    fn a_renamed_table_keeps_its_number_and_indexes() {
        let mut rows = CatalogRows::default();
        let first = plan(&schema(&[("by_email", &["email"])]), &rows);
        persist(&mut rows, &first);

        let renamed = |name: &str| {
            let mut people = TableDef::new(name)
                .field("email", Validator::String)
                .field("age", Validator::Float64)
                .index("by_email", &["email"]);
            people = people.formerly("users");
            Schema::new().table(people)
        };
        let moved = plan(&renamed("people"), &rows);
        assert_eq!(
            moved.renamed,
            vec![("users".to_string(), "people".to_string())]
        );
        assert!(moved.new_tables.is_empty() && moved.new_indexes.is_empty());
        assert!(moved.dropped.is_empty() && moved.backfill.is_empty());
        let people = moved.catalog.table("people").unwrap();
        assert_eq!(people.number, FIRST_TABLE_NUMBER);
        assert_eq!(
            people.index("by_email").unwrap().id,
            first.new_indexes[2].id
        );
        persist(&mut rows, &moved);

        // Once renamed, the former name is inert.
        let again = plan(&renamed("people"), &rows);
        assert!(again.renamed.is_empty() && again.new_tables.is_empty());

        // A former name that a declared table still uses is not taken over.
        let both = Schema::new()
            .table(TableDef::new("people").formerly("users"))
            .table(TableDef::new("users"));
        let mut fresh = CatalogRows::default();
        let created = plan(&schema(&[]), &fresh);
        persist(&mut fresh, &created);
        let kept = plan(&both, &fresh);
        assert!(kept.renamed.is_empty());
        assert_eq!(kept.catalog.table_number("users"), Some(FIRST_TABLE_NUMBER));
    }

    #[test]
    fn keys_follow_field_values_then_creation_time_then_id() {
        let rows = CatalogRows::default();
        let catalog = plan(&schema(&[("by_age", &["age"])]), &rows).catalog;
        let users = catalog.table("users").unwrap();
        let by_age = users.index("by_age").unwrap();
        let id = DocumentId {
            table_number: users.number,
            internal: [3; 16],
        };
        let doc = |age: f64| Object::from([("age".to_string(), Value::Float64(age))]);
        assert!(by_age.key(&id, 5.0, &doc(1.0)) < by_age.key(&id, 1.0, &doc(2.0)));
        assert!(by_age.key(&id, 1.0, &doc(1.0)) < by_age.key(&id, 2.0, &doc(1.0)));
        assert_eq!(
            users.by_id().key(&id, 1.0, &doc(1.0)),
            id_bytes(&id).to_vec()
        );
        assert_eq!(catalog.table_number("users"), Some(FIRST_TABLE_NUMBER));
    }
}
