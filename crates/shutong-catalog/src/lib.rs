#![doc = include_str!("../README.md")]

pub mod model;
pub mod rules;
pub mod search;
pub mod service;
pub mod spreadsheet;
pub mod transfer;

pub use model::*;
pub use service::*;
