//! One askama template per page, and the functions that render them. Templates live in
//! `templates/`; all extend `base.html` (skip link, header with navigation, `lang="en-GB"`).
//! askama escapes every `{{ }}` for HTML; nothing here is marked safe.

use askama::Template;

use crate::RenderError;
use crate::access_log::AccessEntry;
use crate::consent::{ConsentChoice, ConsentOption};
use crate::issues::IssueView;
use crate::layout::{Chrome, DemoUser, Section, Viewer};
use crate::patients::PatientSummary;
use crate::pgx::PgxPanel;
use crate::record::RecordView;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    page: Chrome,
    demo: &'a [DemoUser],
    message: Option<&'a str>,
}

/// The sign-in form, with the demo users when there are any.
pub fn sign_in(demo: &[DemoUser], message: Option<&str>) -> Result<String, RenderError> {
    Ok(SignInPage {
        page: Chrome::new("Sign in", None, Section::Other),
        demo,
        message,
    }
    .render()?)
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    page: Chrome,
    heading: &'a str,
    message: &'a str,
}

/// A friendly error page (the status is the caller's).
pub fn error(viewer: Option<&Viewer>, heading: &str, message: &str) -> Result<String, RenderError> {
    Ok(ErrorPage {
        page: Chrome::new(heading, viewer, Section::Other),
        heading,
        message,
    }
    .render()?)
}

#[derive(Template)]
#[template(path = "patients.html")]
struct PatientsPage<'a> {
    page: Chrome,
    query: &'a str,
    searched: bool,
    results: &'a [PatientSummary],
    /// The NHS number searched for, when the search was by one (for the break-glass offer).
    nhs_number: Option<&'a str>,
}

/// Patient search: the box, and the results when `searched`.
pub fn patients(
    viewer: &Viewer,
    query: &str,
    searched: bool,
    results: &[PatientSummary],
    nhs_number: Option<&str>,
) -> Result<String, RenderError> {
    Ok(PatientsPage {
        page: Chrome::new("Find a patient", Some(viewer), Section::Patients),
        query,
        searched,
        results,
        nhs_number,
    }
    .render()?)
}

#[derive(Template)]
#[template(path = "break_glass.html")]
struct BreakGlassPage<'a> {
    page: Chrome,
    patient_id: &'a str,
    refusal: &'a str,
}

/// The prompt a clinician without a care relationship gets instead of the record.
pub fn break_glass(
    viewer: &Viewer,
    patient_id: &str,
    refusal: &str,
) -> Result<String, RenderError> {
    Ok(BreakGlassPage {
        page: Chrome::new("Emergency access", Some(viewer), Section::Patients),
        patient_id,
        refusal,
    }
    .render()?)
}

/// What a clinician's record page shows.
pub struct RecordContent {
    pub patient_id: String,
    pub patient: Option<PatientSummary>,
    pub record: RecordView,
    pub pgx: PgxPanel,
    /// Stored, active DetectedIssues (PGx and safety alerts).
    pub alerts: Vec<IssueView>,
    /// The reason, when the page was opened by break-glass.
    pub break_glass: Option<String>,
}

#[derive(Template)]
#[template(path = "record.html")]
struct RecordPage<'a> {
    page: Chrome,
    patient_id: &'a str,
    patient: &'a Option<PatientSummary>,
    record: &'a RecordView,
    pgx: &'a PgxPanel,
    alerts: &'a [IssueView],
    break_glass: &'a Option<String>,
}

/// A patient's single medication record, PGx panel and alerts.
pub fn record(viewer: &Viewer, content: &RecordContent) -> Result<String, RenderError> {
    let title = content
        .patient
        .as_ref()
        .map_or_else(|| "Patient record".to_owned(), |p| p.name.clone());
    Ok(RecordPage {
        page: Chrome::new(title, Some(viewer), Section::Patients),
        patient_id: &content.patient_id,
        patient: &content.patient,
        record: &content.record,
        pgx: &content.pgx,
        alerts: &content.alerts,
        break_glass: &content.break_glass,
    }
    .render()?)
}

/// What a patient's own page shows.
pub struct MeContent {
    pub patient: Option<PatientSummary>,
    pub record: RecordView,
    pub pgx: PgxPanel,
    pub access: Vec<AccessEntry>,
    pub consents: Vec<ConsentChoice>,
    /// The consent form's checkboxes.
    pub consent_options: Vec<ConsentOption>,
    /// Say that the choices were just saved.
    pub saved: bool,
}

#[derive(Template)]
#[template(path = "me.html")]
struct MePage<'a> {
    page: Chrome,
    patient: &'a Option<PatientSummary>,
    record: &'a RecordView,
    pgx: &'a PgxPanel,
    access: &'a [AccessEntry],
    consents: &'a [ConsentChoice],
    consent_options: &'a [ConsentOption],
    saved: bool,
}

/// The signed-in patient's own view.
pub fn me(viewer: &Viewer, content: &MeContent) -> Result<String, RenderError> {
    Ok(MePage {
        page: Chrome::new("My record", Some(viewer), Section::Me),
        patient: &content.patient,
        record: &content.record,
        pgx: &content.pgx,
        access: &content.access,
        consents: &content.consents,
        consent_options: &content.consent_options,
        saved: content.saved,
    }
    .render()?)
}

#[derive(Template)]
#[template(path = "icb.html")]
struct IcbPage<'a> {
    page: Chrome,
    dashboard: &'a crate::icb::IcbDashboard,
}

/// The ICB dashboards (analysts).
pub fn icb(viewer: &Viewer, dashboard: &crate::icb::IcbDashboard) -> Result<String, RenderError> {
    Ok(IcbPage {
        page: Chrome::new("ICB dashboards", Some(viewer), Section::Icb),
        dashboard,
    }
    .render()?)
}

#[derive(Template)]
#[template(path = "icb_safety.html")]
struct IcbSafetyPage<'a> {
    page: Chrome,
    safety: &'a crate::icb::IcbSafety,
}

/// The ICB prescribing-safety dashboard (analysts).
pub fn icb_safety(viewer: &Viewer, safety: &crate::icb::IcbSafety) -> Result<String, RenderError> {
    Ok(IcbSafetyPage {
        page: Chrome::new("Prescribing safety", Some(viewer), Section::Icb),
        safety,
    }
    .render()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gp() -> Viewer {
        Viewer {
            name: "Dr <b>Who</b>".into(),
            role: "gp".into(),
            organisation: Some("Y90001".into()),
            patient: None,
        }
    }

    #[test]
    fn pages_escape_what_they_show() {
        let html = error(Some(&gp()), "Oops", "<script>alert(1)</script>").expect("render");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{html}"
        );
        assert!(!html.contains("<script>"));
        assert!(html.contains("Dr &#60;b&#62;Who&#60;/b&#62;"));
        assert!(html.contains(r#"<html lang="en-GB">"#));
        assert!(html.contains(r##"href="#main""##));
    }

    #[test]
    fn the_sign_in_page_offers_the_demo_users() {
        let demo = [DemoUser {
            label: "GP".into(),
            organisation: Some("Y90001".into()),
        }];
        let html = sign_in(&demo, None).expect("render");
        assert!(html.contains(r#"name="demo" value="GP""#), "{html}");
        assert!(
            sign_in(&[], None)
                .expect("render")
                .contains("name=\"token\"")
        );
    }
}
