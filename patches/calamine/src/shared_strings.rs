// SPDX-License-Identifier: MIT
//
// Copyright 2016-2026, Johann Tuffe.

//! The shared strings table of an .xlsx or .xlsb workbook.
//!
//! The table is held whole while any sheet is read, and a sheet of mostly distinct text
//! keeps nearly all of its text there. The texts lie back to back, and their ends (8 bytes
//! a string) stay in memory. While the texts are small they stay in memory too; past
//! [`SPILL_AT`] bytes they move to an anonymous temporary file, so that reading costs a few
//! bytes a string whatever the text's size.
//!
//! A spilled string is read back in one of two ways. A sheet names most strings for the
//! first time in table order, so a string at or just past the last one read comes through a
//! window of the file read ahead. Any other string is a string used again (a label, a
//! status, a date written as text): it is read alone and kept in a small cache indexed by
//! the string's index, so the strings met once never push the repeated ones out.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::sync::{Mutex, PoisonError};

/// The most bytes of text held in memory; a bigger table moves to a temporary file.
pub(crate) const SPILL_AT: usize = 16 << 20;

/// Bytes written to the temporary file at a time while the table is read.
const WRITE_CHUNK: usize = 1 << 16;

/// Bytes read ahead from the temporary file at a time.
const WINDOW: usize = 1 << 14;

/// Cached strings, one slot each, chosen by the string's index.
const CACHE_SLOTS: usize = 8192;

/// The longest string cached, in bytes: the cache holds at most 1 MB of text.
const CACHE_MAX_LEN: usize = 128;

/// The shared strings table: `get(index)` gives a string back.
#[derive(Debug)]
pub struct SharedStrings {
    /// Where each string ends in the texts laid back to back.
    ends: Vec<u64>,
    store: Store,
    spill_at: usize,
}

#[derive(Debug)]
enum Store {
    Memory(String),
    Spilled(Box<Spilled>),
}

/// The texts in a temporary file, and what is still to be written to it.
#[derive(Debug)]
struct Spilled {
    /// Texts after `written`, not yet in the file.
    pending: Vec<u8>,
    /// Bytes in the file.
    written: u64,
    file: Mutex<FileReader>,
}

#[derive(Debug)]
struct FileReader {
    file: File,
    /// Bytes of the file from `window_start`.
    window: Vec<u8>,
    window_start: u64,
    /// Where the last string read ends: the next in sequence starts there.
    next: u64,
    /// A string read alone.
    scratch: Vec<u8>,
    /// `(index, text)`, slot `index % CACHE_SLOTS`; `usize::MAX` marks an empty slot.
    cache: Vec<(usize, String)>,
}

impl Default for SharedStrings {
    fn default() -> Self {
        SharedStrings::with_spill_at(SPILL_AT)
    }
}

impl SharedStrings {
    /// A table whose texts move to a temporary file past `spill_at` bytes.
    pub(crate) fn with_spill_at(spill_at: usize) -> Self {
        SharedStrings {
            ends: Vec::new(),
            store: Store::Memory(String::new()),
            spill_at,
        }
    }

    /// Adds a string at the next index.
    pub(crate) fn push(&mut self, s: &str) -> io::Result<()> {
        match &mut self.store {
            Store::Memory(text) => {
                text.push_str(s);
                self.ends.push(text.len() as u64);
                if text.len() > self.spill_at {
                    let mut file = tempfile::tempfile()?;
                    file.write_all(text.as_bytes())?;
                    self.store = Store::Spilled(Box::new(Spilled {
                        pending: Vec::with_capacity(WRITE_CHUNK),
                        written: text.len() as u64,
                        file: Mutex::new(FileReader {
                            file,
                            window: Vec::new(),
                            window_start: 0,
                            next: 0,
                            scratch: Vec::new(),
                            cache: Vec::new(),
                        }),
                    }));
                }
            }
            Store::Spilled(spilled) => {
                spilled.pending.extend_from_slice(s.as_bytes());
                self.ends
                    .push(spilled.written + spilled.pending.len() as u64);
                if spilled.pending.len() >= WRITE_CHUNK {
                    spilled.write_pending()?;
                }
            }
        }
        Ok(())
    }

