//! Lists and ids in a cell: a list split on the separators (trimmed, empty items and later
//! duplicates dropped) into a list written over in place, and UUIDs in the spellings
//! people write, turned into the form the API writes. Pure.

use std::borrow::Cow;

use super::set_string;
use crate::read::row::trim;

/// A list written over in place: its first strings are reused for the new items.
pub(super) struct ListFill<'l> {
    list: &'l mut Vec<String>,
    pub(super) len: usize,
}

impl<'l> ListFill<'l> {
    pub(super) fn new(list: &'l mut Vec<String>) -> ListFill<'l> {
        ListFill { list, len: 0 }
    }

    pub(super) fn contains(&self, item: &str) -> bool {
        self.list[..self.len].iter().any(|seen| seen == item)
    }

    pub(super) fn push(&mut self, item: &str) {
        match self.list.get_mut(self.len) {
            Some(held) => set_string(held, item),
            None => self.list.push(item.to_owned()),
        }
        self.len += 1;
    }

    pub(super) fn finish(self) {
        self.list.truncate(self.len);
    }
}

pub(super) const NOT_A_UUID: &str =
    "not a UUID (expected 8-4-4-4-12 hex digits, e.g. c47ade67-0543-4582-a4a5-b7de447c94f5)";

/// A UUID in any common spelling → lower-case hyphenated, which is what the API sends back.
pub(super) fn parse_uuid(text: &str) -> Result<String, String> {
    uuid_text(text)
        .map(Cow::into_owned)
        .ok_or_else(|| NOT_A_UUID.to_string())
}

/// The UUID in `text` as the API writes it: `text` itself (trimmed) when it is written so.
pub(super) fn uuid_text(text: &str) -> Option<Cow<'_, str>> {
    let text = trim(text);
    if is_canonical_uuid(text) {
        return Some(Cow::Borrowed(text));
    }
    uuid_value(text).map(|id| {
        Cow::Owned(
            id.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer())
                .to_string(),
        )
    })
}

/// Splits on any separator, trims, drops empty entries and later duplicates, into `out`.
pub(super) fn split_into(text: &str, separators: &Separators, out: &mut Vec<String>) {
    let mut fill = ListFill::new(out);
    for_each_item(text, separators, |item| {
        if !fill.contains(item) {
            fill.push(item);
        }
    });
    fill.finish();
}

/// The list separators, with a byte table for the usual case where all are ASCII:
/// splitting char by char with a list lookup was once the largest single cost of a dry run.
#[derive(Debug, Clone)]
pub(super) struct Separators {
    chars: Vec<char>,
    /// `Some` when every separator is ASCII: which bytes separate.
    bytes: Option<[bool; 256]>,
}

impl Separators {
    pub(super) fn new(chars: &[char]) -> Separators {
        let bytes = chars.iter().all(char::is_ascii).then(|| {
            let mut table = [false; 256];
            for c in chars {
                table[*c as usize] = true;
            }
            table
        });
        Separators {
            chars: chars.to_vec(),
            bytes,
        }
    }
}

/// Each non-empty item of a list, trimmed, in order (duplicates included).
pub(super) fn for_each_item<'t>(text: &'t str, separators: &Separators, mut f: impl FnMut(&'t str)) {
    let mut push = |item: &'t str| {
        let item = trim(item);
        if !item.is_empty() {
            f(item);
        }
    };
    match &separators.bytes {
        Some(table) => {
            let mut start = 0;
            for (i, b) in text.bytes().enumerate() {
                if table[b as usize] {
                    push(&text[start..i]);
                    start = i + 1;
                }
            }
            push(&text[start..]);
        }
        None => text.split(separators.chars.as_slice()).for_each(push),
    }
}

