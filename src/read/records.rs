//! The records of delimited text, read exactly as the csv crate reads them (`"` quotes,
//! `""` inside them, `\r`, `\n` or `\r\n` line ends, blank lines skipped, a UTF-8
//! byte-order mark at the start dropped), with what row numbers and messages need: the
//! line after each record, where it began and how it ended.
//!
//! A record is read a field at a time with the memchr crate's searches, where `csv_core`
//! looks at every byte through its state table: on a million-row dry run `csv_core` alone
//! took a quarter of all instructions, 4,200 a row, against about 1,000 here.
//!
//! A record of an unusual shape (text after a closing quote, a quote still open at the end
//! of the text), or one longer than a read of the text, is handed to `csv_core` itself,
//! from its first byte, so such a record also reads as the csv crate reads it. A
//! randomised test holds the two together: the same fields and byte positions for every
//! record, and line breaks counted as a spreadsheet counts them.

use std::io::{self, Read};

use csv_core::ReadRecordResult;
use memchr::{memchr, memchr2, memchr3};

/// Bytes asked of the text at a time. The byte cap of a record allows this much (and more)
/// of read-ahead past the record's end.
const CHUNK: usize = 32 * 1024;

/// Refills of the buffer one record may take before `csv_core` reads it instead.
const MAX_REFILLS: usize = 8;

/// The error a read returns when one record runs past the byte cap.
#[derive(Debug)]
pub(super) struct RecordTooLong;

impl std::fmt::Display for RecordTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("record too long")
    }
}

impl std::error::Error for RecordTooLong {}

/// What the quick reading made of the record at the buffer's start.
enum Quick {
    /// Read whole: its bytes end at `end` in the buffer; `by_eof` when the text's end,
    /// not a line end, closed it.
    Done { end: usize, by_eof: bool },
    /// The record goes on past what the buffer holds.
    NeedMore,
    /// A shape for `csv_core` to read.
    Unusual,
}

pub(super) struct Records {
    text: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// The unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    /// The text has no more bytes.
    eof: bool,
    delimiter: u8,
    core: csv_core::Reader,
    /// Scratch output for `core`.
    core_out: Vec<u8>,
    core_ends: Vec<usize>,
    bom_checked: bool,
    /// The last record's fields, unquoted, back to back; field `i` ends at `ends[i]`.
    bytes: Vec<u8>,
    ends: Vec<usize>,
    /// Line breaks read so far: `\n`, `\r\n` and a lone `\r` (an old Mac export) alike.
    breaks: LineBreaks,
    /// Bytes of text read so far: the end of the last record.
    byte: u64,
    /// Bytes taken from `text` so far.
    taken: u64,
    /// Where the last record began: the end of the record before it.
    pub start: u64,
    /// The last byte read, which ended the last record (a `\r\n` ends at its `\r`; the
    /// `\n` is skipped as a blank line before the next record).
    last_byte: Option<u8>,
    /// The last record was closed by the end of the text, not by a line end.
    pub ended_by_eof: bool,
    /// Line breaks inside the last record's fields.
    embedded: u64,
    /// Most bytes one record may take from the text, blank lines before it included.
    pub cap: u64,
}

impl Records {
    pub fn new(text: Box<dyn Read + Send>, delimiter: u8) -> Records {
        let mut core = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
        // `csv_core` drops a byte-order mark at the start of the first input it is given,
        // which here may be a record in the middle of the text: give it a blank line first.
        let _ = core.read_record(b"\n", &mut [0; 1], &mut [0; 1]);
        Records {
            text,
            buf: vec![0; 2 * CHUNK],
            pos: 0,
            end: 0,
            eof: false,
            delimiter,
            core,
            core_out: vec![0; 1024],
            core_ends: vec![0; 64],
            bom_checked: false,
            bytes: Vec::new(),
            ends: Vec::new(),
            breaks: LineBreaks::default(),
            byte: 0,
            taken: 0,
            start: 0,
            last_byte: None,
            ended_by_eof: false,
            embedded: 0,
            cap: u64::MAX,
        }
    }

