//! Reading one company: the caller's own (`getCurrentUserCompany`) and one by id for its admins and
//! platform administrators (`getCompanyDetails`).

use functions::{FnResult, QueryCtx};

use super::{company_row, scope_for_company, CompanyDoc, CompanyIdArgs};
use crate::args::SessionArgs;
use crate::identity::{require_permission, require_session, Permission};

/// `companies/getCompany:getCurrentUserCompany`: the signed-in user's company, or `null` for a user
/// without one (system administrators): the company pages show a friendly message for `null`.
pub fn get_current_user_company(
    ctx: &mut QueryCtx<'_>,
    _args: SessionArgs,
) -> FnResult<Option<CompanyDoc>> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let Some(company_id) = viewer.company_id else {
        return Ok(None);
    };
    let scope = viewer.company_scope()?;
    let company = ctx.db.scoped(&scope).get(&company_id)?;
    company.as_ref().map(company_row).transpose()
}

/// `companies/getCompanyDetails`: a company for its own admins, or any company for holders of
/// `manage_all_companies`; `null` when missing. Another company's id also answers `null` (the
/// reference said "You can only view your own company details", confirming the id exists).
pub fn get_company_details(
    ctx: &mut QueryCtx<'_>,
    args: CompanyIdArgs,
) -> FnResult<Option<CompanyDoc>> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::ManageCompany)?;
    let Some(company_id) = ctx.db.normalize_id("companies", &args.company_id) else {
        return Ok(None);
    };
    let grant = ctx.cross_tenant()?;
    let Ok(scope) = scope_for_company(&viewer, &company_id, &grant) else {
        return Ok(None);
    };
    let company = ctx.db.scoped(&scope).get(&company_id)?;
    company.as_ref().map(company_row).transpose()
}
