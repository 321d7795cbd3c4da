//! A large ledger for the ledger benchmark (`benches/ledger.rs`): [`write`] makes one as an
//! import of N rows leaves it (an `in_flight` and a `created` line per row, with ids, body
//! and field hashes); [`ask_every_row`] reads it as a re-run does and asks for every row.
//! The bench runs the reading in a process of its own, so its peak memory is the ledger's.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::{LedgerSnapshot, LineOut, field_hashes};

const SCOPE: &str = "https://test-management.testsigma.com/api/v1/projects/c47ade67-0543-4582-a4a5-b7de447c94f5";

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

/// Writes a ledger of `rows` rows to `path`; returns its size in bytes.
pub fn write(path: &Path, rows: usize) -> std::io::Result<u64> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for row in 0..rows {
        let (key, fields) = (key(row), body(row));
        let hashes = field_hashes(&fields);
        let body_hash = super::body_hash(serde_json::to_string(&fields)?.as_bytes());
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
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// How long reading a ledger and asking for every row took.
pub struct Asked {
    pub read: Duration,
    pub asked: Duration,
}

/// Reads the ledger [`write`] made of `rows` rows and asks for every row, as a re-run does;
/// an error says what did not read back as written.
pub fn ask_every_row(path: &Path, rows: usize) -> Result<Asked, String> {
    let started = Instant::now();
    let snapshot = LedgerSnapshot::read(path)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} holds no ledger", path.display()))?;
    let read = started.elapsed();
    let (mut created, mut elsewhere) = (0usize, 0usize);
    for row in 0..rows {
        let key = key(row);
        created += usize::from(snapshot.prior(SCOPE, &key).is_some_and(|p| p.is_created()));
        elsewhere += snapshot.sent_scopes(&key).len().saturating_sub(1);
    }
    if created != rows || elsewhere != 0 {
        return Err(format!(
            "{created} of {rows} rows read back as created, {elsewhere} sent elsewhere"
        ));
    }
    Ok(Asked {
        read,
        asked: started.elapsed() - read,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_written_ledger_reads_back_every_row_as_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let size = super::write(&path, 50).unwrap();
        assert!(size > 50 * 2 * 100, "{size} bytes for 100 lines");
        assert!(super::ask_every_row(&path, 50).is_ok());
        assert_eq!(
            super::ask_every_row(&path, 51).err().as_deref(),
            Some("50 of 51 rows read back as created, 0 sent elsewhere")
        );
    }
}
