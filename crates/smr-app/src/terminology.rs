//! The drug dictionary the application answers from: the imported dm+d release (from the
//! store) layered over the built-in starter dictionary and the PGx subset; and the import of
//! a new release, for administrators and back-end systems only.
//!
//! The dictionary lives in memory (a full release is ~1 M concepts; lookups happen on every
//! medication write) and is swapped whole after an import commits. Another process sharing a
//! PostgreSQL store sees a new release after [`App::load_terminology`] (at start, or when
//! told).

use std::sync::{Arc, RwLock};

use smr_dmd::{ConceptRow, Counts, Dictionary, Layered, MedicineLookup};
use smr_store::{DmdRelease, DmdRow};

use crate::audit::{self, AuditAction, Event};
use crate::{App, AppError, RequestContext, Role};

/// The current layered dictionary, swapped whole.
#[derive(Debug)]
pub(crate) struct Terminology {
    current: RwLock<Arc<Layered>>,
}

impl Default for Terminology {
    fn default() -> Self {
        Terminology {
            current: RwLock::new(Arc::new(Layered::default())),
        }
    }
}

impl Terminology {
    fn get(&self) -> Arc<Layered> {
        // A poisoned lock only means a panic elsewhere while swapping an Arc: the value is
        // still a whole dictionary.
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set(&self, imported: Option<Arc<Dictionary>>) {
        let layered = Arc::new(Layered::new(imported));
        match self.current.write() {
            Ok(mut g) => *g = layered,
            Err(p) => *p.into_inner() = layered,
        }
    }
}

/// The dictionary as the store's rows.
fn to_stored(dictionary: &Dictionary) -> DmdRelease {
    DmdRelease {
        release: dictionary.release().to_owned(),
        imported_at: String::new(),
        counts: serde_json::to_string(&dictionary.counts()).unwrap_or_default(),
        rows: dictionary
            .to_rows()
            .into_iter()
            .map(|r| DmdRow {
                code: r.code,
                level: r.level,
                name: r.name,
                body: r.body,
                current_code: r.current_code,
            })
            .collect(),
    }
}

fn from_stored(release: DmdRelease) -> Result<Dictionary, AppError> {
    let rows = release.rows.into_iter().map(|r| ConceptRow {
        code: r.code,
        level: r.level,
        name: r.name,
        body: r.body,
        current_code: r.current_code,
    });
    let source = smr_dmd::release::source_of(&release.release);
    Dictionary::from_rows(&release.release, &source, rows).map_err(|e| {
        AppError::Store(smr_store::StoreError::Internal(format!(
            "the imported dm+d release cannot be read back: {e}"
        )))
    })
}

impl App {
    /// The dictionary medication entries are resolved against: the imported release (if
    /// any) over the starter dictionary over the PGx subset.
    pub fn medicine_lookup(&self) -> Arc<dyn MedicineLookup + Send + Sync> {
        self.terminology.get()
    }

    /// The same, with its layers (for concept lookups by level).
    pub fn dictionary(&self) -> Arc<Layered> {
        self.terminology.get()
    }

    /// Loads the imported release from the store (call at start); returns its identifier,
    /// `None` when none has been imported (the built-in dictionaries answer alone).
    pub async fn load_terminology(&self) -> Result<Option<String>, AppError> {
        let imported = match self.store.load_dmd().await? {
            Some(release) => Some(Arc::new(from_stored(release)?)),
            None => None,
        };
        let id = imported.as_ref().map(|d| d.release().to_owned());
        self.terminology.set(imported);
        Ok(id)
    }

    /// Replaces the imported dm+d release with `dictionary` (parsed by the caller), for an
    /// administrator or a back-end system. One transaction with its AuditEvent: on any error
    /// the previous release stays, in the store and in memory. Refusals and failures are
    /// audited too.
    pub async fn import_dmd(
        &self,
        ctx: &RequestContext,
        dictionary: Dictionary,
    ) -> Result<Counts, AppError> {
        let event = Event::new("operation", AuditAction::Update).detail("import-dmd");
        if !matches!(ctx.principal.role, Role::Admin | Role::System) {
            let refused = AppError::forbidden(format!(
                "role {} may not import a drug dictionary",
                ctx.principal.role
            ));
            return self.audited(ctx, event, Err(refused)).await;
        }
        let event = event.query(format!("release={}", dictionary.release()));
        let counts = dictionary.counts();
        let record = audit::record(ctx, &event);
        let written = self
            .store
            .replace_dmd_release(&to_stored(&dictionary), Some(record))
            .await;
        if let Err(e) = written {
            let error = AppError::from(e);
            if let Err(e) = self.audit(ctx, &event.failed(&error)).await {
                tracing::error!(error = %e, "audit record of a failed dm+d import not written");
            }
            return Err(error);
        }
        self.terminology.set(Some(Arc::new(dictionary)));
        Ok(counts)
    }
}
