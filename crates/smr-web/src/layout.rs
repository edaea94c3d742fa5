//! What every page shares: who is signed in, and the navigation their role gets. A new
//! top-level page (the ICB dashboards, say) is a new [`Section`] and one line in
//! [`Section::ALL`]; the layout template draws whatever [`nav`] returns.

/// The signed-in user, as the header shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// The token's name, else its user id.
    pub name: String,
    /// The SMR role name (`gp`, `patient`, …).
    pub role: String,
    /// Organisation ODS code, when the token names one.
    pub organisation: Option<String>,
    /// For a patient: their own Patient id.
    pub patient: Option<String>,
}

impl Viewer {
    /// The role in words, for the header.
    pub fn role_label(&self) -> &'static str {
        match self.role.as_str() {
            "gp" => "GP",
            "hospital-prescriber" => "Hospital prescriber",
            "hospital-pharmacist" => "Hospital pharmacist",
            "community-pharmacist" => "Community pharmacist",
            "nurse" => "Nurse",
            "care-worker" => "Care worker",
            "patient" => "Patient",
            "analyst" => "Analyst",
            "admin" => "Administrator",
            "system" => "Back-end system",
            _ => "User",
        }
    }

    /// Roles the access policy lets reconcile medicines (create Lists and
    /// MedicationStatements): only they are offered the reconciliation page.
    pub fn may_reconcile(&self) -> bool {
        matches!(
            self.role.as_str(),
            "gp" | "hospital-prescriber" | "hospital-pharmacist" | "system"
        )
    }

    pub fn is_patient(&self) -> bool {
        self.role == "patient"
    }

    /// Roles that open patients' records (the same roles the access policy lets read them).
    pub fn is_clinician(&self) -> bool {
        !matches!(self.role.as_str(), "patient" | "analyst")
    }
}

/// A top-level page of the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Find a patient, open their record (clinicians).
    Patients,
    /// My own record (patients).
    Me,
    /// The regional analytics dashboards (analysts and administrators).
    Icb,
    /// Anything else (sign-in, errors).
    Other,
}

impl Section {
    /// The sections in navigation order.
    pub const ALL: [Section; 3] = [Section::Patients, Section::Me, Section::Icb];

    fn entry(self) -> Option<(&'static str, &'static str)> {
        match self {
            Section::Patients => Some(("/app/patients", "Find a patient")),
            Section::Me => Some(("/app/me", "My record")),
            Section::Icb => Some(("/app/icb", "ICB dashboards")),
            Section::Other => None,
        }
    }

    fn shown_to(self, viewer: &Viewer) -> bool {
        match self {
            Section::Patients => viewer.is_clinician(),
            Section::Me => viewer.is_patient(),
            Section::Icb => matches!(viewer.role.as_str(), "analyst" | "admin"),
            Section::Other => false,
        }
    }
}

/// One navigation link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    /// Marked `aria-current="page"`.
    pub current: bool,
}

/// The links `viewer` gets, `current` marked.
pub fn nav(viewer: Option<&Viewer>, current: Section) -> Vec<NavItem> {
    let Some(viewer) = viewer else {
        return Vec::new();
    };
    Section::ALL
        .iter()
        .filter(|s| s.shown_to(viewer))
        .filter_map(|s| {
            s.entry().map(|(href, label)| NavItem {
                href,
                label,
                current: *s == current,
            })
        })
        .collect()
}

/// A demo sign-in offered on the sign-in page (when `smr serve` made them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoUser {
    /// What the button says ("GP", "patient", …); also what the form posts.
    pub label: String,
    /// ODS code, shown beside the label.
    pub organisation: Option<String>,
}

/// What the layout template needs on every page.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub title: String,
    pub viewer: Option<Viewer>,
    pub nav: Vec<NavItem>,
}

impl Chrome {
    pub fn new(title: impl Into<String>, viewer: Option<&Viewer>, section: Section) -> Self {
        Chrome {
            title: title.into(),
            viewer: viewer.cloned(),
            nav: nav(viewer, section),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(role: &str) -> Viewer {
        Viewer {
            name: "x".into(),
            role: role.into(),
            organisation: None,
            patient: None,
        }
    }

    #[test]
    fn each_role_gets_its_own_sections() {
        let gp = nav(Some(&viewer("gp")), Section::Patients);
        assert_eq!(gp.len(), 1);
        assert!(gp[0].current);
        let me = nav(Some(&viewer("patient")), Section::Other);
        assert_eq!(me.iter().map(|n| n.href).collect::<Vec<_>>(), ["/app/me"]);
        let analyst = nav(Some(&viewer("analyst")), Section::Icb);
        assert_eq!(
            analyst.iter().map(|n| n.href).collect::<Vec<_>>(),
            ["/app/icb"]
        );
        assert!(analyst[0].current);
        assert!(nav(None, Section::Other).is_empty());
    }
}
