//! Tenant isolation by construction. A table declared with `TableDef::tenant(field)` cannot be read
//! or written through the plain `ctx.db`; code must go through `ctx.db.scoped(&scope)`, whose reads
//! only see the scope's company and whose writes cannot leave it. A scope for every company needs a
//! `CrossTenant` grant, which only functions declared `.cross_tenant()` can obtain.

use store::{Document, Patch, Query, RangeBuilder, StoreError, Txn};
use values::{DocumentId, Object, Value};

use crate::{FnResult, FunctionError};

/// Which companies' documents some code may touch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Company(DocumentId),
    AllCompanies,
}

/// Proof that the running function was declared cross-tenant; only the runtime creates one.
#[derive(Debug)]
pub struct CrossTenant(pub(crate) ());

impl CrossTenant {
    /// For identity resolution only: turning a session token into its user, and sign-in and
    /// registration, which must find a user before any viewer (and so any scope) exists. Every other
    /// use goes through `ctx.cross_tenant()`. Kept greppable on purpose.
    pub fn for_identity_resolution() -> CrossTenant {
        CrossTenant(())
    }
}

impl Scope {
    pub fn company(id: DocumentId) -> Scope {
        Scope::Company(id)
    }
    pub fn all_companies(_grant: &CrossTenant) -> Scope {
        Scope::AllCompanies
    }
}

/// Refuses plain access to tenant-scoped tables: forgetting the scope is a bug, reported loudly.
pub(crate) fn refuse_unscoped(txn: &Txn, table: &str) -> store::Result<()> {
    match txn.tenant_field(table) {
        Some(_) => Err(StoreError::Internal(format!(
            "table {table} is tenant-scoped; access it through ctx.db.scoped(&scope)"
        ))),
        None => Ok(()),
    }
}

fn visible(txn: &Txn, scope: &Scope, doc: &Document) -> bool {
    let Scope::Company(company) = scope else {
        return true;
    };
    match txn.tenant_field(&doc.table) {
        None => true,
        Some("_id") => doc.id == *company,
        Some(field) => doc.get(field).and_then(Value::as_str) == Some(company.encode().as_str()),
    }
}

fn scoped_get(txn: &mut Txn, scope: &Scope, id: &DocumentId) -> store::Result<Option<Document>> {
    Ok(txn.get(id)?.filter(|doc| visible(txn, scope, doc)))
}

fn scoped_get_in(
    txn: &mut Txn,
    scope: &Scope,
    table: &str,
    id: &str,
) -> store::Result<Option<Document>> {
    match txn.normalize_id(table, id) {
        Some(id) => scoped_get(txn, scope, &id),
        None => Ok(None),
    }
}

/// A query over `index`; for a company scope the index must start with the tenant field, and the
/// company is fixed as its first equality, so no range can reach another company.
fn scoped_query<'t>(
    txn: &'t mut Txn,
    scope: &Scope,
    table: &str,
    index: &str,
    range: impl FnOnce(RangeBuilder) -> RangeBuilder,
) -> store::Result<Query<'t>> {
    let (Scope::Company(company), Some(field)) =
        (scope, txn.tenant_field(table).map(str::to_string))
    else {
        return txn.query(table)?.with_index(index, range);
    };
    let leads = txn
        .index_fields(table, index)
        .is_some_and(|fields| fields.first().map(String::as_str) == Some(field.as_str()));
    if field == "_id" || !leads {
        return Err(StoreError::Internal(format!(
            "index {table}.{index} does not start with the tenant field {field}, so it cannot be scoped to a company"
        )));
    }
    let company = company.encode();
    txn.query(table)?
        .with_index(index, move |q| range(q.eq(&field, company)))
}

/// Read access limited to a scope.
pub struct Scoped<'a> {
    pub(crate) txn: &'a mut Txn,
    pub(crate) scope: Scope,
}

