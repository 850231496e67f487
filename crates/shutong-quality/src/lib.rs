#![doc = include_str!("../README.md")]

pub mod check;
pub mod consistency;
pub mod model;
pub mod objection;
pub mod service;
pub mod theme;

pub use consistency::*;
pub use model::*;
pub use objection::*;
pub use service::*;
pub use theme::*;

/// Failing keys kept per rule and check (masked).
pub const SAMPLE_LIMIT: usize = 20;
