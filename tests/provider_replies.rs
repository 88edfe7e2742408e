//! Conformance to the seed guide.
