//! The end-to-end tests: the real binary against the sandbox over loopback HTTP, real
//! files written by real writers, and small loopback servers for faults the sandbox
//! cannot make. One test binary, a module per area; helpers live in `common`.

mod bad_days;
mod common;
mod everyday;
mod hostile;
mod interrupt;
mod lookup;
mod names;
mod nightly;
mod read;
mod rerun;
mod upload;
