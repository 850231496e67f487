#![doc = include_str!("../README.md")]

pub mod model;
pub mod service;
pub mod spreadsheet;

pub use model::*;
pub use service::*;
pub use shutong_identity::DepartmentId;
