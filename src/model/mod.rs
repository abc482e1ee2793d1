//! The canonical model: what every input export is mapped to and what every
//! X12 reader produces.
//!
//! One model serves the whole pipeline, so a claim read back from an 837 can be
//! compared field for field with the claim that was written. Money is
//! [`rust_decimal::Decimal`] everywhere (never floating point); dates are
//! [`chrono::NaiveDate`]. The JSON form of [`ClaimFile`] is the "canonical
//! JSON" input that `translate` accepts without a map; `examples/claims.json`
//! shows a complete one. What partners answer (TA1, 999, 277CA, 835) is in
//! [`response`].

mod claim;
mod redact;
pub mod response;

pub use claim::*;