    /// Reserves room for the ends of `strings` more strings.
    pub(crate) fn reserve(&mut self, strings: usize) {
        self.ends.reserve(strings);
    }

    /// The table is complete: writes what is pending and frees the room left over.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        self.ends.shrink_to_fit();
        match &mut self.store {
            Store::Memory(text) => text.shrink_to_fit(),
            Store::Spilled(spilled) => {
                spilled.write_pending()?;
                spilled.pending = Vec::new();
            }
        }
        Ok(())
    }

    /// How many strings the table holds.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the texts are in a temporary file.
    #[cfg(test)]
    fn is_spilled(&self) -> bool {
        matches!(self.store, Store::Spilled(_))
    }

    /// The string at `index`, or `None` past the table's end; an error if the temporary
    /// file cannot be read back.
    pub(crate) fn get(&self, index: usize) -> io::Result<Option<Cow<'_, str>>> {
        let Some(&end) = self.ends.get(index) else {
            return Ok(None);
        };
        let start = match index {
            0 => 0,
            _ => self.ends[index - 1],
        };
        match &self.store {
            Store::Memory(text) => Ok(text.get(start as usize..end as usize).map(Cow::Borrowed)),
            Store::Spilled(spilled) => spilled.get(index, start, end).map(Some),
        }
    }
}

impl Spilled {
    fn write_pending(&mut self) -> io::Result<()> {
        let reader = self.file.get_mut().unwrap_or_else(PoisonError::into_inner);
        reader.file.seek(SeekFrom::Start(self.written))?;
        reader.file.write_all(&self.pending)?;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    fn get(&self, index: usize, start: u64, end: u64) -> io::Result<Cow<'_, str>> {
        if start >= self.written {
            let at = (start - self.written) as usize..(end - self.written) as usize;
            return utf8(&self.pending[at]).map(Cow::Borrowed);
        }
        let mut reader = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = index % CACHE_SLOTS;
        if let Some((cached, text)) = reader.cache.get(slot) {
            if *cached == index {
                return Ok(Cow::Owned(text.clone()));
            }
        }
        let len = (end - start) as usize;
        let (bytes, again) = reader.bytes(start, len, self.written)?;
        let text = utf8(bytes)?.to_owned();
        if again && len <= CACHE_MAX_LEN {
            if reader.cache.is_empty() {
                reader.cache = vec![(usize::MAX, String::new()); CACHE_SLOTS];
            }
            let (cached, held) = &mut reader.cache[slot];
            *cached = index;
            held.clear();
            held.push_str(&text);
        }
        Ok(Cow::Owned(text))
    }
}

impl FileReader {
    /// The `len` bytes of the file from `start`, of a file of `size` bytes, and whether they
    /// are a string used again (read alone rather than in sequence).
    fn bytes(&mut self, start: u64, len: usize, size: u64) -> io::Result<(&[u8], bool)> {
        let end = start + len as u64;
        let sequel = start == self.next;
        self.next = end;
        let window_end = self.window_start + self.window.len() as u64;
        if start >= self.window_start && end <= window_end {
            let at = (start - self.window_start) as usize;
            return Ok((&self.window[at..at + len], false));
        }
        let ahead = start >= window_end && start - window_end < WINDOW as u64;
        if !(ahead || sequel || len > WINDOW) {
            self.scratch.clear();
            self.scratch.resize(len, 0);
            read_exact_at(&self.file, &mut self.scratch, start)?;
            return Ok((&self.scratch[..], true));
        }
        let want = (len.max(WINDOW) as u64).min(size - start) as usize;
        if self.window.capacity() > 4 * WINDOW && want <= WINDOW {
            // A long string widened it: give the room back.
            self.window = Vec::new();
        }
        self.window.clear();
        self.window.resize(want, 0);
        self.window_start = start;
        if let Err(e) = read_exact_at(&self.file, &mut self.window, start) {
            self.window.clear();
            return Err(e);
        }
        Ok((&self.window[..len], false))
    }
}

