//! The ledger in memory: for each (scope, key), its state and where in the file the line
//! that decides it starts. Nothing else of a line is held; the rest (run ids, times,
//! errors, hashes) is read back from the file when a row asks (`LedgerSnapshot::prior`).
//!
//! Why this shape: a migration's ledger has a million keys and more, and owned lines cost
//! about 2 KB a key (1.9 GB at 1,000,000 rows). An entry here is 32 bytes: the key's
//! 128-bit fingerprint (SHA-256 of the key, cut), its scope's number (a ledger has few
//! scopes, each base URL and project: they are kept once, in a table), the row, and the
//! line's offset with the state in its top byte. The map's own overhead (one control byte
//! an entry, a table between 1.14 and 2.3 times the entries) brings a key to 37 to 75
//! bytes. The map is split in 256 by the fingerprint, so that growing it never holds an
//! old and a new table of the whole at once (that would be half as much again, at peak).
//!
//! A fingerprint stands for its key: two keys meeting on 128 bits, in a ledger of 10^7
//! keys, has a chance near 10^-25. The line read back names its key all the same, and
//! `prior` checks it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use sha2::{Digest, Sha256};

/// The event that decides a key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    InFlight = 0,
    Created = 1,
    Failed = 2,
    Unknown = 3,
}

impl State {
    pub(crate) fn from_event(event: &str) -> Option<State> {
        match event {
            "in_flight" => Some(State::InFlight),
            "created" => Some(State::Created),
            "failed" => Some(State::Failed),
            "unknown" => Some(State::Unknown),
            _ => None,
        }
    }

    fn from_byte(byte: u32) -> State {
        match byte {
            0 => State::InFlight,
            1 => State::Created,
            2 => State::Failed,
            _ => State::Unknown,
        }
    }

    /// Created, or sent with no answer: the run exists or may.
    fn was_sent(self) -> bool {
        self != State::Failed
    }
}

/// 128 bits of a key's SHA-256, as four words so that an entry packs at 4-byte alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyPrint([u32; 4]);

impl KeyPrint {
    fn of(key: &str) -> KeyPrint {
        let digest = Sha256::digest(key.as_bytes());
        let word = |i: usize| u32::from_le_bytes([digest[i], digest[i + 1], digest[i + 2], digest[i + 3]]);
        KeyPrint([word(0), word(4), word(8), word(12)])
    }
}

/// A (scope, key) in the index: the scope by its number in the table of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    key: KeyPrint,
    scope: u32,
}

impl Hash for Slot {
    /// The fingerprint is already uniform: 64 of its bits, told apart by scope, are the hash.
    fn hash<H: Hasher>(&self, state: &mut H) {
        let bits = u64::from(self.key.0[0]) | (u64::from(self.key.0[1]) << 32);
        state.write_u64(bits ^ u64::from(self.scope).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }
}

/// Passes on the one `u64` a [`Slot`] writes (other writes are folded in, for safety).
#[derive(Default)]
struct SlotHasher(u64);

impl Hasher for SlotHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

/// What the index holds of a key: the row, and the deciding line's offset (56 bits) with
/// the state (top 8 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    row: u32,
    offset_low: u32,
    offset_high_and_state: u32,
}

impl Record {
    fn new(state: State, row: usize, offset: u64) -> Record {
        Record {
            row: u32::try_from(row).unwrap_or(u32::MAX),
            offset_low: offset as u32,
            offset_high_and_state: ((offset >> 32) as u32 & 0x00ff_ffff) | ((state as u32) << 24),
        }
    }

    pub(crate) fn state(self) -> State {
        State::from_byte(self.offset_high_and_state >> 24)
    }

    pub(crate) fn row(self) -> usize {
        self.row as usize
    }

    /// Where the line that decides the state starts in the file.
    pub(crate) fn offset(self) -> u64 {
        u64::from(self.offset_low) | (u64::from(self.offset_high_and_state & 0x00ff_ffff) << 32)
    }
}

type Shard = HashMap<Slot, Record, BuildHasherDefault<SlotHasher>>;

/// How many maps the entries are split in.
const SHARDS: usize = 256;

/// Every (scope, key)'s state and deciding line, folded as the lines come.
pub(crate) struct Index {
    /// Each scope once; a [`Slot`] holds its place here.
    scopes: Vec<Box<str>>,
    scope_numbers: HashMap<Box<str>, u32>,
    /// The entries, by 8 bits of the fingerprint that the map's hash does not use.
    shards: Box<[Shard]>,
}

