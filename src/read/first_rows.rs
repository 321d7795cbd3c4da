//! The first row of each human id, by the id's 64-bit fingerprint: a table small enough
//! to hold a million ids, whose place for an id can be fetched into the cache while the
//! rest of the row is checked.
//!
//! In a million-row dry run the validating thread spent about a seventh of its time
//! waiting for `HashMap` lookups: each id lands in a random place of a table of tens of
//! megabytes, so each lookup missed every cache. [`FirstRows::prefetch`] asks for that
//! place as soon as the id is read; by the time the row's dates and lists are checked and
//! [`FirstRows::first_or_insert`] looks, it is there.

/// Open addressing with linear probing, at most half full: a key, or 0 for an empty slot,
/// and beside it (in its own array, read only for an id seen before) the row.
#[derive(Debug, Default, Clone)]
pub struct FirstRows {
    keys: Vec<u64>,
    rows: Vec<u32>,
    len: usize,
}

impl FirstRows {
    const MIN_SLOTS: usize = 1024;

    /// 0 marks an empty slot, so fingerprint 0 is stored as 1: the two share a place, a
    /// false alarm with a chance of 1 in 2⁶³ per row, as for any two fingerprints.
    fn key(fingerprint: u64) -> u64 {
        fingerprint.max(1)
    }

    fn home(&self, key: u64) -> usize {
        // Fingerprints are well mixed: their low bits do as a place.
        (key as usize) & (self.keys.len() - 1)
    }

    /// Starts fetching the place `fingerprint` will be looked up in into the cache.
    #[inline]
    pub fn prefetch(&self, fingerprint: u64) {
        if self.keys.is_empty() {
            return;
        }
        let slot = self.home(Self::key(fingerprint));
        prefetch(self.keys[slot..].as_ptr().cast());
        prefetch(self.rows[slot..].as_ptr().cast());
    }

    /// The row `fingerprint` was first seen in: `row` itself, and remembered, if never before.
    pub fn first_or_insert(&mut self, fingerprint: u64, row: u32) -> u32 {
        if (self.len + 1) * 2 > self.keys.len() {
            self.grow();
        }
        let key = Self::key(fingerprint);
        let mask = self.keys.len() - 1;
        let mut slot = self.home(key);
        loop {
            match self.keys[slot] {
                0 => {
                    self.keys[slot] = key;
                    self.rows[slot] = row;
                    self.len += 1;
                    return row;
                }
                held if held == key => return self.rows[slot],
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    fn grow(&mut self) {
        let slots = (self.keys.len() * 2).max(Self::MIN_SLOTS);
        let keys = std::mem::replace(&mut self.keys, vec![0; slots]);
        let rows = std::mem::replace(&mut self.rows, vec![0; slots]);
        let mask = slots - 1;
        for (key, row) in keys.into_iter().zip(rows).filter(|(key, _)| *key != 0) {
            let mut slot = self.home(key);
            while self.keys[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            self.keys[slot] = key;
            self.rows[slot] = row;
        }
    }
}

/// A hint to the cache: it reads nothing, and any address is allowed.
#[inline(always)]
pub(crate) fn prefetch(address: *const i8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` only hints the cache. It does not dereference the pointer and
    // cannot fault, whatever the address; SSE is part of every x86-64 processor.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(address);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_first_row_of_each_fingerprint_as_a_hash_map_keeps_it() {
        use rand::{RngExt, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(7);
        // Few distinct fingerprints, so many repeat; across many growths of the table.
        let pool: Vec<u64> = (0..30_000).map(|_| rng.random()).chain([0, 1, u64::MAX]).collect();
        let mut table = FirstRows::default();
        let mut want: HashMap<u64, u32> = HashMap::new();
        for row in 0..100_000u32 {
            let fingerprint = pool[rng.random_range(0..pool.len())];
            // 0 and 1 share a key, so they are kept apart here to compare like with like.
            let fingerprint = if fingerprint == 0 { 2 } else { fingerprint };
            table.prefetch(fingerprint);
            let first = *want.entry(fingerprint).or_insert(row);
            assert_eq!(table.first_or_insert(fingerprint, row), first, "row {row}");
        }
        assert_eq!(table.len, want.len());
        assert!(table.keys.len() >= 2 * table.len, "at most half full");
    }

    #[test]
    fn fingerprint_zero_is_a_key_like_any_other() {
        let mut table = FirstRows::default();
        table.prefetch(0);
        assert_eq!(table.first_or_insert(0, 7), 7);
        assert_eq!(table.first_or_insert(0, 9), 7);
        assert_eq!(table.first_or_insert(5, 9), 9);
        assert_eq!(table.len, 2);
    }
}
