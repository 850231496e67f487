#![doc = include_str!("../README.md")]

pub mod model;
pub mod service;

pub use model::*;
pub use service::*;
