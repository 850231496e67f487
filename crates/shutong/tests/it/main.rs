//! The integration tests, in one binary so that the whole server is linked once: a module per feature,
//! each test on a database of its own (a temporary SQLite file, or a new PostgreSQL database), most of them
//! on both backends through `on_both_backends!`.
//!
//! - `api`: the HTTP API end to end, the unit of work, migrations, the portal's forms.
//! - `at_rest`: sensitive items encrypted at rest, key rotation, rekey and retirement.
//! - `atomicity`: every audited action with a failure injected between its change and its event.
//! - `audit_chain`: the tamper-evident trail (SM3 chain, SM2 checkpoints, OpenSSL, archives).
//! - `browser`: the portal in headless Chromium.
//! - `catalog`, `sharing`, `exchange`: the capabilities C2, C3, C4.
//! - `cli`: the binary's commands.
//! - `client`: the typed client (`shutong-client`), signed requests included.
//! - `node`: the exchange node (前置机): publications, subscriptions, heartbeats, the long-poll change feed.
//! - `pool_schema`: the pool database's versioned migrations, and adopting a pool from before them.
//! - `objections`: 疑义校核, the 校核中 flag in every read, answers, escalation, deadlines (R-Q-1).
//! - `quality`: data quality rules, checks after batches and on request, the results' history, scores (C6).
//! - `security`: every operation × every role, hostile input.
//! - `systems`: the inventory of information systems, zombie verdicts, projects and their funding gates (C8, C9).
//! - `tidy`: the architecture's invariants, checked over the source tree.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failed unwrap is a failed test.

#[macro_use]
mod common;

mod api;
mod at_rest;
mod atomicity;
mod audit_chain;
mod browser;
mod catalog;
mod cli;
mod client;
mod exchange;
mod figures;
mod node;
mod node_refusals;
mod objections;
mod pool_schema;
mod quality;
mod security;
mod sharing;
mod systems;
mod tidy;
