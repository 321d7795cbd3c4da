//! Memory of a large ledger, measured by hand (not part of the suite): one ignored test
//! writes a ledger as an import of N rows leaves it (an `in_flight` and a `created` line per
//! row, with ids, body and field hashes), the other reads it as a re-run does and asks for
//! every row. Each runs in a process of its own under `/usr/bin/time -v`, so the reading
//! one's peak RSS is the ledger's cost:
//!
//! ```sh
//! LEDGER_MEM_FILE=/tmp/l.jsonl LEDGER_MEM_ROWS=1000000 \
//!     cargo test --release --lib ledger_mem_write -- --ignored --nocapture
//! LEDGER_MEM_FILE=/tmp/l.jsonl LEDGER_MEM_ROWS=1000000 /usr/bin/time -v \
//!     target/release/deps/testsigma_import-<hash> ledger_mem_read --ignored --nocapture
//! ```

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::{LedgerSnapshot, LineOut, field_hashes};

const SCOPE: &str = "https://test-management.testsigma.com/api/v1/projects/c47ade67-0543-4582-a4a5-b7de447c94f5";

fn settings() -> Option<(PathBuf, usize)> {
    let path = PathBuf::from(std::env::var_os("LEDGER_MEM_FILE")?);
    let rows = std::env::var("LEDGER_MEM_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    Some((path, rows))
}

fn key(row: usize) -> String {
    format!("human_id:RUN-{row:07}")
}

/// A request body of the contract's shape, different for every row.
fn body(row: usize) -> Map<String, Value> {
    let body = json!({
        "title": format!("Nightly regression {row}"),
        "description": "Imported from the Q3 plan",
        "status": "ACTIVE",
        "project_id": "c47ade67-0543-4582-a4a5-b7de447c94f5",
        "human_id": format!("RUN-{row:07}"),
        "selection_type": "STATIC",
        "static_selection_filters": [{"field": "id", "operator": "IN", "values": ["7f1c9a3e-2b4d-4e8f-9a1b-3c5d7e9f1a2b"]}],
        "start_date": 1_710_000_000 + row,
        "end_date": 1_710_086_400 + row,
        "assignee_id": "0d8f6c2a-5b3e-4f1d-8a7c-9e2b4d6f8a1c",
        "label_names": ["nightly", "regression"],
        "environment_ids": ["5e7a9c1b-3d5f-4a7c-9e1b-3d5f7a9c1e3b"],
    });
    match body {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[test]
#[ignore = "writes a large ledger; run by hand, see the module doc"]
fn ledger_mem_write() {
    let Some((path, rows)) = settings() else { return };
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for row in 0..rows {
        let (key, fields) = (key(row), body(row));
        let hashes = field_hashes(&fields);
        let body_hash = super::body_hash(serde_json::to_string(&fields).unwrap().as_bytes());
        let run_id = format!("{:08x}-4b2c-4d3e-8f4a-{:012x}", row, row * 7);
        let human = format!("TR-{}", row + 1);
        let in_flight = LineOut::entry("in_flight", SCOPE, &key, row + 2);
        let created = LineOut {
            test_run_id: Some(&run_id),
            test_run_human_id: Some(&human),
            body: Some(&body_hash),
            fields: Some(&hashes),
            ..LineOut::entry("created", SCOPE, &key, row + 2)
        };
        for line in [in_flight, created] {
            serde_json::to_writer(&mut out, &line).unwrap();
            out.write_all(b"\n").unwrap();
        }
    }
    out.flush().unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "{rows} rows, {} lines, {size} bytes: {:.0} bytes a line, {:.0} a row",
        rows * 2,
        size as f64 / (rows * 2) as f64,
        size as f64 / rows as f64
    );
}

#[test]
#[ignore = "reads a large ledger; run by hand under /usr/bin/time -v, see the module doc"]
fn ledger_mem_read() {
    let Some((path, rows)) = settings() else { return };
    let started = std::time::Instant::now();
    let snapshot = LedgerSnapshot::read(&path).unwrap().unwrap();
    let read = started.elapsed();
    let (mut created, mut elsewhere) = (0usize, 0usize);
    for row in 0..rows {
        let key = key(row);
        created += usize::from(snapshot.prior(SCOPE, &key).is_some_and(|p| p.is_created()));
        elsewhere += snapshot.sent_scopes(&key).len().saturating_sub(1);
    }
    assert_eq!(created, rows);
    assert_eq!(elsewhere, 0);
    println!(
        "read in {:.2} s, every row asked for in {:.2} s more",
        read.as_secs_f64(),
        (started.elapsed() - read).as_secs_f64()
    );
}
