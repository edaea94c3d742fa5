//! Authorisation: the role table and SMART scopes per interaction, and the [`Access`] a
//! request compiles into the store's SQL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use smr_access::policy::{self, PatientAccess};
use smr_access::{CareSetting, Interaction, ODS_SYSTEM, RequestContext, Role, ods_key};
use smr_fhir::query::{self, Handling};
use smr_store::{Access, PatientView};

use crate::{App, AppError, now_micros};

/// The keys an organisation is known by in care relationships and consent restrictions:
/// `ods:{CODE}` and `Organization/{id}` of every Organization carrying that ODS code.
pub type OrgKeys = Vec<String>;

/// How long organisation keys are trusted where the store cannot say whether Organizations
/// changed (PostgreSQL, where other nodes write).
const ORG_KEYS_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub(crate) struct OrgKeyCache {
    entries: Mutex<HashMap<String, CachedKeys>>,
}

#[derive(Debug, Clone)]
struct CachedKeys {
    keys: OrgKeys,
    /// The care setting the organisation's Organization resources state (`type`), if any.
    setting: Option<CareSetting>,
    /// The store's Organization change count when read (embedded store), else when.
    change_count: Option<u64>,
    read_at: Instant,
}

impl App {
    /// The caller's organisation keys (empty without an organisation).
    pub async fn org_keys(&self, ctx: &RequestContext) -> Result<OrgKeys, AppError> {
        Ok(self.organisation(ctx).await?.keys)
    }

    /// The care setting a write by `ctx` is recorded in (issue 8): the token's, when it states
    /// one; else the one SMR's Organization for the caller's ODS code states (so a `system`
    /// token of a hospital's interface engine, or a nurse of a care home, writes in the right
    /// setting); else the role's usual setting.
    pub(crate) async fn writer_setting(
        &self,
        ctx: &RequestContext,
    ) -> Result<CareSetting, AppError> {
        if ctx.principal.setting_claimed {
            return Ok(ctx.principal.setting);
        }
        Ok(self
            .organisation(ctx)
            .await?
            .setting
            .unwrap_or(ctx.principal.setting))
    }

    /// The caller's organisation as SMR holds it: its keys and stated setting, cached.
    async fn organisation(&self, ctx: &RequestContext) -> Result<CachedKeys, AppError> {
        let Some(code) = ctx.principal.organisation.as_deref() else {
            return Ok(CachedKeys {
                keys: Vec::new(),
                setting: None,
                change_count: None,
                read_at: Instant::now(),
            });
        };
        let count = self.store.change_count("Organization");
        if let Ok(entries) = self.orgs.entries.lock()
            && let Some(hit) = entries.get(code)
            && match count {
                Some(c) => hit.change_count == Some(c),
                None => hit.read_at.elapsed() < ORG_KEYS_TTL,
            }
        {
            return Ok(hit.clone());
        }
        let pairs = vec![("identifier".to_owned(), format!("{ODS_SYSTEM}|{code}"))];
        let mut request = query::parse("Organization", &pairs, Handling::Strict)
            .map_err(|_| AppError::BadRequest(format!("'{code}' is not a usable ODS code")))?
            .request;
        request.count = query::MAX_COUNT;
        request.total = query::TotalMode::None;
        let page = self.store.search(&request, &Access::unrestricted()).await?;
        let mut keys = vec![ods_key(code)];
        keys.extend(page.matches.iter().map(|r| r.reference()));
        // Several Organizations may carry one ODS code (a copy per loader); the first stating
        // a setting, in id order, decides.
        let setting = page.matches.iter().find_map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.body)
                .ok()
                .and_then(|o| smr_record::setting::organisation_setting(&o))
        });
        let profile = CachedKeys {
            keys,
            setting,
            change_count: count,
            read_at: Instant::now(),
        };
        if let Ok(mut entries) = self.orgs.entries.lock() {
            if entries.len() > 10_000 {
                entries.clear();
            }
            entries.insert(code.to_owned(), profile.clone());
        }
        Ok(profile)
    }

    /// What the request may see, as the store applies it.
    pub(crate) async fn access(&self, ctx: &RequestContext) -> Result<Access, AppError> {
        let keys = self.org_keys(ctx).await?;
        Ok(Access {
            patients: policy::patient_access(ctx, &keys),
            consent_actors: policy::consent_actors(ctx, &keys),
            at: now_micros(),
        })
    }

    /// The caller's view of one patient's record; `Forbidden` when they may not open it.
    pub(crate) async fn patient_view(
        &self,
        ctx: &RequestContext,
        access: &Access,
        patient: &str,
    ) -> Result<PatientView, AppError> {
        let view = self.store.patient_view(patient, access).await?;
        if view.allowed {
            Ok(view)
        } else {
            Err(AppError::forbidden(no_relationship(ctx, patient)))
        }
    }
}

