#![doc = include_str!("../README.md")]

pub mod cli;
pub mod data_cli;
pub mod demo;
pub mod keys_cli;
pub mod lines;
pub mod node_cli;
pub mod quality_cli;
pub mod server;
pub mod sharing_cli;
pub mod systems_cli;
