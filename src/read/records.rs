//! Records of delimited text, read exactly as the csv crate reads them (`"` quotes, `""`
//! inside them, `\r`, `\n` or `\r\n` line ends, blank lines skipped, a UTF-8 byte-order
//! mark dropped), but a field at a time with the memchr crate's SIMD searches where
//! `csv_core` looks at every byte through its state table. On a million rows that was most
//! of the reading thread's time.
//!
//! A record of an unusual shape (text after a closing quote, a quote still open at the end
//! of the input), or one longer than a read of the input, is handed to `csv_core` itself,
//! from its first byte, so such a record also reads as the csv crate reads it. A
//! randomised test holds the two readers together: the same fields, line numbers and byte
//! positions for every record.

use std::io::{self, Read};

use csv_core::ReadRecordResult;
use memchr::{memchr, memchr3};

/// Bytes asked of the input at a time. The byte cap of a record allows this much (and
/// more) of read-ahead past the record's end.
const CHUNK: usize = 32 * 1024;

/// Refills of the buffer one record may take before `csv_core` reads it instead.
const MAX_REFILLS: usize = 8;

/// One record's fields, unquoted, one after another, with where each ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Record {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Record {
    /// Every field's bytes, one after another, without delimiters.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.ranges().map(|range| &self.bytes[range])
    }

    /// Where each field lies in [`Record::as_slice`].
    pub fn ranges(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let range = start..end;
            start = end;
            range
        })
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    fn end_field(&mut self) {
        self.ends.push(self.bytes.len());
    }
}

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
    /// Read whole: its bytes end at `end` in the buffer; `by_eof` when the input's end,
    /// not a line end, closed it.
    Done { end: usize, by_eof: bool },
    /// The record goes on past what the buffer holds.
    NeedMore,
    /// A shape for `csv_core` to read.
    Unusual,
}

pub(super) struct RecordReader {
    inner: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// The unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    /// The input has no more bytes.
    eof: bool,
    delimiter: u8,
    core: csv_core::Reader,
    /// Scratch output for `core`.
    core_out: Vec<u8>,
    core_ends: Vec<usize>,
    bom_checked: bool,
    /// 1 + the line feeds read so far, as `csv_core` counts lines.
    line: u64,
    /// Bytes read so far (past the end of the last record).
    byte: u64,
    /// Bytes taken from `inner` so far.
    taken: u64,
    /// Where the last record began: the end of the one before it.
    record_start: u64,
    /// Where its first field began, after any blank lines.
    content_start: u64,
    last_byte: Option<u8>,
    ended_by_eof: bool,
    /// Line feeds inside the last record's fields.
    embedded: u64,
    /// Most bytes one record may take from the input past its first field's start.
    pub cap: u64,
}

impl RecordReader {
    pub fn new(inner: Box<dyn Read + Send>, delimiter: u8) -> RecordReader {
        let mut core = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
        // `csv_core` drops a byte-order mark at the start of the first input it is given,
        // which here may be a record in the middle of the file: give it a blank line first.
        let _ = core.read_record(b"\n", &mut [0; 1], &mut [0; 1]);
        RecordReader {
            inner,
            buf: vec![0; 2 * CHUNK],
            pos: 0,
            end: 0,
            eof: false,
            delimiter,
            core,
            core_out: vec![0; 1024],
            core_ends: vec![0; 64],
            bom_checked: false,
            line: 1,
            byte: 0,
            taken: 0,
            record_start: 0,
            content_start: 0,
            last_byte: None,
            ended_by_eof: false,
            embedded: 0,
            cap: u64::MAX,
        }
    }

    /// 1 + the line feeds read so far, including those inside quoted fields.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Where the last record began, in bytes of the text: the end of the record before it.
    pub fn record_start(&self) -> u64 {
        self.record_start
    }

    /// The last record ended with a line feed (a `\r\n` ends at its `\r`; the `\n` is
    /// read with the next record).
    pub fn ended_by_lf(&self) -> bool {
        self.last_byte == Some(b'\n')
    }

    /// The last record was closed by the end of the input, not by a line end.
    pub fn ended_by_eof(&self) -> bool {
        self.ended_by_eof
    }

    /// The line feeds inside the last record's fields (quoted ones).
    pub fn embedded(&self) -> u64 {
        self.embedded
    }

    /// Reads the next record into `record`; `Ok(false)` at the end of the input.
    pub fn read_record(&mut self, record: &mut Record) -> io::Result<bool> {
        record.clear();
        self.record_start = self.byte;
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
        self.content_start = self.byte;
        let mut refills = 0;
        loop {
            match self.quick(record) {
                Quick::Done { end, by_eof } => {
                    self.ended_by_eof = by_eof;
                    // Every line feed read is in a field or ends the record: no need to
                    // look at the bytes read again.
                    let ended_by_lf = self.buf[end - 1] == b'\n' && !by_eof;
                    self.embedded = newlines(record.as_slice());
                    self.advance(end - self.pos, self.embedded + u64::from(ended_by_lf));
                    return Ok(true);
                }
                // The quick reading starts again from the record's first byte after each
                // refill, which for a record of many megabytes (or an input handed out a
                // few bytes at a time) would be quadratic: a record that outgrows a chunk,
                // or needs many refills, is read on by csv_core, which keeps its place.
                Quick::NeedMore if self.end - self.pos >= CHUNK || refills == MAX_REFILLS => {
                    return self.with_core(record);
                }
                Quick::NeedMore => {
                    refills += 1;
                    self.refill()?;
                }
                Quick::Unusual => return self.with_core(record),
            }
        }
    }

