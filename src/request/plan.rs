//! A request as JSON, written by serde_json: the body ([`TestRunBody::to_json`], the bytes
//! the ledger hashes) and the `--plan` line around it.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::request::{PlannedRow, TestRunBody};

impl TestRunBody {
    /// The body as compact JSON, fields in the vendor page's order, absent optional
    /// fields left out.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        // Strings, integers and lists of them: serde_json cannot fail on these.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// One `--plan` line, in this key order.
#[derive(Serialize)]
struct PlanLine<'a> {
    row: usize,
    method: &'static str,
    path: String,
    body: &'a TestRunBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    unresolved: Option<Unresolved<'a>>,
}

/// What is still to be looked up before the request is sent.
#[derive(Serialize)]
struct Unresolved<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    assignee_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_case_ids: Option<&'a [String]>,
}

/// Appends one `--plan` line: `{"row":N,"method":"POST","path":"…","body":{…}}`, with
/// `"unresolved":{"assignee_id":"…","test_case_ids":["TC-12"]}` for what is looked up at
/// import time (an e-mail or name assignee, test case human ids), and a newline.
pub fn write_plan_line(out: &mut Vec<u8>, planned: &PlannedRow) {
    let line = PlanLine {
        row: planned.row,
        method: "POST",
        path: planned.path(),
        body: &planned.body,
        unresolved: (planned.assignee_email.is_some() || planned.test_case_refs.is_some()).then(|| Unresolved {
            assignee_id: planned.assignee_email.as_ref().map(|a| a.email.as_str()),
            test_case_ids: planned.test_case_refs.as_ref().map(|r| r.human_ids.as_slice()),
        }),
    };
    // Writing into a Vec cannot fail, and neither can serializing these types.
    let _ = serde_json::to_writer(&mut *out, &line);
    out.push(b'\n');
    // The key, were it pasted into a cell, never reaches the plan.
    crate::redact::scrub_in_place(out);
}

/// One line of the plan: the exact method, path and body.
pub fn plan_line(planned: &PlannedRow) -> Vec<u8> {
    let mut line = Vec::with_capacity(1024);
    write_plan_line(&mut line, planned);
    line
}

/// `--plan FILE`, or standard output for `-` (nothing else of the tool's goes there).
pub fn open_plan(path: &Path) -> anyhow::Result<Box<dyn Write>> {
    // A plan runs to about 760 bytes a row: in 1 MB writes, a million rows take 700 system
    // calls instead of 90,000.
    const PLAN_BUFFER: usize = 1 << 20;
    if path == Path::new("-") {
        return Ok(Box::new(std::io::BufWriter::with_capacity(
            PLAN_BUFFER,
            std::io::stdout(),
        )));
    }
    let file = std::fs::File::create(path).with_context(|| format!("--plan: cannot create {}", path.display()))?;
    Ok(Box::new(std::io::BufWriter::with_capacity(PLAN_BUFFER, file)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::SelectionFilter;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// Text that exercises every escape: quotes, backslashes, each control character,
    /// DEL, and multi-byte characters.
    fn tricky(rng: &mut StdRng) -> String {
        let pieces = [
            "plain", "\"", "\\", "\u{7f}", "é", "—", "😀", "\u{2028}", " ", "/", "<", "",
        ];
        let mut s = String::new();
        for _ in 0..rng.random_range(0..12) {
            if rng.random_bool(0.3) {
                s.push(char::from(rng.random_range(0u8..0x20)));
            } else {
                s.push_str(pieces[rng.random_range(0..pieces.len())]);
            }
        }
        s
    }

    fn maybe<T>(rng: &mut StdRng, make: impl FnOnce(&mut StdRng) -> T) -> Option<T> {
        rng.random_bool(0.5).then(|| make(rng))
    }

    fn random_body(rng: &mut StdRng) -> TestRunBody {
        let list = |rng: &mut StdRng| (0..rng.random_range(0..4)).map(|_| tricky(rng)).collect::<Vec<_>>();
        let filters = if rng.random_bool(0.5) {
            vec![SelectionFilter {
                field: "id",
                operator: "IN",
                values: list(rng),
            }]
        } else {
            Vec::new()
        };
        TestRunBody {
            title: tricky(rng),
            description: maybe(rng, tricky),
            status: ["ACTIVE", "CLOSED"][rng.random_range(0..2)],
            project_id: tricky(rng),
            human_id: maybe(rng, tricky),
            selection_type: "STATIC",
            static_selection_filters: filters,
            start_date: maybe(rng, |r| r.random_range(i64::MIN..=i64::MAX)),
            end_date: maybe(rng, |r| r.random_range(-10_000_000_000_000i64..10_000_000_000_000)),
            assignee_id: maybe(rng, tricky),
            label_names: list(rng),
            environment_ids: list(rng),
        }
    }

    #[test]
    fn a_plan_line_is_the_row_path_and_body() {
        let mut rng = StdRng::seed_from_u64(7);
        let body = random_body(&mut rng);
        let planned = PlannedRow {
            row: 42,
            body: body.clone(),
            assignee_email: Some(crate::request::EmailAssignee {
                email: "a\"b@example.com".to_string(),
                column: None,
                cell: None,
            }),
            test_case_refs: None,
        };
        let mut out = Vec::new();
        write_plan_line(&mut out, &planned);
        let expected = format!(
            "{{\"row\":42,\"method\":\"POST\",\"path\":{},\"body\":{},\"unresolved\":{{\"assignee_id\":{}}}}}\n",
            serde_json::to_string(&planned.path()).unwrap(),
            serde_json::to_string(&body).unwrap(),
            serde_json::to_string("a\"b@example.com").unwrap()
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}
