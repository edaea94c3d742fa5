//! Pharmacogenomic prescribing recommendations for SMR.