    /// Reads the record at `buf[pos..]` a field at a time, without consuming it.
    #[inline]
    fn quick(&self, record: &mut Record) -> Quick {
        record.clear();
        let buf = &self.buf[..self.end];
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
                    record.bytes.extend_from_slice(&buf[from..quote]);
                    match buf.get(quote + 1) {
                        Some(b'"') => {
                            record.bytes.push(b'"');
                            from = quote + 2;
                        }
                        Some(&b) if b == delimiter => {
                            record.end_field();
                            at = quote + 2;
                            break;
                        }
                        Some(b'\n' | b'\r') => {
                            record.end_field();
                            return Quick::Done {
                                end: quote + 2,
                                by_eof: false,
                            };
                        }
                        // Text after the closing quote joins the field: csv_core's way.
                        Some(_) => return Quick::Unusual,
                        None if self.eof => {
                            record.end_field();
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
                        record.bytes.extend_from_slice(&buf[at..stop]);
                        record.end_field();
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
                        record.bytes.extend_from_slice(&buf[at..]);
                        record.end_field();
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
    fn with_core(&mut self, record: &mut Record) -> io::Result<bool> {
        record.clear();
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
                    record.bytes.extend_from_slice(&self.core_out[..out]);
                    record.ends.extend_from_slice(&self.core_ends[..ends]);
                    self.embedded = newlines(record.as_slice());
                    return Ok(true);
                }
                // Not reached: a record starts here. Said as the csv crate would say it.
                ReadRecordResult::End => return Ok(false),
            }
        }
    }

    /// Moves past `n` read bytes, counting their line feeds.
    fn consume(&mut self, n: usize) {
        let lines = newlines(&self.buf[self.pos..self.pos + n]);
        self.advance(n, lines);
    }

    /// Moves past `n` read bytes that hold `lines` line feeds.
    fn advance(&mut self, n: usize, lines: u64) {
        if n == 0 {
            return;
        }
        self.line += lines;
        self.last_byte = Some(self.buf[self.pos + n - 1]);
        self.pos += n;
        self.byte += n as u64;
    }

    /// Reads more of the input after the unread bytes; false at its end.
    fn refill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.taken.saturating_sub(self.content_start) > self.cap {
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
            match self.inner.read(&mut self.buf[self.end..self.end + CHUNK]) {
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

/// Most fields hold no line feed: one search says so, where counting looks at every byte.
fn newlines(bytes: &[u8]) -> u64 {
    match memchr(b'\n', bytes) {
        Some(first) => 1 + memchr::memchr_iter(b'\n', &bytes[first + 1..]).count() as u64,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Each record as the csv crate reads it: fields, line and byte after it.
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
            out.push((fields, reader.position().line(), reader.position().byte()));
        }
        out
    }

    /// The same, from [`RecordReader`], with the ends it says beside the bytes they are.
    fn by_record_reader(data: &[u8], delimiter: u8, sizes: Vec<usize>) -> Vec<(Vec<Vec<u8>>, u64, u64)> {
        let trickle = Trickle {
            data: data.to_vec(),
            at: 0,
            sizes,
            turn: 0,
        };
        let mut reader = RecordReader::new(Box::new(trickle), delimiter);
        let mut record = Record::default();
        let mut out = Vec::new();
        while reader.read_record(&mut record).unwrap_or_else(|e| panic!("{e}")) {
            let fields: Vec<Vec<u8>> = record.iter().map(<[u8]>::to_vec).collect();
            assert_eq!(fields.concat(), record.as_slice());
            assert_eq!(reader.embedded(), newlines(record.as_slice()));
            let end = reader.byte as usize;
            assert_eq!(reader.ended_by_lf(), data[..end].last() == Some(&b'\n'), "{data:?}");
            // Closed by the input's end: nothing after it, and no line end closed it.
            if reader.ended_by_eof() {
                assert_eq!(end, data.len(), "{data:?}");
            }
            out.push((fields, reader.line(), reader.byte));
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
            "a,b,\n,\n",
            "\"a,b\",\"c\"\"d\"\ne\n",
            "\"line\nbreak\",x\r\n\r\ny",
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
                assert_eq!(by_record_reader(data, b',', sizes), want, "{text:?}");
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
            assert_eq!(by_record_reader(data, b',', vec![usize::MAX]), want);
            assert_eq!(by_record_reader(data, b',', vec![4096, 777]), want);
        }
    }

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
            let got = by_record_reader(&data, delimiter, sizes.clone());
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
    fn the_last_record_says_whether_the_input_s_end_closed_it() {
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
                let trickle = Trickle {
                    data: text.as_bytes().to_vec(),
                    at: 0,
                    sizes,
                    turn: 0,
                };
                let mut reader = RecordReader::new(Box::new(trickle), b',');
                let mut record = Record::default();
                let mut last = None;
                while reader.read_record(&mut record).unwrap_or_else(|e| panic!("{e}")) {
                    last = Some(reader.ended_by_eof());
                }
                assert_eq!(last, Some(by_eof), "{text:?}");
            }
        }
    }

    #[test]
    fn a_record_past_the_cap_is_an_error_and_the_ones_before_it_are_read() {
        let mut data = b"a,b\n\"open".to_vec();
        data.extend(std::iter::repeat_n(b'x', 10 * CHUNK));
        let mut reader = RecordReader::new(Box::new(io::Cursor::new(data)), b',');
        reader.cap = 3 * CHUNK as u64;
        let mut record = Record::default();
        assert!(matches!(reader.read_record(&mut record), Ok(true)));
        assert_eq!(record.iter().collect::<Vec<_>>(), [b"a", b"b"]);
        let err = reader.read_record(&mut record).expect_err("past the cap");
        assert!(err.get_ref().is_some_and(|inner| inner.is::<RecordTooLong>()), "{err}");
        assert_eq!(reader.record_start(), 4);
    }
}
