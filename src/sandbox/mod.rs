//! The built-in sandbox payer: a partner to try edi-courier against, and
//! the other end of the end-to-end tests.
//!
//! [`payer`] decides what a payer answers to an 837 (no I/O); [`server`]
//! is the SSH/SFTP gateway in front of it.

pub mod kit;
pub mod payer;
pub mod server;

pub use kit::Kit;
pub use server::{Delays, Options, Sandbox, SandboxError};