impl Scoped<'_> {
    /// A document the scope can see; `None` for missing and foreign documents alike.
    pub fn get(&mut self, id: &DocumentId) -> store::Result<Option<Document>> {
        scoped_get(self.txn, &self.scope, id)
    }
    pub fn get_in(&mut self, table: &str, id: &str) -> store::Result<Option<Document>> {
        scoped_get_in(self.txn, &self.scope, table, id)
    }
    pub fn query(
        &mut self,
        table: &str,
        index: &str,
        range: impl FnOnce(RangeBuilder) -> RangeBuilder,
    ) -> store::Result<Query<'_>> {
        scoped_query(self.txn, &self.scope, table, index, range)
    }
    pub fn scope(&self) -> &Scope {
        &self.scope
    }
}

/// Read and write access limited to a scope.
pub struct ScopedWriter<'a> {
    pub(crate) txn: &'a mut Txn,
    pub(crate) scope: Scope,
}

impl ScopedWriter<'_> {
    pub fn get(&mut self, id: &DocumentId) -> store::Result<Option<Document>> {
        scoped_get(self.txn, &self.scope, id)
    }
    pub fn get_in(&mut self, table: &str, id: &str) -> store::Result<Option<Document>> {
        scoped_get_in(self.txn, &self.scope, table, id)
    }
    pub fn query(
        &mut self,
        table: &str,
        index: &str,
        range: impl FnOnce(RangeBuilder) -> RangeBuilder,
    ) -> store::Result<Query<'_>> {
        scoped_query(self.txn, &self.scope, table, index, range)
    }
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Inserts into the scope's company: the tenant field is filled in when absent, and a document
    /// naming another company is refused.
    pub fn insert(&mut self, table: &str, mut fields: Object) -> FnResult<DocumentId> {
        if let (Scope::Company(company), Some(field)) = (&self.scope, self.txn.tenant_field(table))
        {
            if field == "_id" {
                return Err(FunctionError::forbidden(
                    "Creating companies requires access to all companies",
                ));
            }
            let company = Value::from(company.encode());
            match fields.get(field) {
                None => {
                    fields.insert(field.to_string(), company);
                }
                Some(given) if *given == company => {}
                Some(_) => {
                    return Err(FunctionError::forbidden(
                        "Cannot create records in another company",
                    ))
                }
            }
        }
        Ok(self.txn.insert(table, fields)?)
    }

    /// The document if this scope may change it; missing and foreign ones are both "not found".
    fn owned(&mut self, id: &DocumentId) -> FnResult<Document> {
        self.get(id)?
            .ok_or_else(|| FunctionError::not_found("Record not found"))
    }

    fn tenant_unchanged(&self, doc: &Document, new_value: Option<&Value>) -> FnResult<()> {
        match self.txn.tenant_field(&doc.table) {
            Some(field) if field != "_id" && new_value != doc.get(field) => Err(
                FunctionError::forbidden("Records cannot be moved to another company"),
            ),
            _ => Ok(()),
        }
    }

    pub fn patch(&mut self, id: &DocumentId, patch: Patch) -> FnResult<()> {
        let doc = self.owned(id)?;
        if let Some(field) = self.txn.tenant_field(&doc.table).map(str::to_string) {
            if let Some(change) = patch.get(&field) {
                self.tenant_unchanged(&doc, change.as_ref())?;
            }
        }
        Ok(self.txn.patch(id, patch)?)
    }

    pub fn replace(&mut self, id: &DocumentId, fields: Object) -> FnResult<()> {
        let doc = self.owned(id)?;
        if let Some(field) = self.txn.tenant_field(&doc.table).map(str::to_string) {
            self.tenant_unchanged(&doc, fields.get(&field))?;
        }
        Ok(self.txn.replace(id, fields)?)
    }

    pub fn delete(&mut self, id: &DocumentId) -> FnResult<()> {
        self.owned(id)?;
        Ok(self.txn.delete(id)?)
    }
}
