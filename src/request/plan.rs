//! The request body and plan line written as JSON by hand: byte for byte what
//! `serde_json` writes (the tests compare the two), without its per-field machinery. A
//! million-row dry run spent a fifth of its time in serde here.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::request::{PlannedRow, SelectionFilter, TestRunBody};

/// Appends `s` as a JSON string, escaped exactly as `serde_json` escapes it: `"` and `\`,
/// the short escapes for backspace, form feed, newline, carriage return and tab, and
/// `\u00XX` for the other control characters. Everything else is copied as it is.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_str_content(out, s);
    out.push(b'"');
}

/// [`write_str`] without the quotes: escaping works character by character, so the
/// pieces of one string may be written one after another.
fn write_str_content(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Most text has nothing to escape: check eight bytes at a time, then copy it whole.
    if !needs_escape(bytes) {
        out.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0C => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1F => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xF) as usize]]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

fn needs_escape(bytes: &[u8]) -> bool {
    let word_at = |at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(word)
    };
    let Some(last) = bytes.len().checked_sub(8) else {
        return bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
    };
    // Whole words, then the last eight bytes (which may overlap the words before).
    let mut marks = 0;
    let mut at = 0;
    while at < last {
        marks |= escape_marks(word_at(at));
        at += 8;
    }
    (marks | escape_marks(word_at(last))) != 0
}

/// A high bit set in each of eight bytes that is a control character, `"` or `\\` (and
/// maybe in others after the first such byte): the classic "has a byte less than n" and
/// "has a zero byte" bit tricks, exact as a yes/no answer.
fn escape_marks(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let zero_in = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    below_space | zero_in(quote) | zero_in(backslash)
}

/// Appends one of the tool's own constants (a status, a selection type, a filter's field
/// or operator) as a JSON string: none of them has anything to escape.
fn write_constant(out: &mut Vec<u8>, s: &'static str) {
    debug_assert!(!needs_escape(s.as_bytes()), "{s:?}");
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

fn write_i64(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn write_strings(out: &mut Vec<u8>, items: &[String]) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, item);
    }
    out.push(b']');
}

fn write_filter(out: &mut Vec<u8>, filter: &SelectionFilter) {
    out.extend_from_slice(b"{\"field\":");
    write_constant(out, filter.field);
    out.extend_from_slice(b",\"operator\":");
    write_constant(out, filter.operator);
    out.extend_from_slice(b",\"values\":");
    write_strings(out, &filter.values);
    out.push(b'}');
}

impl TestRunBody {
    /// Appends the body as compact JSON, fields in the vendor page's order, absent
    /// optional fields left out: what `serde_json::to_vec(self)` gives.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"title\":");
        write_str(out, &self.title);
        if let Some(description) = &self.description {
            out.extend_from_slice(b",\"description\":");
            write_str(out, description);
        }
        out.extend_from_slice(b",\"status\":");
        write_constant(out, self.status);
        out.extend_from_slice(b",\"project_id\":");
        write_str(out, &self.project_id);
        if let Some(human_id) = &self.human_id {
            out.extend_from_slice(b",\"human_id\":");
            write_str(out, human_id);
        }
        out.extend_from_slice(b",\"selection_type\":");
        write_constant(out, self.selection_type);
        out.extend_from_slice(b",\"static_selection_filters\":[");
        for (i, filter) in self.static_selection_filters.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_filter(out, filter);
        }
        out.push(b']');
        if let Some(start) = self.start_date {
            out.extend_from_slice(b",\"start_date\":");
            write_i64(out, start);
        }
        if let Some(end) = self.end_date {
            out.extend_from_slice(b",\"end_date\":");
            write_i64(out, end);
        }
        if let Some(assignee) = &self.assignee_id {
            out.extend_from_slice(b",\"assignee_id\":");
            write_str(out, assignee);
        }
        out.extend_from_slice(b",\"label_names\":");
        write_strings(out, &self.label_names);
        out.extend_from_slice(b",\"environment_ids\":");
        write_strings(out, &self.environment_ids);
        out.push(b'}');
    }

    /// The body as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        self.write_json(&mut out);
        out
    }
}

/// Appends one `--plan` line: `{"row":N,"method":"POST","path":"…","body":{…}}`, with
/// `"unresolved":{"assignee_id":"…"}` for an e-mail assignee, and a newline.
pub fn write_plan_line(out: &mut Vec<u8>, planned: &PlannedRow) {
    write_request_line(out, planned);
    crate::redact::scrub_in_place(out);
}

fn write_request_line(out: &mut Vec<u8>, planned: &PlannedRow) {
    out.extend_from_slice(b"{\"row\":");
    out.extend_from_slice(itoa::Buffer::new().format(planned.row).as_bytes());
    // The path, `/projects/{project_id}/test_runs`, without building it first.
    out.extend_from_slice(b",\"method\":\"POST\",\"path\":\"/projects/");
    write_str_content(out, &planned.body.project_id);
    out.extend_from_slice(b"/test_runs\"");
    out.extend_from_slice(b",\"body\":");
    planned.body.write_json(out);
    if let Some(assignee) = &planned.assignee_email {
        out.extend_from_slice(b",\"unresolved\":{\"assignee_id\":");
        write_str(out, &assignee.email);
        out.push(b'}');
    }
    out.extend_from_slice(b"}\n");
}

/// One line of the plan: the exact method, path and body.
pub fn plan_line(planned: &PlannedRow) -> Vec<u8> {
    let mut line = Vec::with_capacity(1024);
    crate::request::plan::write_plan_line(&mut line, planned);
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
    fn every_control_character_is_escaped_as_serde_json_does() {
        for b in 0u8..=0x7F {
            let s = format!("a{}b", b as char);
            let mut out = Vec::new();
            write_str(&mut out, &s);
            assert_eq!(out, serde_json::to_vec(&s).unwrap(), "byte 0x{b:02X}");
        }
    }

    #[test]
    fn escapes_are_found_at_every_position_of_a_long_string() {
        for len in 0..40 {
            for at in 0..len {
                for b in [b'"', b'\\', b'\n', 0x01u8, 0x1F, b'a', 0x7F] {
                    let mut bytes = vec![b'x'; len];
                    bytes[at] = b;
                    let s = String::from_utf8(bytes).unwrap();
                    let mut out = Vec::new();
                    write_str(&mut out, &s);
                    assert_eq!(out, serde_json::to_vec(&s).unwrap(), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn bodies_are_byte_identical_to_serde_json() {
        let mut rng = StdRng::seed_from_u64(20261128);
        for _ in 0..5_000 {
            let body = random_body(&mut rng);
            assert_eq!(
                String::from_utf8(body.to_json()).unwrap(),
                serde_json::to_string(&body).unwrap(),
                "{body:?}"
            );
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