impl Default for Index {
    fn default() -> Index {
        Index {
            scopes: Vec::new(),
            scope_numbers: HashMap::new(),
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

impl Index {
    fn shard(&self, slot: &Slot) -> &Shard {
        &self.shards[slot.key.0[3] as usize % SHARDS]
    }

    /// Takes in the line at `offset`: `created` stays until a later `created`; anything
    /// else follows the latest event.
    pub(crate) fn fold(&mut self, scope: &str, key: &str, state: State, row: usize, offset: u64) {
        let slot = Slot {
            key: KeyPrint::of(key),
            scope: self.scope_number(scope),
        };
        let next = Record::new(state, row, offset);
        let shard = &mut self.shards[slot.key.0[3] as usize % SHARDS];
        match shard.entry(slot) {
            Entry::Occupied(mut seen) => {
                if state == State::Created || seen.get().state() != State::Created {
                    seen.insert(next);
                }
            }
            Entry::Vacant(empty) => {
                empty.insert(next);
            }
        }
    }

    fn scope_number(&mut self, scope: &str) -> u32 {
        if let Some(number) = self.scope_numbers.get(scope) {
            return *number;
        }
        let number = u32::try_from(self.scopes.len()).unwrap_or(u32::MAX);
        self.scopes.push(scope.into());
        self.scope_numbers.insert(scope.into(), number);
        number
    }

    /// What the index holds of `key` in `scope`.
    pub(crate) fn get(&self, scope: &str, key: &str) -> Option<Record> {
        let scope = *self.scope_numbers.get(scope)?;
        let slot = Slot {
            key: KeyPrint::of(key),
            scope,
        };
        self.shard(&slot).get(&slot).copied()
    }

    /// The scopes in which `key` is created or was sent with no answer: one look per scope
    /// in the index, so nothing more is held for it.
    pub(crate) fn sent_scopes(&self, key: &str) -> Vec<&str> {
        let key = KeyPrint::of(key);
        (0u32..)
            .zip(&self.scopes)
            .filter(|(scope, _)| {
                let slot = Slot { key, scope: *scope };
                self.shard(&slot)
                    .get(&slot)
                    .is_some_and(|record| record.state().was_sent())
            })
            .map(|(_, scope)| &**scope)
            .collect()
    }

    /// Keys held, over every scope.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_keeps_state_row_and_offset() {
        for (state, row, offset) in [
            (State::InFlight, 0, 0),
            (State::Created, 7, 4_294_967_296 + 5),
            (State::Failed, usize::MAX, (1 << 56) - 1),
            (State::Unknown, 1_000_001, 818_666_700),
        ] {
            let record = Record::new(state, row, offset);
            assert_eq!(record.state(), state);
            assert_eq!(record.row(), row.min(u32::MAX as usize));
            assert_eq!(record.offset(), offset);
        }
        assert_eq!(std::mem::size_of::<(Slot, Record)>(), 32);
    }

    #[test]
    fn created_stays_until_a_later_created() {
        let mut index = Index::default();
        index.fold("s", "k", State::InFlight, 2, 0);
        index.fold("s", "k", State::Created, 2, 10);
        index.fold("s", "k", State::Failed, 3, 20);
        assert_eq!(
            index.get("s", "k").map(|r| (r.state(), r.offset())),
            Some((State::Created, 10))
        );
        index.fold("s", "k", State::Created, 4, 30);
        assert_eq!(index.get("s", "k").map(|r| (r.row(), r.offset())), Some((4, 30)));
        index.fold("s", "j", State::Unknown, 5, 40);
        index.fold("s", "j", State::Failed, 5, 50);
        assert_eq!(index.get("s", "j").map(Record::state), Some(State::Failed));
        assert_eq!(index.get("t", "k"), None);
        assert_eq!(index.get("s", "x"), None);
    }

    #[test]
    fn sent_scopes_are_those_created_or_unanswered() {
        let mut index = Index::default();
        for (scope, state) in [
            ("a", State::Created),
            ("b", State::Failed),
            ("c", State::InFlight),
            ("d", State::Unknown),
        ] {
            index.fold(scope, "k", state, 2, 0);
        }
        index.fold("e", "other", State::Created, 2, 0);
        assert_eq!(index.sent_scopes("k"), ["a", "c", "d"]);
        assert_eq!(index.sent_scopes("other"), ["e"]);
        assert!(index.sent_scopes("none").is_empty());
        assert_eq!(index.len(), 5);
    }
}
