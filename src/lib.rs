//! testsigma-import: spreadsheet rows → Testsigma test runs.
//!
//! The stages, in the order a row meets them:
//! `source` (rows out of CSV and workbooks) → `mapping` (headers → fields) → `dates` and
//! `validate` (a row → a request, or every problem) → `upload` (paced, concurrent, retried,
//! one outcome per row; through `api`) → `report` and `ledger` (what happened, durably).
//! `import` strings them together; `sandbox` is the local stand-in for the service.

pub mod cli;
pub mod commands;
pub mod exit;
pub mod ledger;
pub mod read;
pub mod redact;
pub mod report;
pub mod request;
pub mod sandbox;
pub mod service;
pub mod settings;
pub mod ui;
pub mod upload;
pub mod validate;

pub use commands::{refused_args_in_summary, run};