/// Reads `buf.len()` bytes of `file` from `at`.
#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
}

/// Reads `buf.len()` bytes of `file` from `at`.
#[cfg(not(unix))]
fn read_exact_at(mut file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    file.seek(SeekFrom::Start(at))?;
    io::Read::read_exact(&mut file, buf)
}

fn utf8(bytes: &[u8]) -> io::Result<&str> {
    std::str::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic shuffle, so a failure repeats.
    fn shuffled(n: usize, mut seed: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        order
    }

    fn sample(i: usize) -> String {
        if i % 997 == 996 {
            // Longer than the window.
            return "ß".repeat(20_000 + i % 100);
        }
        match i % 7 {
            0 => String::new(),
            1 => format!("Passed {i}"),
            2 => format!("Ünïcödé ✓ 日本語 {i} 🦀"),
            3 => "x".repeat(i % 600),
            4 => format!("label-{}", i % 5),
            5 => "€".repeat(i % 3000),
            _ => format!("{i}"),
        }
    }

    fn check(strings: &SharedStrings, texts: &[String], order: &[usize]) {
        for &i in order {
            let got = strings.get(i).unwrap().unwrap();
            assert_eq!(got, texts[i], "string {i}");
        }
        assert!(strings.get(texts.len()).unwrap().is_none());
    }

    #[test]
    fn small_tables_stay_in_memory() {
        let mut strings = SharedStrings::default();
        let texts: Vec<String> = (0..1000).map(sample).collect();
        for t in &texts {
            strings.push(t).unwrap();
        }
        strings.finish().unwrap();
        assert!(!strings.is_spilled());
        assert!(matches!(strings.get(1).unwrap(), Some(Cow::Borrowed(_))));
        check(&strings, &texts, &shuffled(texts.len(), 7));
    }

    #[test]
    fn a_table_past_the_threshold_reads_back_every_string() {
        let mut strings = SharedStrings::with_spill_at(10_000);
        let texts: Vec<String> = (0..20_000).map(sample).collect();
        assert!(texts.iter().map(String::len).sum::<usize>() > 50 * WRITE_CHUNK);
        for t in &texts {
            strings.push(t).unwrap();
        }
        assert!(strings.is_spilled());
        // Before `finish`, some strings are still waiting to be written.
        check(&strings, &texts, &shuffled(texts.len(), 11));
        strings.finish().unwrap();
        assert_eq!(strings.len(), texts.len());
        // In table order, in random order (twice, the second through the cache), and
        // repeating a few strings between distant ones.
        check(&strings, &texts, &(0..texts.len()).collect::<Vec<_>>());
        let order = shuffled(texts.len(), 3);
        check(&strings, &texts, &order);
        check(&strings, &texts, &order);
        let repeats: Vec<usize> = order
            .iter()
            .flat_map(|&i| [i, i % 5, 4096 + i % 5])
            .collect();
        check(&strings, &texts, &repeats);
    }

    #[test]
    fn empty_strings_read_back_after_a_spill() {
        let mut strings = SharedStrings::with_spill_at(0);
        strings.push("").unwrap();
        strings.push("a").unwrap();
        strings.push("").unwrap();
        strings.finish().unwrap();
        assert!(strings.is_spilled());
        assert_eq!(strings.get(0).unwrap().unwrap(), "");
        assert_eq!(strings.get(1).unwrap().unwrap(), "a");
        assert_eq!(strings.get(2).unwrap().unwrap(), "");
        assert!(strings.get(3).unwrap().is_none());
    }
}
