//! The resource types SMR serves, and how each one belongs to a patient.
//!
//! Membership of the patient compartment comes from the R4 CompartmentDefinition `patient`
//! (http://hl7.org/fhir/R4/compartmentdefinition-patient.html). SMR keys every stored row by
//! one *owning* patient (the distribution key on Citus), taken from the first of the
//! compartment's search parameters that references a Patient. Resources outside the compartment
//! (Practitioner, Medication, ...) are keyed by their own `Type/id`, so they spread evenly too.

/// A served resource type with its patient-compartment parameters, in the order SMR tries
/// them to find the owning patient.
#[derive(Debug, Clone, Copy)]
pub struct ServedType {
    pub name: &'static str,
    /// Search parameters (reference type) that put an instance in a patient's compartment.
    pub compartment_params: &'static [&'static str],
}

/// Every type SMR stores. A `Bundle` is stored only when it is a `collection` or `document`
/// (see [`crate::stored_bundle`]); transaction and batch Bundles are processed at the base URL.
pub const SERVED_TYPES: &[ServedType] = &[
    ServedType {
        name: "AllergyIntolerance",
        compartment_params: &["patient", "recorder", "asserter"],
    },
    ServedType {
        name: "AuditEvent",
        compartment_params: &["patient"],
    },
    // Not in the R4 patient compartment: a stored Bundle's patient is read from its content
    // (`stored_bundle::owner`), not from a search parameter of its own.
    ServedType {
        name: "Bundle",
        compartment_params: &[],
    },
    ServedType {
        name: "Condition",
        compartment_params: &["patient", "asserter"],
    },
    ServedType {
        name: "Consent",
        compartment_params: &["patient"],
    },
    ServedType {
        name: "DetectedIssue",
        compartment_params: &["patient"],
    },
    ServedType {
        name: "Encounter",
        compartment_params: &["subject"],
    },
    // R4 CompartmentDefinition `patient`: EpisodeOfCare is in the compartment by `patient`.
    ServedType {
        name: "EpisodeOfCare",
        compartment_params: &["patient"],
    },
    // R4 CompartmentDefinition `patient`: Immunization is in the compartment by `patient`.
    // Bulk Data export's `Group/{id}/$export` (issue 9): a cohort whose `member`s are Patients.
    // Not keyed by a member (a Group is many patients' cohort): shared, keyed by `Group/id`.
    ServedType {
        name: "Group",
        compartment_params: &[],
    },
    ServedType {
        name: "Immunization",
        compartment_params: &["patient"],
    },
    ServedType {
        name: "List",
        compartment_params: &["subject", "source"],
    },
    ServedType {
        name: "Location",
        compartment_params: &[],
    },
    ServedType {
        name: "Medication",
        compartment_params: &[],
    },
    ServedType {
        name: "MedicationAdministration",
        compartment_params: &["patient", "performer", "subject"],
    },
    ServedType {
        name: "MedicationDispense",
        compartment_params: &["subject", "patient", "receiver"],
    },
    ServedType {
        name: "MedicationRequest",
        compartment_params: &["subject"],
    },
    ServedType {
        name: "MedicationStatement",
        compartment_params: &["subject"],
    },
    ServedType {
        name: "Observation",
        compartment_params: &["subject", "performer"],
    },
    ServedType {
        name: "Organization",
        compartment_params: &[],
    },
    ServedType {
        name: "Patient",
        compartment_params: &["link"],
    },
    ServedType {
        name: "Practitioner",
        compartment_params: &[],
    },
    ServedType {
        name: "PractitionerRole",
        compartment_params: &[],
    },
    ServedType {
        name: "Provenance",
        compartment_params: &["patient"],
    },
    // Outside any patient's record: who may read one is decided by the patient its criteria
    // names (`smr-app`'s `subscriptions`).
    ServedType {
        name: "Subscription",
        compartment_params: &[],
    },
];

pub fn served(name: &str) -> Option<&'static ServedType> {
    SERVED_TYPES.iter().find(|t| t.name == name)
}

pub fn is_served(name: &str) -> bool {
    served(name).is_some()
}

/// The patient-compartment parameters of a served type in a patient's record; `None` for
/// types outside it (and types SMR does not serve).
pub fn patient_compartment_params(name: &str) -> Option<&'static [&'static str]> {
    served(name)
        .map(|t| t.compartment_params)
        .filter(|p| !p.is_empty())
}

/// All R4 resource type names, so a reference's type can be recognised even when SMR does not
/// serve that type (e.g. `Group/1` as a subject).
pub fn is_r4_resource_type(name: &str) -> bool {
    R4_RESOURCE_TYPES.binary_search(&name).is_ok()
}

