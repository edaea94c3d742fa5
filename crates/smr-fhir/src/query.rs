//! Parsing a FHIR search query into typed criteria. OWNER: lead.
