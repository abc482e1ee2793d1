//! The built-in sandbox payer: a partner to try edi-courier against, and
//! the other end of the end-to-end tests.
//!
//! [`payer`] decides what a payer answers to an 837 (no I/O).

pub mod payer;
