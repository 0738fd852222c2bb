//! Companies (the tenants) and their sites.

use config::Urls;
use functions::Registry;
use store::TableDef;
use values::validator::v;

pub const STATUSES: [&str; 4] = ["active", "trial", "suspended", "test"];

pub fn tables() -> Vec<TableDef> {
    vec![
        TableDef::new("companies")
            .field("name", v::string())
            .field("slug", v::string())
            .field("contact_email", v::string())
            .field(
                "status",
                v::union(STATUSES.iter().map(|s| v::literal(*s)).collect()),
            )
            .field("created_at", v::number())
            .optional("created_by", v::id("users"))
            .optional("updated_at", v::number())
            .index("by_slug", &["slug"])
            .index("by_status", &["status"])
            .index("by_contact_email", &["contact_email"])
            .tenant("_id"),
        TableDef::new("sites")
            .field("company_id", v::id("companies"))
            .field("name", v::string())
            .field("created_at", v::number())
            .optional("created_by", v::id("users"))
            .optional("updated_at", v::number())
            .index("by_company_name", &["company_id", "name"])
            .tenant("company_id"),
    ]
}

pub fn register(_r: &mut Registry, _urls: &Urls) {}
