//! The first row of each human id (and of each `--key`), by a 64-bit fingerprint, in a
//! table made for a million of them.
//!
//! On the million-row dry run std's `HashMap<u64, usize>` came to 36 MB (53 MB while it
//! grew), and each new id cost two cache misses in it (its control bytes, then its slot,
//! in separate places of tens of megabytes). Here a new id costs one: the fingerprint's
//! home slot, in a table of 8-byte keys at most half full; the rows are beside them, in
//! their own array, read only for an id seen before.

/// Open addressing with linear probing: a fingerprint, or 0 for an empty slot, and its row.
#[derive(Debug, Default, Clone)]
pub(super) struct FirstRows {
    keys: Vec<u64>,
    rows: Vec<u32>,
    len: usize,
}

impl FirstRows {
    const MIN_SLOTS: usize = 1024;

    /// 0 marks an empty slot, so fingerprint 0 is kept as 1: the two are taken for one id,
    /// a false alarm with a chance of 1 in 2⁶³ a row, as for any two fingerprints.
    fn key(fingerprint: u64) -> u64 {
        fingerprint.max(1)
    }

    /// Fingerprints are SipHash values: their low bits do as the place.
    fn home(&self, key: u64) -> usize {
        (key as usize) & (self.keys.len() - 1)
    }

    /// The row `fingerprint` was first seen in: `row` itself, and remembered, if never
    /// before. Rows past 4,294,967,295 are remembered as that row.
    pub(super) fn first_or_insert(&mut self, fingerprint: u64, row: usize) -> usize {
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
                    self.rows[slot] = u32::try_from(row).unwrap_or(u32::MAX);
                    self.len += 1;
                    return row;
                }
                held if held == key => return self.rows[slot] as usize,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_as_a_hash_map_does() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(18);
        let mut table = FirstRows::default();
        let mut map = std::collections::HashMap::new();
        // Few distinct fingerprints among many rows, with 0, 1 and clashing low bits.
        let pool: Vec<u64> = (0..5_000)
            .map(|i| match i {
                0 => 0,
                1 => u64::MAX,
                i if i % 7 == 0 => (i as u64) << 40,
                _ => rng.random(),
            })
            .collect();
        for row in 2..40_000 {
            let fingerprint = pool[rng.random_range(0..pool.len())];
            let want = *map.entry(fingerprint.max(1)).or_insert(row);
            assert_eq!(table.first_or_insert(fingerprint, row), want, "row {row}");
        }
        assert_eq!(table.len, map.len());
        assert!(table.len * 2 <= table.keys.len());
    }
}