    /// The number of fields in the last record.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Every field's bytes of the last record, one after another, without delimiters.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// Where each field of the last record lies in [`Records::as_slice`].
    pub fn ranges(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let range = start..end;
            start = end;
            range
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.ranges().map(|range| &self.bytes[range])
    }

    /// 1 + the line breaks read so far, including those inside quoted fields.
    pub fn line(&self) -> u64 {
        1 + self.breaks.count
    }

    /// The last record ended with a line break, which is counted already.
    pub fn ended_by_break(&self) -> bool {
        !self.ended_by_eof && matches!(self.last_byte, Some(b'\n' | b'\r'))
    }

    /// The line breaks inside the last record's fields (quoted ones).
    pub fn embedded(&self) -> u64 {
        self.embedded
    }

    /// Reads the next record; `Ok(false)` at the end of the text.
    pub fn read(&mut self) -> io::Result<bool> {
        self.bytes.clear();
        self.ends.clear();
        self.start = self.byte;
        self.ended_by_eof = false;
        if !self.bom_checked {
            while self.end - self.pos < 3 && self.refill()? {}
            if self.buf[self.pos..self.end].starts_with(b"\xEF\xBB\xBF") {
                self.consume(3);
            }
            self.bom_checked = true;
        }
        // Blank lines are no records.
        loop {
            let blank = self.buf[self.pos..self.end]
                .iter()
                .take_while(|&&b| b == b'\n' || b == b'\r')
                .count();
            self.consume(blank);
            if self.pos < self.end {
                break;
            }
            if !self.refill()? {
                return Ok(false);
            }
        }
        let mut refills = 0;
        loop {
            match self.quick() {
                Quick::Done { end, by_eof } => {
                    self.ended_by_eof = by_eof;
                    self.embedded = self.field_breaks();
                    // Every line break read is in a field or ends the record: no need to
                    // look at the bytes read again. The record's first byte is no line
                    // end, so a `\r` before it cannot pair with it.
                    let last = self.buf[end - 1];
                    let ended_by_break = !by_eof && (last == b'\n' || last == b'\r');
                    self.breaks.count += self.embedded + u64::from(ended_by_break);
                    self.breaks.after_cr = last == b'\r';
                    self.last_byte = Some(last);
                    self.byte += (end - self.pos) as u64;
                    self.pos = end;
                    return Ok(true);
                }
                // The quick reading starts again from the record's first byte after each
                // refill, which for a record of many megabytes (or a text handed out a few
                // bytes at a time) would be quadratic: a record that outgrows a chunk, or
                // needs many refills, is read on by csv_core, which keeps its place.
                Quick::NeedMore if self.end - self.pos >= CHUNK || refills == MAX_REFILLS => {
                    return self.with_core();
                }
                Quick::NeedMore => {
                    refills += 1;
                    self.refill()?;
                }
                Quick::Unusual => return self.with_core(),
            }
        }
    }

    /// Reads the record at `buf[pos..]` a field at a time into `bytes` and `ends`, without
    /// consuming it.
    #[inline]
    fn quick(&mut self) -> Quick {
        self.bytes.clear();
        self.ends.clear();
        let buf = &self.buf[..self.end];
        let (bytes, ends) = (&mut self.bytes, &mut self.ends);
        let delimiter = self.delimiter;
        let mut at = self.pos;
        loop {
            if buf.get(at) == Some(&b'"') {
                // A quoted field: up to the quote that is not doubled.
                let mut from = at + 1;
                loop {
                    let Some(found) = memchr(b'"', &buf[from..]) else {
                        return if self.eof { Quick::Unusual } else { Quick::NeedMore };
                    };
                    let quote = from + found;
                    bytes.extend_from_slice(&buf[from..quote]);
                    match buf.get(quote + 1) {
                        Some(b'"') => {
                            bytes.push(b'"');
                            from = quote + 2;
                        }
                        Some(&b) if b == delimiter => {
                            ends.push(bytes.len());
                            at = quote + 2;
                            break;
                        }
                        Some(b'\n' | b'\r') => {
                            ends.push(bytes.len());
                            return Quick::Done {
                                end: quote + 2,
                                by_eof: false,
                            };
                        }
                        // Text after the closing quote joins the field: csv_core's way.
                        Some(_) => return Quick::Unusual,
                        None if self.eof => {
                            ends.push(bytes.len());
                            return Quick::Done {
                                end: quote + 1,
                                by_eof: true,
                            };
                        }
                        None => return Quick::NeedMore,
                    }
                }
            } else {
                // Quotes inside an unquoted field are text.
                match memchr3(delimiter, b'\n', b'\r', &buf[at..]) {
                    Some(found) => {
                        let stop = at + found;
                        bytes.extend_from_slice(&buf[at..stop]);
                        ends.push(bytes.len());
                        if buf[stop] == delimiter {
                            at = stop + 1;
                        } else {
                            return Quick::Done {
                                end: stop + 1,
                                by_eof: false,
                            };
                        }
                    }
                    None if self.eof => {
                        bytes.extend_from_slice(&buf[at..]);
                        ends.push(bytes.len());
                        return Quick::Done {
                            end: buf.len(),
                            by_eof: true,
                        };
                    }
                    None => return Quick::NeedMore,
                }
            }
        }
    }