/// A list of UUIDs each written as the API writes them, split as [`for_each_item`] splits
/// it, in one pass over the text: the ids go into `fill`, duplicates left out. False when
/// the list is written any other way (with ASCII separators, an item that is not such a
/// UUID, or is trimmed of other than ASCII spaces); what is in `fill` is then not to be used.
pub(super) fn canonical_uuids(text: &str, separators: &Separators, fill: &mut ListFill<'_>) -> bool {
    let Some(table) = &separators.bytes else {
        return false;
    };
    let bytes = text.as_bytes();
    let skips = |b: u8| table[b as usize] || b.is_ascii_whitespace();
    let mut at = 0;
    loop {
        while at < bytes.len() && skips(bytes[at]) {
            at += 1;
        }
        if at == bytes.len() {
            return true;
        }
        let Some(item) = text.get(at..at + 36).filter(|item| is_canonical_uuid(item)) else {
            return false;
        };
        at += 36;
        // Only spaces may stand between an id and the separator (or the end) after it.
        while at < bytes.len() && bytes[at].is_ascii_whitespace() && !table[bytes[at] as usize] {
            at += 1;
        }
        if at < bytes.len() && !table[bytes[at] as usize] {
            return false;
        }
        if !fill.contains(item) {
            fill.push(item);
        }
    }
}

