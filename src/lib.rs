//! testsigma-import: spreadsheet rows → Testsigma test runs.
//!
//! The stages, in the order a row meets them: `read` (rows of cells out of delimited text
//! and workbooks, headers mapped to fields) → `validate` (a row → a `request`, or every
//! problem with it) → `ledger` and `service` (what already exists) → `upload` (paced,
//! retried, one outcome per row) → `report` (what happened, durably). `commands` strings
//! them together; `settings` resolves the flags once; `ui` is all the terminal sees;
//! `sandbox` is the local stand-in for the service. docs/DESIGN.md has the map.
//!
//! The modules are private to the crate. What the binary, the end-to-end tests, the
//! benchmarks and the fuzz targets use is re-exported here, and nothing else.

pub mod cli;
mod commands;
mod exit;
mod ledger;
mod read;
pub mod redact;
mod report;
mod request;
pub mod sandbox;
mod service;
mod settings;
mod ui;
mod upload;
mod validate;

pub use commands::template;
pub use commands::{refused_args_in_summary, run};
pub use exit::Exit;
pub use ledger::sample as ledger_sample;
pub use read::mapping::Field;
pub use read::row::SourceRow;
pub use read::{Input, RowSource, SourceOptions, open_source};
pub use report::{Outcome, ReportRow};
pub use request::plan::{plan_line, write_plan_line};
pub use validate::RowRules;
pub use validate::date_order::OrderEvidence;
pub use validate::dates::{DateOrder, DateValue, DayBound, parse_date};
pub use validate::stage::{ReadSettings, RowEvent, open_read_stage};