    /// Reads the record at `buf[pos..]` with `csv_core`, a byte at a time.
    fn with_core(&mut self) -> io::Result<bool> {
        self.bytes.clear();
        self.ends.clear();
        let (mut out, mut ends) = (0, 0);
        loop {
            let input_done = self.pos == self.end;
            let (result, read, wrote, ended) = self.core.read_record(
                &self.buf[self.pos..self.end],
                &mut self.core_out[out..],
                &mut self.core_ends[ends..],
            );
            self.consume(read);
            out += wrote;
            ends += ended;
            match result {
                ReadRecordResult::InputEmpty => {
                    self.refill()?;
                }
                ReadRecordResult::OutputFull => {
                    let len = self.core_out.len() * 2;
                    self.core_out.resize(len, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let len = self.core_ends.len() * 2;
                    self.core_ends.resize(len, 0);
                }
                ReadRecordResult::Record => {
                    self.ended_by_eof = input_done;
                    self.bytes.extend_from_slice(&self.core_out[..out]);
                    self.ends.extend_from_slice(&self.core_ends[..ends]);
                    self.embedded = self.field_breaks();
                    return Ok(true);
                }
                // Not reached: a record starts here. Said as the csv crate would say it.
                ReadRecordResult::End => return Ok(false),
            }
        }
    }

    /// The line breaks inside the last record's fields, each field counted on its own: a
    /// `\r` ending one field and a `\n` starting the next are two.
    fn field_breaks(&self) -> u64 {
        // Most records hold none: one search says so, where counting looks at every field.
        if memchr2(b'\n', b'\r', &self.bytes).is_none() {
            return 0;
        }
        self.iter()
            .map(|field| {
                let mut breaks = LineBreaks::default();
                breaks.feed(field);
                breaks.count
            })
            .sum()
    }

    /// Moves past `n` read bytes, counting their line breaks.
    fn consume(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let read = &self.buf[self.pos..self.pos + n];
        self.breaks.feed(read);
        self.last_byte = read.last().copied();
        self.pos += n;
        self.byte += n as u64;
    }

    /// Reads more of the text after the unread bytes; false at its end.
    fn refill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.taken.saturating_sub(self.start) > self.cap {
            return Err(io::Error::other(RecordTooLong));
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.buf.len() - self.end < CHUNK {
            let len = (self.buf.len() * 2).max(self.end + CHUNK);
            self.buf.resize(len, 0);
        }
        loop {
            match self.text.read(&mut self.buf[self.end..self.end + CHUNK]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    self.taken += n as u64;
                    return Ok(true);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }
}

/// Counts line breaks as a spreadsheet does: `\n`, `\r\n` and a lone `\r` are one each,
/// also when a `\r\n` is split between two reads.
#[derive(Default)]
struct LineBreaks {
    count: u64,
    after_cr: bool,
}

impl LineBreaks {
    fn feed(&mut self, bytes: &[u8]) {
        for at in memchr::memchr2_iter(b'\r', b'\n', bytes) {
            let after_cr = if at == 0 { self.after_cr } else { bytes[at - 1] == b'\r' };
            if bytes[at] == b'\r' || !after_cr {
                self.count += 1;
            }
        }
        if let Some(&last) = bytes.last() {
            self.after_cr = last == b'\r';
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_count_once_across_reads() {
        let mut breaks = LineBreaks::default();
        for chunk in [&b"a\r"[..], b"\nb\r", b"\r", b"\n\n", b"c\r"] {
            breaks.feed(chunk);
        }
        assert_eq!(breaks.count, 5);
    }

    /// Hands out its bytes a few at a time, as a pipe or a decoder may.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        sizes: Vec<usize>,
        turn: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let size = self.sizes[self.turn % self.sizes.len()];
            self.turn += 1;
            let n = size.min(buf.len()).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn trickle(data: &[u8], sizes: Vec<usize>) -> Box<dyn Read + Send> {
        Box::new(Trickle {
            data: data.to_vec(),
            at: 0,
            sizes,
            turn: 0,
        })
    }

    /// Line breaks in `bytes` a byte at a time, the plainest way: `\r`, `\n` not after
    /// a `\r`.
    fn breaks_in(bytes: &[u8]) -> u64 {
        let mut count = 0;
        for (at, &b) in bytes.iter().enumerate() {
            if b == b'\r' || (b == b'\n' && (at == 0 || bytes[at - 1] != b'\r')) {
                count += 1;
            }
        }
        count
    }

    /// Each record as the csv crate reads it: fields, the line breaks up to its end (as a
    /// spreadsheet counts them) and the byte after it.
    fn by_csv_crate(data: &[u8], delimiter: u8) -> Vec<(Vec<Vec<u8>>, u64, u64)> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(data);
        let mut record = csv::ByteRecord::new();
        let mut out = Vec::new();
        while reader.read_byte_record(&mut record).unwrap_or_else(|e| panic!("{e}")) {
            let fields = record.iter().map(<[u8]>::to_vec).collect();
            let byte = reader.position().byte();
            out.push((fields, 1 + breaks_in(&data[..byte as usize]), byte));
        }
        out
    }

    /// The same, from [`Records`], with what it says of each record checked beside the
    /// bytes it read.
    fn by_records(data: &[u8], delimiter: u8, sizes: Vec<usize>) -> Vec<(Vec<Vec<u8>>, u64, u64)> {
        let mut records = Records::new(trickle(data, sizes), delimiter);
        let mut out = Vec::new();
        while records.read().unwrap_or_else(|e| panic!("{e}")) {
            let fields: Vec<Vec<u8>> = records.iter().map(<[u8]>::to_vec).collect();
            assert_eq!(fields.concat(), records.as_slice());
            let embedded: u64 = fields.iter().map(|field| breaks_in(field)).sum();
            assert_eq!(records.embedded(), embedded, "{data:?}");
            let (start, end) = (records.start as usize, records.byte as usize);
            assert_eq!(
                records.ended_by_break(),
                !records.ended_by_eof && matches!(data[..end].last(), Some(b'\n' | b'\r')),
                "{data:?}"
            );
            // Closed by the text's end: nothing after it, and no line end closed it.
            if records.ended_by_eof {
                assert_eq!(end, data.len(), "{data:?}");
            }
            assert!(start < end, "{data:?}");
            out.push((fields, records.line(), records.byte));
        }
        out
    }

    #[test]
    fn fixed_shapes_read_as_the_csv_crate_reads_them() {
        for text in [
            "",
            "\n\n\r\n",
            "a,b\nc,d\n",
            "a,b\r\nc,d\r\n",
            "a,b\rc,d",
            "a,b\r\r\nc\r",
            "a,b,\n,\n",
            "\"a,b\",\"c\"\"d\"\ne\n",
            "\"line\nbreak\",x\r\n\r\ny",
            "\"cr\r\",\"\nlf\"\r\n",
            "\"ab\"c,d\n",
            "\"ab\" ,d\n",
            "a\"b,c\"d\n",
            "\"open,\nand never\nclosed",
            "\"closed at the end\"",
            "x,\"\"",
            "\u{FEFF}a,b\n",
            "\u{FEFF}\u{FEFF}a\n",
            "\n\u{FEFF}a\n",
            "é,ü\n\"ß\",x",
        ] {
            let data = text.as_bytes();
            let want = by_csv_crate(data, b',');
            for sizes in [vec![usize::MAX], vec![1], vec![2, 3]] {
                assert_eq!(by_records(data, b',', sizes), want, "{text:?}");
            }
        }
    }

    #[test]
    fn records_of_megabytes_read_as_the_csv_crate_reads_them() {
        let big = "x".repeat(3 * 1024 * 1024 + 17);
        for text in [
            format!("a,b\n{big},\"q\"\nc,d\n"),
            format!("a,b\n\"{big}\"\"{big}\",e\r\nc,d"),
            format!("\"{big}\nstill open"),
        ] {
            let data = text.as_bytes();
            let want = by_csv_crate(data, b',');
            assert_eq!(by_records(data, b',', vec![usize::MAX]), want);
            assert_eq!(by_records(data, b',', vec![4096, 777]), want);
        }
    }

    /// The differential test: random texts of the pieces CSV is made of, read in reads of
    /// random sizes, against the csv crate (`csv_core` underneath).
    #[test]
    fn random_texts_read_as_the_csv_crate_reads_them() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let pieces: [&[u8]; 12] = [
            b"a",
            b"bc",
            b",",
            b";",
            b"\t",
            b"\"",
            b"\"\"",
            b"\r",
            b"\n",
            b"\r\n",
            b" ",
            "é".as_bytes(),
        ];
        for case in 0..20_000 {
            let mut data = Vec::new();
            if rng.random_range(0..20) == 0 {
                data.extend_from_slice(b"\xEF\xBB\xBF");
            }
            for _ in 0..rng.random_range(0..40) {
                data.extend_from_slice(pieces[rng.random_range(0..pieces.len())]);
            }
            let delimiter = [b',', b';', b'\t'][case % 3];
            let want = by_csv_crate(&data, delimiter);
            let sizes = match case % 4 {
                0 => vec![usize::MAX],
                1 => vec![1],
                _ => (0..5).map(|_| rng.random_range(1..9)).collect(),
            };
            let got = by_records(&data, delimiter, sizes.clone());
            assert_eq!(
                got,
                want,
                "{:?} with {:?}, reads of {sizes:?}",
                String::from_utf8_lossy(&data),
                delimiter as char
            );
        }
    }

    #[test]
    fn the_last_record_says_whether_the_text_s_end_closed_it() {
        for (text, by_eof) in [
            ("a,b", true),
            ("a,b\n", false),
            ("a,b\r", false),
            ("x\n\"a\"", true),
            ("x\n\"a\"\r\n", false),
            // Read by csv_core: a quote still open, text after a closing quote.
            ("x\n\"open\nto the end", true),
            ("\"ab\"c", true),
            ("\"ab\"c\n", false),
        ] {
            for sizes in [vec![usize::MAX], vec![1]] {
                let mut records = Records::new(trickle(text.as_bytes(), sizes), b',');
                let mut last = None;
                while records.read().unwrap_or_else(|e| panic!("{e}")) {
                    last = Some(records.ended_by_eof);
                }
                assert_eq!(last, Some(by_eof), "{text:?}");
            }
        }
    }

    #[test]
    fn a_record_past_the_cap_is_an_error_and_the_ones_before_it_are_read() {
        let mut data = b"a,b\n\"open".to_vec();
        data.extend(std::iter::repeat_n(b'x', 10 * CHUNK));
        let mut records = Records::new(Box::new(io::Cursor::new(data)), b',');
        records.cap = 3 * CHUNK as u64;
        assert!(matches!(records.read(), Ok(true)));
        assert_eq!(records.iter().collect::<Vec<_>>(), [b"a", b"b"]);
        let err = records.read().expect_err("past the cap");
        assert!(err.get_ref().is_some_and(|inner| inner.is::<RecordTooLong>()), "{err}");
        assert_eq!(records.start, 4);
    }
}