// Sorted (binary search). From the R4 resource list: http://hl7.org/fhir/R4/resourcelist.html
const R4_RESOURCE_TYPES: &[&str] = &[
    "Account",
    "ActivityDefinition",
    "AdverseEvent",
    "AllergyIntolerance",
    "Appointment",
    "AppointmentResponse",
    "AuditEvent",
    "Basic",
    "Binary",
    "BiologicallyDerivedProduct",
    "BodyStructure",
    "Bundle",
    "CapabilityStatement",
    "CarePlan",
    "CareTeam",
    "CatalogEntry",
    "ChargeItem",
    "ChargeItemDefinition",
    "Claim",
    "ClaimResponse",
    "ClinicalImpression",
    "CodeSystem",
    "Communication",
    "CommunicationRequest",
    "CompartmentDefinition",
    "Composition",
    "ConceptMap",
    "Condition",
    "Consent",
    "Contract",
    "Coverage",
    "CoverageEligibilityRequest",
    "CoverageEligibilityResponse",
    "DetectedIssue",
    "Device",
    "DeviceDefinition",
    "DeviceMetric",
    "DeviceRequest",
    "DeviceUseStatement",
    "DiagnosticReport",
    "DocumentManifest",
    "DocumentReference",
    "EffectEvidenceSynthesis",
    "Encounter",
    "Endpoint",
    "EnrollmentRequest",
    "EnrollmentResponse",
    "EpisodeOfCare",
    "EventDefinition",
    "Evidence",
    "EvidenceVariable",
    "ExampleScenario",
    "ExplanationOfBenefit",
    "FamilyMemberHistory",
    "Flag",
    "Goal",
    "GraphDefinition",
    "Group",
    "GuidanceResponse",
    "HealthcareService",
    "ImagingStudy",
    "Immunization",
    "ImmunizationEvaluation",
    "ImmunizationRecommendation",
    "ImplementationGuide",
    "InsurancePlan",
    "Invoice",
    "Library",
    "Linkage",
    "List",
    "Location",
    "Measure",
    "MeasureReport",
    "Media",
    "Medication",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationKnowledge",
    "MedicationRequest",
    "MedicationStatement",
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "MessageDefinition",
    "MessageHeader",
    "MolecularSequence",
    "NamingSystem",
    "NutritionOrder",
    "Observation",
    "ObservationDefinition",
    "OperationDefinition",
    "OperationOutcome",
    "Organization",
    "OrganizationAffiliation",
    "Parameters",
    "Patient",
    "PaymentNotice",
    "PaymentReconciliation",
    "Person",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
    "RelatedPerson",
    "RequestGroup",
    "ResearchDefinition",
    "ResearchElementDefinition",
    "ResearchStudy",
    "ResearchSubject",
    "RiskAssessment",
    "RiskEvidenceSynthesis",
    "Schedule",
    "SearchParameter",
    "ServiceRequest",
    "Slot",
    "Specimen",
    "SpecimenDefinition",
    "StructureDefinition",
    "StructureMap",
    "Subscription",
    "Substance",
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
    "SupplyDelivery",
    "SupplyRequest",
    "Task",
    "TerminologyCapabilities",
    "TestReport",
    "TestScript",
    "ValueSet",
    "VerificationResult",
    "VisionPrescription",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_type_list_is_sorted_for_binary_search() {
        assert!(R4_RESOURCE_TYPES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(R4_RESOURCE_TYPES.len(), 146);
    }

    #[test]
    fn every_served_type_is_an_r4_type() {
        for t in SERVED_TYPES {
            assert!(is_r4_resource_type(t.name), "{}", t.name);
        }
        assert!(is_served("Bundle"));
        assert!(is_served("MedicationRequest"));
        assert!(is_served("EpisodeOfCare") && is_served("Immunization"));
        assert!(
            SERVED_TYPES.windows(2).all(|w| w[0].name < w[1].name),
            "SERVED_TYPES is kept in alphabetical order"
        );
    }

    /// The compartment parameters are the R4 CompartmentDefinition `patient`'s, type by type
    /// (checked against the shared copy of the definition when it is present).
    #[test]
    fn compartment_params_match_the_r4_compartment_definition() {
        let Some(path) =
            smr_testdata::shared("reference/fhir/r4-spec/compartmentdefinition-patient.json")
        else {
            return;
        };
        let text = std::fs::read_to_string(&path).expect("readable CompartmentDefinition");
        let def: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let resources = def["resource"].as_array().expect("resource array");
        for t in SERVED_TYPES {
            // The one deliberate difference: R4 puts a Group in each member's compartment
            // (`member`); SMR keys a Group (an export cohort of many patients) by its own id,
            // since a row has one owning patient.
            if t.name == "Group" {
                continue;
            }
            let entry = resources
                .iter()
                .find(|r| r["code"] == t.name)
                .unwrap_or_else(|| panic!("{} not in the CompartmentDefinition", t.name));
            let params: Vec<&str> = entry["param"]
                .as_array()
                .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
                .unwrap_or_default();
            assert_eq!(params, t.compartment_params, "{}", t.name);
        }
    }
}
