#![doc = include_str!("../README.md")]

pub mod model;
pub mod password;
pub mod principal;
pub mod service;
pub mod signing;

pub use model::*;
pub use principal::{Principal, RoleAssignment};
pub use service::*;