/// The service's human id of a test case: a letter, then letters, digits or `_`, a hyphen
/// and a number (`TC-12`, `PRJ2-TC-7` is not one: the service's ids have one hyphen).
pub(super) fn is_human_id(text: &str) -> bool {
    let Some((prefix, number)) = text.split_once('-') else {
        return false;
    };
    prefix.len() <= 20
        && prefix.starts_with(|c: char| c.is_ascii_alphabetic())
        && prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !number.is_empty()
        && number.len() <= 18
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// Lower-case hex in the 8-4-4-4-12 pattern: the form the API writes, and the form a
/// UUID is sent in.
pub(super) fn is_canonical_uuid(text: &str) -> bool {
    /// Where the hyphens go.
    const HYPHEN: [bool; 36] = {
        let mut at = [false; 36];
        at[8] = true;
        at[13] = true;
        at[18] = true;
        at[23] = true;
        at
    };
    let Ok(bytes) = <&[u8; 36]>::try_from(text.as_bytes()) else {
        return false;
    };
    // Without a branch or a table per byte, the compiler checks 16 bytes at a time.
    let mut wrong = false;
    for (b, hyphen) in bytes.iter().zip(HYPHEN) {
        let hex = b.wrapping_sub(b'0') < 10 || b.wrapping_sub(b'a') < 6;
        wrong |= if hyphen { *b != b'-' } else { !hex };
    }
    !wrong
}

/// A UUID in either plain spelling (hyphenated, or 32 hex digits), any case, maybe in
/// braces (`{9ac2…}`, as Windows tools write them).
pub(super) fn uuid_value(text: &str) -> Option<uuid::Uuid> {
    let text = trim(text);
    let text = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .map_or(text, trim);
    if text.len() == 36 || text.len() == 32 {
        uuid::Uuid::try_parse(text).ok()
    } else {
        None
    }
}

pub(super) fn describe_separators(separators: &[char]) -> String {
    separators
        .iter()
        .filter(|c| **c != '\r')
        .map(|c| match c {
            '\n' => "new lines".to_string(),
            '\t' => "tabs".to_string(),
            c => format!("`{c}`"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::RowRules;

    const PROJECT: &str = "c47ade67-0543-4582-a4a5-b7de447c94f5";
    const CASE_A: &str = "9ac271b6-4e89-4c93-8c75-2d625efa0b2d";
    const CASE_B: &str = "2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091";

    #[test]
    fn lists_split_trim_and_dedupe() {
        let seps = RowRules::default().list_separators;
        let mut out = vec!["stale".to_string(); 7];
        for (input, want) in [
            ("a, b;c|d\ne", vec!["a", "b", "c", "d", "e"]),
            (" a ,, a , B ", vec!["a", "B"]),
            (",;|", vec![]),
            ("Régression, Mensuel", vec!["Régression", "Mensuel"]),
        ] {
            // Written over the last list, as rows are: nothing of it may show through.
            split_into(input, &Separators::new(&seps), &mut out);
            assert_eq!(out, want, "{input:?}");
        }
        split_into("a,b|c", &Separators::new(&['|']), &mut out);
        assert_eq!(out, vec!["a,b", "c"]);
    }

    #[test]
    fn uuids_are_normalised() {
        assert_eq!(parse_uuid("C47ADE67-0543-4582-A4A5-B7DE447C94F5").unwrap(), PROJECT);
        assert_eq!(parse_uuid("c47ade6705434582a4a5b7de447c94f5").unwrap(), PROJECT);
        for bad in [
            "",
            "123",
            "c47ade67-0543-4582-a4a5-b7de447c94f",
            "{c47ade67-0543-4582-a4a5-b7de447c94f5}x",
        ] {
            assert!(parse_uuid(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_uuid_check_takes_exactly_lower_case_hex_and_hyphens_in_place() {
        fn bytewise(bytes: &[u8]) -> bool {
            bytes.len() == 36
                && bytes.iter().enumerate().all(|(i, b)| match i {
                    8 | 13 | 18 | 23 => *b == b'-',
                    _ => matches!(b, b'0'..=b'9' | b'a'..=b'f'),
                })
        }
        // Every character that fits in one byte, at every place of a valid id.
        let valid = CASE_A.as_bytes().to_vec();
        let mut accepted = 0;
        for at in 0..36 {
            for b in 0u8..=0x7F {
                let mut bytes = valid.clone();
                bytes[at] = b;
                let text = std::str::from_utf8(&bytes).unwrap();
                assert_eq!(is_canonical_uuid(text), bytewise(&bytes), "{text:?}");
                accepted += usize::from(bytewise(&bytes));
            }
        }
        assert!(accepted > 500, "only {accepted} variants were ids");
        // Multi-byte characters in place of two or three bytes.
        for (at, c) in [(0, "é"), (10, "é"), (30, "€"), (33, "€"), (20, "\u{80}")] {
            let text = format!("{}{c}{}", &CASE_A[..at], &CASE_A[at + c.len()..]);
            assert!(!is_canonical_uuid(&text), "{text:?}");
        }
        assert!(is_canonical_uuid(CASE_A));
        assert!(!is_canonical_uuid(&CASE_A.to_uppercase()));
    }

    #[test]
    fn the_one_pass_uuid_split_agrees_with_splitting_then_checking() {
        use rand::{RngExt, SeedableRng, rngs::StdRng};
        let pieces = [
            CASE_A,
            CASE_B,
            "9AC271B6-4E89-4C93-8C75-2D625EFA0B2D",
            "9ac271b64e894c938c752d625efa0b2d",
            ",",
            ";",
            "|",
            "\n",
            "\r\n",
            " ",
            "\t",
            "\u{a0}",
            "\u{b}",
            "x",
            "",
        ];
        let separators = Separators::new(&RowRules::default().list_separators);
        let mut rng = StdRng::seed_from_u64(7);
        let mut agreed = 0;
        for _ in 0..20_000 {
            let text: String = (0..rng.random_range(0..8))
                .map(|_| pieces[rng.random_range(0..pieces.len())])
                .collect();
            // The two-step way: every item, trimmed, must be canonical.
            let mut items = Vec::new();
            let mut all_canonical = true;
            for_each_item(&text, &separators, |item| {
                all_canonical &= is_canonical_uuid(item);
                if !items.contains(&item) {
                    items.push(item);
                }
            });
            let mut out = vec!["stale".to_string(); 3];
            let mut fill = ListFill::new(&mut out);
            let one_pass = canonical_uuids(&text, &separators, &mut fill);
            fill.finish();
            // It may give up on a list the two steps take (say, one trimmed of a no-break
            // space: then the two steps run), but what it takes, it takes as they do.
            if one_pass {
                assert!(all_canonical, "{text:?}");
                assert_eq!(out, items, "{text:?}");
                agreed += 1;
            } else if all_canonical {
                assert!(text.contains(['\u{a0}', '\u{b}']), "{text:?}");
            }
        }
        assert!(agreed > 1000, "only {agreed} canonical lists were tried");
    }
}
