//! Table declarations, as Convex's `defineTable({...}).index("by_x", ["x"])`.

use std::collections::{BTreeMap, HashSet};

use values::{FieldValidator, Validator};

/// Every table has these two indexes implicitly (as in Convex).
pub const INDEX_BY_ID: &str = "by_id";
pub const INDEX_BY_CREATION_TIME: &str = "by_creation_time";

#[derive(Clone, Debug)]
pub struct IndexDef {
    pub name: String,
    /// Field names (top-level or dotted paths). `_creationTime` and `_id` are appended implicitly.
    pub fields: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct TableDef {
    pub name: String,
    /// The document validator: `Validator::Object` of the user fields.
    pub fields: BTreeMap<String, FieldValidator>,
    pub indexes: Vec<IndexDef>,
    /// The field naming the company a document belongs to, for tenant-scoped tables (`_id` for the
    /// companies table itself). The functions layer enforces it; the store only records it.
    pub tenant_field: Option<String>,
    /// Names the table was stored under before (see `formerly`).
    pub former_names: Vec<String>,
}

impl TableDef {
    /// Table names: `[A-Za-z][A-Za-z0-9_]*`, not starting with `_` (system tables are internal).
    pub fn new(name: &str) -> TableDef {
        TableDef {
            name: name.to_string(),
            fields: BTreeMap::new(),
            indexes: Vec::new(),
            tenant_field: None,
            former_names: Vec::new(),
        }
    }
    /// Renames a stored table: a database that has `name` (and not this table's name) keeps its
    /// documents, Ids and indexes under the new name, because they are keyed by table number.
    pub fn formerly(mut self, name: &str) -> TableDef {
        self.former_names.push(name.to_string());
        self
    }
    /// A required field.
    pub fn field(mut self, name: &str, validator: Validator) -> TableDef {
        self.fields.insert(
            name.to_string(),
            FieldValidator {
                validator,
                optional: false,
            },
        );
        self
    }
    /// An optional field.
    pub fn optional(mut self, name: &str, validator: Validator) -> TableDef {
        self.fields.insert(
            name.to_string(),
            FieldValidator {
                validator,
                optional: true,
            },
        );
        self
    }
    pub fn index(mut self, name: &str, fields: &[&str]) -> TableDef {
        self.indexes.push(IndexDef {
            name: name.to_string(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
        });
        self
    }

    /// Declares the table tenant-scoped by `field` (a declared Id field, or `_id`).
    pub fn tenant(mut self, field: &str) -> TableDef {
        self.tenant_field = Some(field.to_string());
        self
    }

    /// The validator of a whole document's user fields.
    pub fn validator(&self) -> Validator {
        Validator::Object(self.fields.clone())
    }

    fn validate(&self) -> Result<(), String> {
        let table = &self.name;
        if !is_identifier(table) {
            return Err(format!(
                "Table name {table:?} must match [A-Za-z][A-Za-z0-9_]*"
            ));
        }
        for name in self.fields.keys() {
            if name.starts_with('_') || !is_field_name(name) {
                return Err(format!("Field name {name:?} in table {table:?} must be printable ASCII, not start with '_' or '$'"));
            }
        }
        if let Some(field) = &self.tenant_field {
            if field != "_id" && !self.fields.contains_key(field) {
                return Err(format!(
                    "Tenant field {field:?} of table {table:?} is not declared"
                ));
            }
        }
        let mut seen = HashSet::new();
        for index in &self.indexes {
            let name = &index.name;
            if !is_identifier(name) || name == INDEX_BY_ID || name == INDEX_BY_CREATION_TIME {
                return Err(format!(
                    "Index name {name:?} on table {table:?} is invalid or reserved"
                ));
            }
            if !seen.insert(name) {
                return Err(format!(
                    "Index {name:?} is declared twice on table {table:?}"
                ));
            }
            if index.fields.is_empty() {
                return Err(format!("Index {table}.{name} has no fields"));
            }
            let mut fields = HashSet::new();
            for field in &index.fields {
                if !fields.insert(field) {
                    return Err(format!("Index {table}.{name} names field {field:?} twice"));
                }
                if !self.declares_path(field) {
                    return Err(format!("Index {table}.{name} uses field {field:?}, which table {table:?} does not declare"));
                }
            }
        }
        Ok(())
    }

    /// Whether a dotted path reaches a declared field; below `v.any()`, unions and records any path goes.
    fn declares_path(&self, path: &str) -> bool {
        let mut segments = path.split('.');
        let Some(first) = segments.next() else {
            return false;
        };
        let Some(mut field) = self.fields.get(first).map(|f| &f.validator) else {
            return false;
        };
        for segment in segments {
            match field {
                Validator::Object(fields) => match fields.get(segment) {
                    Some(next) => field = &next.validator,
                    None => return false,
                },
                Validator::Any | Validator::Union(_) | Validator::Record(..) => return true,
                _ => return false,
            }
        }
        true
    }
}

#[derive(Clone, Debug, Default)]
pub struct Schema {
    pub tables: Vec<TableDef>,
}

impl Schema {
    pub fn new() -> Schema {
        Schema::default()
    }
    pub fn table(mut self, table: TableDef) -> Schema {
        self.tables.push(table);
        self
    }
    /// Checks names, duplicate tables and indexes, and that index fields are declared.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = HashSet::new();
        for table in &self.tables {
            if !seen.insert(&table.name) {
                return Err(format!("Table {:?} is declared twice", table.name));
            }
            table.validate()?;
        }
        Ok(())
    }
    pub fn get(&self, table: &str) -> Option<&TableDef> {
        self.tables.iter().find(|t| t.name == table)
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('$')
        && name.len() <= values::MAX_FIELD_NAME_LEN
        && name.bytes().all(|b| (32..=126).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn users() -> TableDef {
        let address = Validator::Object(BTreeMap::from([(
            "city".to_string(),
            FieldValidator {
                validator: Validator::String,
                optional: false,
            },
        )]));
        TableDef::new("users")
            .field("email", Validator::String)
            .optional("address", address)
            .index("by_email", &["email"])
            .index("by_city", &["address.city"])
    }

    #[test]
    fn accepts_a_good_schema() {
        assert_eq!(Schema::new().table(users()).validate(), Ok(()));
    }

    #[test]
    fn rejects_bad_declarations() {
        let bad = [
            Schema::new().table(users()).table(users()),
            Schema::new().table(TableDef::new("_system")),
            Schema::new().table(TableDef::new("1x")),
            Schema::new().table(users().index("by_id", &["email"])),
            Schema::new().table(users().index("by_email", &["email"])),
            Schema::new().table(users().index("by_name", &["name"])),
            Schema::new().table(users().index("by_zip", &["address.zip"])),
            Schema::new().table(users().index("by_nothing", &[])),
            Schema::new().table(users().field("_secret", Validator::String)),
        ];
        for schema in bad {
            assert!(schema.validate().is_err(), "{schema:?}");
        }
    }
}