/// Regional analytics (`what`: the PINCER aggregates, the analytics) are for analysts and
/// administrators only.
pub(crate) fn check_analyst(ctx: &RequestContext, what: &str) -> Result<(), AppError> {
    if matches!(
        ctx.principal.role,
        smr_access::Role::Analyst | smr_access::Role::Admin
    ) {
        Ok(())
    } else {
        Err(AppError::forbidden(format!(
            "role {} may not read {what} (analyst or admin only)",
            ctx.principal.role
        )))
    }
}

/// Checks the role table and the token's scopes for `interaction` on `res_type`.
pub(crate) fn check_interaction(
    ctx: &RequestContext,
    res_type: &str,
    interaction: Interaction,
) -> Result<(), AppError> {
    let p = &ctx.principal;
    if ctx.is_break_glass() && !policy::may_break_glass(p.role) {
        return Err(AppError::forbidden(format!(
            "role {} cannot use break-glass access",
            p.role
        )));
    }
    if !policy::role_allows(p.role, res_type, interaction) {
        return Err(AppError::forbidden(format!(
            "role {} may not {} {res_type}",
            p.role,
            verb(interaction)
        )));
    }
    if !p.scopes.allows(res_type, interaction) {
        return Err(AppError::forbidden(format!(
            "the token's scopes do not allow {} of {res_type}",
            verb(interaction)
        )));
    }
    Ok(())
}

/// Refuses a search or read of patient data by a caller who may see no patient at all, with
/// the reason (rather than an empty result they might take for "nothing recorded").
pub(crate) fn check_sees_patients(
    ctx: &RequestContext,
    access: &Access,
    res_type: &str,
) -> Result<(), AppError> {
    if access.patients == PatientAccess::Nobody && smr_store::is_patient_data(res_type) {
        let p = &ctx.principal;
        return Err(AppError::forbidden(match p.role {
            Role::Admin => "an administrator reads clinical records only with break-glass \
                            (X-Break-Glass-Reason)"
                .to_owned(),
            Role::Analyst => "an analyst sees disclosure-controlled aggregates only".to_owned(),
            _ => format!(
                "role {} has no organisation with care relationships in its token",
                p.role
            ),
        }));
    }
    Ok(())
}

pub(crate) fn no_relationship(ctx: &RequestContext, patient: &str) -> String {
    let p = &ctx.principal;
    match p.role {
        Role::Patient => "a patient may only open their own record".to_owned(),
        Role::Admin => "an administrator reads clinical records only with break-glass \
                        (X-Break-Glass-Reason)"
            .to_owned(),
        _ => format!(
            "organisation {} has no care relationship with Patient/{patient}; \
             in an emergency, repeat the request with X-Break-Glass-Reason",
            p.organisation.as_deref().unwrap_or("(none)")
        ),
    }
}

fn verb(interaction: Interaction) -> &'static str {
    match interaction {
        Interaction::Create => "create",
        Interaction::Read => "read",
        Interaction::Update => "update",
        Interaction::Delete => "delete",
        Interaction::Search => "search",
    }
}
