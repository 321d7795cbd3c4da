//! The state file (`--state`, the ledger): which rows were sent and what became of them,
//! so a re-run does not create a run twice, and a run whose answer never came is known.
//!
//! Format: JSON Lines, append-only. Every line is written with one `write` call and
//! fsync'd (`File::sync_data`) before the call that records it returns, so a row is on
//! disk as `in_flight` before its request leaves. One line:
//!
//! ```text
//! {"v":1,"event":"in_flight"|"created"|"failed"|"unknown","scope":"https://host/api/v1/projects/<project>",
//!  "key":"human_id:DEMO-001"|"sha256:<hex>","row":7,"at":"2024-03-17T09:30:00.123Z",
//!  "test_run_id":"...","test_run_human_id":"...","error":"...","pid":4242}
//! ```
//! Fields without a value are left out. Unknown fields are ignored (later versions may
//! add some); a `v` other than 1 is refused. The API key and the request body are never
//! stored: only the row's key, which is its `human_id` or a SHA-256 hash.
//!
//! A line may also be `{"v":1,"event":"torn","at":..,"pid":..}`: written right after a
//! line that a crash left incomplete, it says "the line before me is known to be torn".
//!
//! Reading: blank lines are skipped. An unparsable LAST line is a torn write from a crash:
//! tolerated and reported in [`LoadNotes`]; the next append first ends it with `\n` and
//! writes a `torn` marker. Any other unparsable line (one not followed by a `torn` marker)
//! means the file was edited by hand or belongs to something else, and is refused with
//! its line number: guessing which rows it covered could send them twice.
//!
//! State of a key (see [`LedgerSnapshot::prior`]): `created` wins and stays until a later
//! `created` replaces its ids (`--force`); otherwise the latest event decides. An
//! `in_flight` with no later answer and an `unknown` both mean "the run may exist".
//!
//! In memory: the file is streamed once into an index ([`index`]) that holds, for each
//! (scope, key), its state, its row and the offset of the line that decides it (32 bytes
//! an entry); a key's details are read back from that line when asked for. The open
//! ledger adds each line it writes to the index, at the offset it wrote it.
//!
//! Locking: the ledger file itself is held with an exclusive OS lock (flock /
//! LockFileEx) for the ledger's life, so whatever name reaches the file (a hard link
//! too) meets the lock. A sidecar `<state>.lock` file beside the path's real file is
//! locked first and holds the holder's pid, for the message that names it. The OS drops
//! both locks when the process dies, so a crash never leaves a stale lock; the sidecar is
//! left in place, because deleting a lock file others may have open lets two runs lock
//! different files.

mod index;
pub mod keys;
pub mod policy;

pub mod sample;

use index::{Index, Record, State};
pub use keys::{KeyFingerprints, KeySpec, body_hash, field_hashes, idempotency_key, row_key, scope};

use std::borrow::Cow;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(
        "cannot open the state file {} (--state): {source}; pass --state with a writable path, \
         or --no-state to run without one",
        path.display()
    )]
    Open { path: PathBuf, source: io::Error },
    #[error(
        "the state file {} (--state) is in use by another testsigma-import run{}; \
         two runs on one state file are refused: wait for it to finish, or pass --state \
         with another file",
        path.display(),
        match holder { Some(pid) => format!(" (process {pid})"), None => String::new() }
    )]
    Locked { path: PathBuf, holder: Option<u32> },
    #[error(
        "line {line} of the state file {} (--state) is not a ledger entry ({reason}); \
         it was probably edited by hand: restore or delete that line, or pass --state with \
         a new file (rows already imported would then be sent again)",
        path.display()
    )]
    Corrupt { path: PathBuf, line: usize, reason: String },
    #[error(
        "line {line} of the state file {} (--state) has format version {version}, \
         written by a newer testsigma-import (this one reads version {VERSION}); \
         upgrade, or pass --state with another file",
        path.display()
    )]
    NewerVersion { path: PathBuf, line: usize, version: u32 },
    #[error("cannot write to the state file {} (--state): {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// What the ledger knows about a row from earlier (or this) run.
#[derive(Debug, Clone, PartialEq)]
pub enum Prior {
    Created {
        test_run_id: Option<String>,
        test_run_human_id: Option<String>,
        row: usize,
        at: String,
        /// [`body_hash`] of the request that created it (not in ledgers from before it was kept).
        body: Option<String>,
        /// [`keys::field_hashes`] of that request (not in ledgers from before they were kept).
        fields: Option<String>,
    },
    /// Sent, and no answer was recorded: the process died while waiting.
    InFlight { row: usize, at: String },
    /// The service certainly did not create it.
    Failed { row: usize, error: String, at: String },
    /// Sent, and the answer was not usable (timeout, lost connection, unreadable body).
    Unknown { row: usize, error: String, at: String },
}

impl Prior {
    pub fn is_created(&self) -> bool {
        matches!(self, Prior::Created { .. })
    }

    /// The row it was, in the run that recorded it.
    pub fn row(&self) -> usize {
        match self {
            Prior::Created { row, .. }
            | Prior::InFlight { row, .. }
            | Prior::Failed { row, .. }
            | Prior::Unknown { row, .. } => *row,
        }
    }

    /// When it was recorded.
    pub fn at(&self) -> &str {
        match self {
            Prior::Created { at, .. }
            | Prior::InFlight { at, .. }
            | Prior::Failed { at, .. }
            | Prior::Unknown { at, .. } => at,
        }
    }

    /// The created run's human id, else its id, else `?`.
    pub fn run_name(&self) -> &str {
        match self {
            Prior::Created {
                test_run_id,
                test_run_human_id,
                ..
            } => test_run_human_id.as_deref().or(test_run_id.as_deref()).unwrap_or("?"),
            _ => "?",
        }
    }

    /// The run may or may not exist: not resent without `--retry-unknown`.
    #[cfg(test)]
    pub fn is_unknown(&self) -> bool {
        matches!(self, Prior::InFlight { .. } | Prior::Unknown { .. })
    }
}

/// What a `created` line records of a row's run and request.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreatedRun<'a> {
    pub test_run_id: Option<&'a str>,
    pub test_run_human_id: Option<&'a str>,
    /// [`body_hash`] of the request.
    pub body: Option<&'a str>,
    /// [`keys::field_hashes`] of the request.
    pub fields: Option<&'a str>,
}

/// What [`Ledger::open`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadNotes {
    /// Entries read (event lines; markers and blank lines not counted).
    pub entries: usize,
    /// 1-based line number of an unparsable last line, tolerated as a torn write.
    pub torn_line: Option<usize>,
}

/// The open, locked ledger.
pub struct Ledger {
    path: PathBuf,
    file: File,
    // Held for its lock; dropping it releases the lock.
    _lock: File,
    known: LedgerSnapshot,
    /// The file does not end with `\n`: the next append starts with one.
    needs_newline: bool,
    /// The last line is (or may be) torn: the next append writes a `torn` marker.
    needs_marker: bool,
}

/// A line as read, borrowing its text where it holds no escapes.
#[derive(serde::Deserialize)]
struct LineIn<'a> {
    v: u32,
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    scope: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    key: Option<Cow<'a, str>>,
    #[serde(default)]
    row: Option<usize>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    at: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    test_run_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    test_run_human_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    error: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    body: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    fields: Option<Cow<'a, str>>,
}

/// An optional string, borrowed from the line when it can be: serde's own `Option<Cow>`
/// always copies, and the index reads every line of the file.
fn borrowed<'de, D: serde::Deserializer<'de>>(input: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    #[derive(serde::Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
    let text: Option<Text<'de>> = serde::Deserialize::deserialize(input)?;
    Ok(text.map(|Text(text)| text))
}

#[derive(serde::Serialize)]
struct LineOut<'a> {
    v: u32,
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    row: Option<usize>,
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_run_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_run_human_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    /// [`body_hash`] of what was sent, on `created` lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    /// [`keys::field_hashes`] of what was sent, on `created` lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a str>,
    pid: u32,
}

impl<'a> LineOut<'a> {
    fn new(event: &'a str) -> Self {
        LineOut {
            v: VERSION,
            event,
            scope: None,
            key: None,
            row: None,
            at: now(),
            test_run_id: None,
            test_run_human_id: None,
            error: None,
            body: None,
            fields: None,
            pid: std::process::id(),
        }
    }

    fn entry(event: &'a str, scope: &'a str, key: &'a str, row: usize) -> Self {
        LineOut {
            scope: Some(scope),
            key: Some(key),
            row: Some(row),
            ..LineOut::new(event)
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One parsed line. It is taken apart where it is made, so the entry is not boxed: that
/// would cost an allocation for every line of the file.
#[allow(clippy::large_enum_variant)]
enum Parsed<'a> {
    Entry(EntryLine<'a>),
    TornMarker,
}

/// An event line, checked: what the index needs, and the rest for [`Prior`].
struct EntryLine<'a> {
    state: State,
    scope: Cow<'a, str>,
    key: Cow<'a, str>,
    row: usize,
    line: LineIn<'a>,
}

impl EntryLine<'_> {
    /// The state the line records, with its details.
    fn into_prior(self) -> Prior {
        let (row, line) = (self.row, self.line);
        let owned = |text: Option<Cow<'_, str>>| text.map(Cow::into_owned);
        let at = owned(line.at).unwrap_or_default();
        let error = owned(line.error).unwrap_or_default();
        match self.state {
            State::Created => Prior::Created {
                test_run_id: owned(line.test_run_id),
                test_run_human_id: owned(line.test_run_human_id),
                row,
                at,
                body: owned(line.body),
                fields: owned(line.fields),
            },
            State::InFlight => Prior::InFlight { row, at },
            State::Failed => Prior::Failed { row, error, at },
            State::Unknown => Prior::Unknown { row, error, at },
        }
    }
}

/// Why a line is not an entry; `Newer` is kept apart because its advice differs.
enum LineProblem {
    Invalid(String),
    Newer(u32),
}

impl LineProblem {
    /// The error for line `line` of the ledger at `path`.
    fn refusal(self, path: &Path, line: usize) -> LedgerError {
        let path = path.to_path_buf();
        match self {
            LineProblem::Newer(version) => LedgerError::NewerVersion { path, line, version },
            LineProblem::Invalid(reason) => LedgerError::Corrupt { path, line, reason },
        }
    }
}

fn parse_line(text: &[u8]) -> Result<Parsed<'_>, LineProblem> {
    let mut line: LineIn<'_> = serde_json::from_slice(text).map_err(|e| LineProblem::Invalid(e.to_string()))?;
    if line.v > VERSION {
        return Err(LineProblem::Newer(line.v));
    }
    if line.v != VERSION {
        return Err(LineProblem::Invalid(format!("unknown version {}", line.v)));
    }
    if line.event == "torn" {
        return Ok(Parsed::TornMarker);
    }
    let missing = |field: &str| LineProblem::Invalid(format!("no \"{field}\""));
    let scope = line.scope.take().ok_or_else(|| missing("scope"))?;
    let key = line.key.take().ok_or_else(|| missing("key"))?;
    let row = line.row.ok_or_else(|| missing("row"))?;
    let Some(state) = State::from_event(&line.event) else {
        return Err(LineProblem::Invalid(format!(
            "unknown event \"{}\"; known: in_flight, created, failed, unknown",
            line.event
        )));
    };
    Ok(Parsed::Entry(EntryLine {
        state,
        scope,
        key,
        row,
        line,
    }))
}

/// The sidecar lock of the ledger at `path`, next to the file `path` really names: two
/// runs that reach one ledger by different paths (a symlink, `./s.jsonl` and `s.jsonl`,
/// a symlinked directory) must meet at one lock.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| {
        // Not created yet: its directory can still be resolved.
        match (path.parent(), path.file_name()) {
            (Some(dir), Some(name)) => {
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                std::fs::canonicalize(dir).map_or_else(|_| path.to_path_buf(), |dir| dir.join(name))
            }
            _ => path.to_path_buf(),
        }
    });
    let mut name = OsString::from(real.as_os_str());
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the sidecar lock or says who holds it.
fn take_lock(path: &Path) -> Result<File, LedgerError> {
    let lock_path = lock_path(path);
    let open_error = |source| LedgerError::Open {
        path: lock_path.clone(),
        source,
    };
    // Not truncated on open: until we hold the lock, the pid in it is the holder's.
    let mut lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(open_error)?;
    // Called through fs4 by name: std's inherent `File::try_lock` would shadow it.
    match fs4::FileExt::try_lock(&lock) {
        Ok(()) => {}
        Err(fs4::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let holder = lock
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| text.trim().parse::<u32>().ok());
            return Err(LedgerError::Locked {
                path: path.to_path_buf(),
                holder,
            });
        }
        Err(fs4::TryLockError::Error(source)) => return Err(open_error(source)),
    }
    lock.set_len(0)
        .and_then(|()| lock.seek(SeekFrom::Start(0)))
        .and_then(|_| writeln!(lock, "{}", std::process::id()))
        .and_then(|()| lock.flush())
        .map_err(open_error)?;
    Ok(lock)
}

/// Locks the ledger file itself: a hard link to it has another name, and so another
/// sidecar, but the same file. Held until the file is closed.
fn lock_file(file: &File, path: &Path) -> Result<(), LedgerError> {
    match fs4::FileExt::try_lock(file) {
        Ok(()) => Ok(()),
        Err(fs4::TryLockError::WouldBlock) => Err(LedgerError::Locked {
            path: path.to_path_buf(),
            holder: flock_holder(file),
        }),
        Err(fs4::TryLockError::Error(source)) => Err(LedgerError::Open {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The process holding a flock on `file`, from `/proc/locks` (whose lines read
/// `1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF`): the sidecar that holds the pid
/// is beside another name when the file was reached through a hard link.
#[cfg(target_os = "linux")]
fn flock_holder(file: &File) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().ok()?;
    let dev = meta.dev();
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
    let wanted = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // A lock waited for has `->` after the number, which shifts the fields: not ours.
        let held = fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&wanted.as_str());
        held.then(|| fields.get(4)?.parse().ok()).flatten()
    })
}

#[cfg(not(target_os = "linux"))]
fn flock_holder(_file: &File) -> Option<u32> {
    None
}

/// Whether an unparsable last line could be a ledger line cut short: the start of a JSON
/// object, or the zeros a power cut can leave. Anything else (a notes file given as
/// `--state` by mistake) is no ledger, and appending to it would spoil the file.
fn could_be_torn(text: &[u8]) -> bool {
    let text = text.trim_ascii_start();
    // A whole JSON object was not cut short: one that is no ledger entry was written so.
    let whole = serde_json::from_slice::<serde_json::Value>(text).is_ok();
    (text.starts_with(b"{") && !whole) || text.iter().all(|&b| b == 0)
}

/// What reading a ledger found.
struct Loaded {
    index: Index,
    notes: LoadNotes,
    /// The file does not end with `\n`.
    unended: bool,
}

/// Every key's state, streamed from a ledger's lines. A torn last line (a crash mid-write)
/// is tolerated and noted; a bad line anywhere else is an error.
fn read_index(path: &Path, file: &File) -> Result<Loaded, LedgerError> {
    let read_error = |source| LedgerError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut loader = Loader::default();
    let (mut text, mut offset, mut number, mut unended) = (Vec::new(), 0u64, 0usize, false);
    loop {
        text.clear();
        let read = reader.read_until(b'\n', &mut text).map_err(read_error)?;
        if read == 0 {
            break;
        }
        number += 1;
        unended = !text.ends_with(b"\n");
        let line = text.strip_suffix(b"\n").unwrap_or(&text);
        if !line.trim_ascii().is_empty() {
            loader
                .line(number, offset, line)
                .map_err(|(line, problem)| problem.refusal(path, line))?;
        }
        offset += read as u64;
    }
    let (index, notes) = loader.finish().map_err(|(line, problem)| problem.refusal(path, line))?;
    Ok(Loaded { index, notes, unended })
}

/// Folds a ledger's lines, one at a time, into its index.
#[derive(Default)]
struct Loader {
    index: Index,
    entries: usize,
    /// A line that is no entry (its number, why, and whether it could be cut short): told
    /// apart by what follows it. A `torn` marker says it was cut short; being last, it may
    /// be; anything else makes it a hand edit.
    unparsed: Option<(usize, LineProblem, bool)>,
}

impl Loader {
    /// Takes in the non-blank line `number`, which starts at `offset`.
    fn line(&mut self, number: usize, offset: u64, text: &[u8]) -> Result<(), (usize, LineProblem)> {
        let parsed = parse_line(text);
        if let Some((line, problem, _)) = self.unparsed.take()
            && !matches!(parsed, Ok(Parsed::TornMarker))
        {
            return Err((line, problem));
        }
        match parsed {
            Ok(Parsed::Entry(entry)) => {
                self.entries += 1;
                self.index
                    .fold(&entry.scope, &entry.key, entry.state, entry.row, offset);
            }
            Ok(Parsed::TornMarker) => {}
            Err(problem) => self.unparsed = Some((number, problem, could_be_torn(text))),
        }
        Ok(())
    }

    fn finish(self) -> Result<(Index, LoadNotes), (usize, LineProblem)> {
        let torn_line = match self.unparsed {
            Some((line, _, true)) => Some(line),
            Some((line, problem, false)) => return Err((line, problem)),
            None => None,
        };
        let notes = LoadNotes {
            entries: self.entries,
            torn_line,
        };
        Ok((self.index, notes))
    }
}

/// The line that starts at `offset`, without its `\n`.
fn read_line_at(file: &File, offset: u64) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let read = match read_at(file, &mut chunk, offset + line.len() as u64) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let got = &chunk[..read];
        if let Some(end) = memchr::memchr(b'\n', got) {
            line.extend_from_slice(&got[..end]);
            return Ok(line);
        }
        line.extend_from_slice(got);
        if read == 0 {
            return Ok(line);
        }
    }
}

/// Reads at `offset` without moving a position another reader may rely on.
#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

/// Reads at `offset`. Windows moves the handle's position; the ledger's own writes go to
/// the end whatever it is (append mode), and every read says where it starts.
#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// What a ledger holds, read without creating or locking it: a dry run may look while an
/// import is using it. The lines are not held: the index says where each key's deciding
/// line starts, and [`LedgerSnapshot::prior`] reads it back. The file is only ever
/// appended to, so an offset stays good while another run writes.
#[derive(Default)]
pub struct LedgerSnapshot {
    index: Index,
    /// The ledger, kept open to read lines back from; none for an empty snapshot.
    file: Option<File>,
}

impl LedgerSnapshot {
    /// The scopes in which the ledger shows `key` created, or sent with no answer: to find
    /// rows sent through another base URL of what may be the same service.
    pub fn sent_scopes(&self, key: &str) -> Vec<&str> {
        self.index.sent_scopes(key)
    }

    /// `None` when there is no ledger at `path` yet.
    pub fn read(path: &Path) -> Result<Option<LedgerSnapshot>, LedgerError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LedgerError::Open {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let loaded = read_index(path, &file)?;
        Ok(Some(LedgerSnapshot {
            index: loaded.index,
            file: Some(file),
        }))
    }

    /// The state of `key` in `scope`, if the ledger has seen it, with its details read
    /// back from the line that decides it.
    pub fn prior(&self, scope: &str, key: &str) -> Option<Prior> {
        let record = self.index.get(scope, key)?;
        let text = self.file.as_ref().map(|file| read_line_at(file, record.offset()));
        match text.as_ref().map(|text| text.as_deref().map(parse_line)) {
            Some(Ok(Ok(Parsed::Entry(entry)))) if entry.scope == scope && entry.key == key => Some(entry.into_prior()),
            // Another key's line: the file was rewritten in place under this run, or two
            // keys met on 128 bits. Either way the index knows nothing of this key.
            Some(Ok(Ok(Parsed::Entry(_)))) => None,
            // The line cannot be read back (the file was cut short under this run): its
            // state stands, without the details.
            _ => {
                tracing::warn!(offset = record.offset(), "a ledger line could not be read back");
                Some(without_details(record))
            }
        }
    }
}

/// A key's state as the index holds it, when its line cannot be read back.
fn without_details(record: Record) -> Prior {
    let (row, at, error) = (record.row(), String::new(), String::new());
    match record.state() {
        State::Created => Prior::Created {
            test_run_id: None,
            test_run_human_id: None,
            row,
            at,
            body: None,
            fields: None,
        },
        State::InFlight => Prior::InFlight { row, at },
        State::Failed => Prior::Failed { row, error, at },
        State::Unknown => Prior::Unknown { row, error, at },
    }
}

/// Refuses, as [`Ledger::open`] would, when another run holds the ledger at `path`, but
/// makes neither the ledger nor its lock: a run that stops before it could send a request
/// (no key, a bad base URL) leaves no trace. A lock file that is not there is held by no
/// one. Each file that is there is probed with a shared lock, let go at once.
pub fn refuse_if_held(path: &Path) -> Result<(), LedgerError> {
    for probed in [lock_path(path), path.to_path_buf()] {
        let file = match File::open(&probed) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(LedgerError::Open { path: probed, source }),
        };
        match fs4::FileExt::try_lock_shared(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                // The sidecar names the holder; through a hard link it is another name's.
                let holder = std::fs::read_to_string(lock_path(path))
                    .ok()
                    .and_then(|text| text.trim().parse::<u32>().ok())
                    .or_else(|| flock_holder(&file));
                return Err(LedgerError::Locked {
                    path: path.to_path_buf(),
                    holder,
                });
            }
            Err(fs4::TryLockError::Error(source)) => return Err(LedgerError::Open { path: probed, source }),
        }
    }
    Ok(())
}

impl Ledger {
    /// Opens the ledger at `path` (creating it if missing), locks it for this process,
    /// and reads what it holds.
    pub fn open(path: &Path) -> Result<(Ledger, LoadNotes), LedgerError> {
        let lock = take_lock(path)?;
        let open_error = |source| LedgerError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(open_error)?;
        lock_file(&file, path)?;
        let loaded = read_index(path, &file)?;
        let reader = file.try_clone().map_err(open_error)?;
        let ledger = Ledger {
            path: path.to_path_buf(),
            file,
            _lock: lock,
            known: LedgerSnapshot {
                index: loaded.index,
                file: Some(reader),
            },
            needs_newline: loaded.unended,
            needs_marker: loaded.notes.torn_line.is_some(),
        };
        Ok((ledger, loaded.notes))
    }

    /// What the ledger holds, as this run has added to it.
    pub fn known(&self) -> &LedgerSnapshot {
        &self.known
    }

    /// To be called, and to succeed, before the row's request is sent.
    pub fn record_in_flight(&mut self, scope: &str, key: &str, row: usize) -> Result<(), LedgerError> {
        self.append(LineOut::entry("in_flight", scope, key, row))
    }

    /// The row's run exists: created by this tool, or found at the service.
    pub fn record_created(
        &mut self,
        scope: &str,
        key: &str,
        row: usize,
        run: &CreatedRun<'_>,
    ) -> Result<(), LedgerError> {
        self.append(LineOut {
            test_run_id: run.test_run_id,
            test_run_human_id: run.test_run_human_id,
            body: run.body,
            fields: run.fields,
            ..LineOut::entry("created", scope, key, row)
        })
    }

    /// The service certainly did not create it.
    pub fn record_failed(&mut self, scope: &str, key: &str, row: usize, error: &str) -> Result<(), LedgerError> {
        self.append(LineOut {
            error: Some(error),
            ..LineOut::entry("failed", scope, key, row)
        })
    }

    /// Sent, and no usable answer came: stays unknown on later runs.
    pub fn record_unknown(&mut self, scope: &str, key: &str, row: usize, error: &str) -> Result<(), LedgerError> {
        self.append(LineOut {
            error: Some(error),
            ..LineOut::entry("unknown", scope, key, row)
        })
    }

    fn append(&mut self, line: LineOut<'_>) -> Result<(), LedgerError> {
        let write_error = |source| LedgerError::Write {
            path: self.path.clone(),
            source,
        };
        let entry = serde_json::to_vec(&line).map_err(|e| write_error(e.into()))?;
        // Appends go to the end, wherever a failed write left it.
        let end = self.file.metadata().map_err(write_error)?.len();
        let mut bytes = Vec::with_capacity(entry.len() + 80);
        if self.needs_newline {
            bytes.push(b'\n');
        }
        if self.needs_marker {
            let marker = serde_json::to_vec(&LineOut::new("torn")).map_err(|e| write_error(e.into()))?;
            bytes.extend(marker);
            bytes.push(b'\n');
        }
        let entry_at = end + bytes.len() as u64;
        bytes.extend_from_slice(&entry);
        bytes.push(b'\n');

        let written = self.file.write_all(&bytes).and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            // Part of the line may be on disk: end it and mark it before the next one.
            self.needs_newline = true;
            self.needs_marker = true;
            return Err(write_error(source));
        }
        self.needs_newline = false;
        self.needs_marker = false;

        // Read back through the loader's own parser, so this run sees exactly what a
        // later run will.
        if let Ok(Parsed::Entry(line)) = parse_line(&entry) {
            self.known
                .index
                .fold(&line.scope, &line.key, line.state, line.row, entry_at);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: &str = "https://test-management.testsigma.com/api/v1/projects/p1";

    fn read_lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn scope_normalisation() {
        let want = "https://test-management.testsigma.com/api/v1/projects/c47ade67";
        for base in [
            "https://test-management.testsigma.com/api/v1",
            "https://test-management.testsigma.com/api/v1/",
            "HTTPS://Test-Management.Testsigma.com/api/v1//",
            "https://test-management.testsigma.com:443/api/v1",
            " https://user:secret@test-management.testsigma.com/api/v1 ",
        ] {
            assert_eq!(scope(base, "C47ADE67"), want, "{base}");
        }
        for (base, want) in [
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/projects/p"),
            ("http://localhost:80/api", "http://localhost/api/projects/p"),
            ("https://host/API/V1", "https://host/API/V1/projects/p"),
        ] {
            assert_eq!(scope(base, "p"), want, "{base}");
        }
        assert_ne!(
            scope("http://127.0.0.1:1234/api/v1", "p"),
            scope("https://test-management.testsigma.com/api/v1", "p")
        );
    }

    #[test]
    fn idempotency_key_is_stable_hex() {
        let k = idempotency_key(SCOPE, "human_id:A");
        // Computed independently with sha256sum: retries across versions must send the same key.
        assert_eq!(k, "759dbe81446449279169de046a2d056f");
        assert!(k.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(k, idempotency_key(SCOPE, "human_id:A"));
        assert_ne!(k, idempotency_key(SCOPE, "human_id:B"));
        assert_ne!(k, idempotency_key("http://127.0.0.1/projects/p1", "human_id:A"));
    }

    #[test]
    fn record_then_reopen_gives_prior_states() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        {
            let (mut ledger, notes) = Ledger::open(&path).unwrap();
            assert_eq!(
                notes,
                LoadNotes {
                    entries: 0,
                    torn_line: None
                }
            );
            for key in ["a", "b", "c", "d", "e", "f"] {
                ledger.record_in_flight(SCOPE, key, 2).unwrap();
            }
            ledger
                .record_created(
                    SCOPE,
                    "a",
                    2,
                    &CreatedRun {
                        test_run_id: Some("id-a"),
                        test_run_human_id: Some("R-1"),
                        body: Some("b1"),
                        fields: None,
                    },
                )
                .unwrap();
            ledger.record_failed(SCOPE, "b", 3, "HTTP 422").unwrap();
            ledger.record_unknown(SCOPE, "c", 4, "timed out").unwrap();
            // d: in flight, no answer. e: created, then forced and failed.
            ledger
                .record_created(
                    SCOPE,
                    "e",
                    6,
                    &CreatedRun {
                        test_run_id: Some("id-e"),
                        test_run_human_id: None,
                        body: None,
                        fields: None,
                    },
                )
                .unwrap();
            ledger.record_in_flight(SCOPE, "e", 6).unwrap();
            ledger.record_failed(SCOPE, "e", 6, "HTTP 500").unwrap();
            // f: created twice (--force): the later ids win.
            ledger
                .record_created(
                    SCOPE,
                    "f",
                    7,
                    &CreatedRun {
                        test_run_id: Some("id-f1"),
                        test_run_human_id: None,
                        body: None,
                        fields: None,
                    },
                )
                .unwrap();
            ledger
                .record_created(
                    SCOPE,
                    "f",
                    7,
                    &CreatedRun {
                        test_run_id: Some("id-f2"),
                        test_run_human_id: None,
                        body: None,
                        fields: None,
                    },
                )
                .unwrap();
            assert!(ledger.known().prior(SCOPE, "a").unwrap().is_created());
        }
        let (ledger, notes) = Ledger::open(&path).unwrap();
        assert_eq!(notes.entries, 14);
        assert_eq!(notes.torn_line, None);

        let created_id = |key: &str| match ledger.known().prior(SCOPE, key) {
            Some(Prior::Created { test_run_id, .. }) => test_run_id.clone(),
            other => panic!("{key}: {other:?}"),
        };
        assert_eq!(created_id("a").as_deref(), Some("id-a"));
        assert_eq!(created_id("e").as_deref(), Some("id-e"));
        assert_eq!(created_id("f").as_deref(), Some("id-f2"));
        assert!(matches!(ledger.known().prior(SCOPE, "a"), Some(Prior::Created { body: Some(b), .. }) if b == "b1"));
        assert!(matches!(
            ledger.known().prior(SCOPE, "b"),
            Some(Prior::Failed { row: 3, error, .. }) if error == "HTTP 422"
        ));
        assert!(matches!(
            ledger.known().prior(SCOPE, "c"),
            Some(Prior::Unknown { row: 4, error, .. }) if error == "timed out"
        ));
        assert!(matches!(
            ledger.known().prior(SCOPE, "d"),
            Some(Prior::InFlight { row: 2, .. })
        ));
        for (key, unknown) in [("a", false), ("b", false), ("c", true), ("d", true)] {
            assert_eq!(ledger.known().prior(SCOPE, key).unwrap().is_unknown(), unknown, "{key}");
        }
        assert_eq!(ledger.known().prior(SCOPE, "zzz"), None);
        // Another scope knows nothing of these rows.
        assert_eq!(ledger.known().prior("http://127.0.0.1:9/projects/p1", "a"), None);

        // Every line is the documented shape, with a UTC timestamp and no body.
        let lines = read_lines(&path);
        assert_eq!(lines.len(), 14);
        let created = &lines[6];
        assert_eq!(created["v"], 1);
        assert_eq!(created["event"], "created");
        assert_eq!(created["scope"], SCOPE);
        assert_eq!(created["key"], "a");
        assert_eq!(created["test_run_human_id"], "R-1");
        assert_eq!(created["pid"], std::process::id());
        assert!(created["at"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn torn_last_line_is_tolerated_and_repaired() {
        let good = r#"{"v":1,"event":"created","scope":"s","key":"a","row":2,"at":"t","test_run_id":"x"}"#;
        for tail in [r#"{"v":1,"event":"in_fl"#, "\0\0\0\0", "{\"v\":1,\"ev\n"] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state.jsonl");
            std::fs::write(&path, format!("{good}\n{tail}")).unwrap();
            {
                let (mut ledger, notes) = Ledger::open(&path).unwrap();
                assert_eq!(
                    notes,
                    LoadNotes {
                        entries: 1,
                        torn_line: Some(2)
                    },
                    "{tail:?}"
                );
                assert!(ledger.known().prior("s", "a").unwrap().is_created());
                ledger.record_in_flight("s", "b", 3).unwrap();
                ledger.record_unknown("s", "b", 3, "timed out").unwrap();
            }
            // Reopens cleanly: the torn line is now marked, not a hand edit.
            let (ledger, notes) = Ledger::open(&path).unwrap();
            assert_eq!(
                notes,
                LoadNotes {
                    entries: 3,
                    torn_line: None
                },
                "{tail:?}"
            );
            assert!(ledger.known().prior("s", "b").unwrap().is_unknown());
            let text = std::fs::read_to_string(&path).unwrap();
            let after_torn: Vec<&str> = text.lines().skip(2).collect();
            assert_eq!(after_torn.len(), 3, "{text:?}");
            assert!(after_torn[0].contains(r#""event":"torn""#), "{text:?}");
            for line in after_torn {
                serde_json::from_str::<serde_json::Value>(line).unwrap();
            }
        }
    }

    #[test]
    fn complete_last_line_without_newline_gets_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        std::fs::write(
            &path,
            r#"{"v":1,"event":"failed","scope":"s","key":"a","row":2,"at":"t"}"#,
        )
        .unwrap();
        {
            let (mut ledger, notes) = Ledger::open(&path).unwrap();
            assert_eq!(
                notes,
                LoadNotes {
                    entries: 1,
                    torn_line: None
                }
            );
            ledger
                .record_created(
                    "s",
                    "a",
                    2,
                    &CreatedRun {
                        test_run_id: Some("x"),
                        test_run_human_id: None,
                        body: None,
                        fields: None,
                    },
                )
                .unwrap();
        }
        assert_eq!(read_lines(&path).len(), 2);
        let (ledger, _) = Ledger::open(&path).unwrap();
        assert!(ledger.known().prior("s", "a").unwrap().is_created());
    }

    #[test]
    fn bad_middle_lines_are_refused_with_their_number() {
        let good = r#"{"v":1,"event":"created","scope":"s","key":"a","row":2,"at":"t"}"#;
        for (middle, want) in [
            ("not json", "line 2"),
            (
                r#"{"v":1,"event":"deleted","scope":"s","key":"a","row":2}"#,
                "unknown event",
            ),
            (r#"{"v":1,"event":"created","key":"a","row":2}"#, "no \"scope\""),
            (r#"{"v":2,"event":"created","scope":"s","key":"a","row":2}"#, "newer"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state.jsonl");
            // A blank line does not count as a line that follows.
            std::fs::write(&path, format!("{good}\n{middle}\n\n{good}\n")).unwrap();
            let err = Ledger::open(&path).err().unwrap().to_string();
            assert!(err.contains(want), "{middle}: {err}");
            assert!(err.contains("line 2"), "{middle}: {err}");
            assert!(err.contains("--state"), "{middle}: {err}");
        }
    }

    /// A file that is no ledger at all (notes given as `--state` by mistake) is refused,
    /// not taken for a torn last line and appended to.
    #[test]
    fn a_last_line_that_is_no_ledger_line_is_refused() {
        let good = r#"{"v":1,"event":"created","scope":"s","key":"a","row":2,"at":"t"}"#;
        for text in [
            "meeting notes: import the Q3 runs\n".to_string(),
            "meeting notes".to_string(),
            format!("{good}\nTODO check the rest\n"),
            format!("{good}\n{{\"v\":1,\"event\":\"created\"}}\n"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("notes.txt");
            std::fs::write(&path, &text).unwrap();
            let err = Ledger::open(&path).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("is not a ledger entry"), "{text:?}: {err}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "left as it was");
        }
    }

    #[test]
    fn second_open_is_locked_with_the_holder_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        let (first, _) = Ledger::open(&path).unwrap();
        match Ledger::open(&path) {
            Err(LedgerError::Locked { path: locked, holder }) => {
                assert_eq!(locked, path);
                assert_eq!(holder, Some(std::process::id()));
            }
            Err(other) => panic!("expected Locked, got {other}"),
            Ok(_) => panic!("second open succeeded while the first holds the lock"),
        }
        let message = LedgerError::Locked {
            path: path.clone(),
            holder: Some(42),
        }
        .to_string();
        assert!(message.contains("process 42"), "{message}");
        assert!(message.contains("refused"), "{message}");
        drop(first);
        // Released with its holder: the next run gets in.
        Ledger::open(&path).unwrap();
    }

    #[test]
    fn a_held_ledger_is_refused_without_making_anything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        refuse_if_held(&path).unwrap();
        assert!(!path.exists() && !lock_path(&path).exists(), "nothing made");
        let (first, _) = Ledger::open(&path).unwrap();
        match refuse_if_held(&path) {
            Err(LedgerError::Locked { path: locked, holder }) => {
                assert_eq!(locked, path);
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        refuse_if_held(&path).unwrap();
        // The probe let go: the next run gets in.
        Ledger::open(&path).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_ledger_reached_by_another_path_is_locked_all_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        let (_first, _) = Ledger::open(&path).unwrap();
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let linked_dir = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(dir.path(), &linked_dir).unwrap();
        for other in [
            link,
            linked_dir.join("state.jsonl"),
            dir.path().join(".").join("state.jsonl"),
        ] {
            assert!(
                matches!(Ledger::open(&other), Err(LedgerError::Locked { .. })),
                "{} got in while {} is held",
                other.display(),
                path.display()
            );
        }
    }

    /// A hard link is another name with another sidecar: the lock on the file itself
    /// stops it, and the message still names the holder (from /proc/locks on Linux).
    #[cfg(unix)]
    #[test]
    fn a_ledger_reached_through_a_hard_link_is_locked_all_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        let (first, _) = Ledger::open(&path).unwrap();
        let link = dir.path().join("hard.jsonl");
        std::fs::hard_link(&path, &link).unwrap();
        match Ledger::open(&link) {
            Err(LedgerError::Locked { path: locked, holder }) => {
                assert_eq!(locked, link);
                if cfg!(target_os = "linux") {
                    assert_eq!(holder, Some(std::process::id()));
                }
            }
            Err(other) => panic!("expected Locked, got {other}"),
            Ok(_) => panic!("{} got in while {} is held", link.display(), path.display()),
        }
        drop(first);
        Ledger::open(&link).unwrap();
    }

    #[test]
    fn missing_directory_names_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("state.jsonl");
        let err = Ledger::open(&path).err().unwrap().to_string();
        assert!(err.contains("--state") && err.contains("nope"), "{err}");
    }

    fn created<'a>(id: &'a str, fields: Option<&'a str>) -> CreatedRun<'a> {
        CreatedRun {
            test_run_id: Some(id),
            test_run_human_id: Some("R-1"),
            body: Some("0123456789abcdef0123456789abcdef"),
            fields,
        }
    }

    /// The details are read back from the file at the offset each append wrote at, also
    /// after a line with no `\n` and a torn one, which the first append ends and marks.
    #[test]
    fn details_are_read_back_by_offset_after_appends() {
        let good = r#"{"v":1,"event":"created","scope":"s","key":"old","row":9,"at":"t0","test_run_id":"x"}"#;
        for start in [String::new(), good.to_owned(), format!("{good}\n{{\"v\":1,\"ev")] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state.jsonl");
            std::fs::write(&path, &start).unwrap();
            let (mut ledger, _) = Ledger::open(&path).unwrap();
            ledger.record_in_flight("s", "a", 2).unwrap();
            assert!(matches!(
                ledger.known().prior("s", "a"),
                Some(Prior::InFlight { row: 2, .. })
            ));
            ledger
                .record_created("s", "a", 2, &created("id-a", Some("title:1234abcd")))
                .unwrap();
            ledger.record_in_flight("s", "b", 3).unwrap();
            ledger
                .record_failed("s", "b", 3, "HTTP 422: \"title\" is \u{e9}mpty")
                .unwrap();
            ledger.record_unknown("s2", "a", 4, "timed out").unwrap();
            let Some(Prior::Created {
                test_run_id,
                test_run_human_id,
                row,
                at,
                body,
                fields,
            }) = ledger.known().prior("s", "a")
            else {
                panic!("{start:?}: a is not created");
            };
            assert_eq!(
                (test_run_id.as_deref(), test_run_human_id.as_deref(), row),
                (Some("id-a"), Some("R-1"), 2)
            );
            assert!(at.ends_with('Z'), "{at}");
            assert_eq!(body.as_deref(), Some("0123456789abcdef0123456789abcdef"));
            assert_eq!(fields.as_deref(), Some("title:1234abcd"));
            assert!(matches!(
                ledger.known().prior("s", "b"),
                Some(Prior::Failed { row: 3, error, .. }) if error == "HTTP 422: \"title\" is \u{e9}mpty"
            ));
            assert!(matches!(
                ledger.known().prior("s2", "a"),
                Some(Prior::Unknown { row: 4, error, .. }) if error == "timed out"
            ));
            let old = ledger.known().prior("s", "old");
            assert_eq!(old.is_some(), !start.is_empty(), "{start:?}");
            assert_eq!(ledger.known().sent_scopes("a"), ["s", "s2"]);
            assert!(ledger.known().sent_scopes("b").is_empty());
        }
    }

    /// A dry run reads the ledger while an import appends to it: what it read stays
    /// readable, whatever is written after.
    #[test]
    fn a_snapshot_reads_back_while_another_handle_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        let (mut ledger, _) = Ledger::open(&path).unwrap();
        ledger.record_created("s", "a", 2, &created("id-a1", None)).unwrap();
        ledger.record_unknown("s", "b", 3, "timed out").unwrap();
        let snapshot = LedgerSnapshot::read(&path).unwrap().unwrap();
        // After the snapshot: `a` forced again, `b` answered, `c` new.
        ledger.record_created("s", "a", 2, &created("id-a2", None)).unwrap();
        ledger.record_created("s", "b", 3, &created("id-b", None)).unwrap();
        ledger.record_in_flight("s", "c", 4).unwrap();

        let id = |known: &LedgerSnapshot, key: &str| match known.prior("s", key) {
            Some(Prior::Created { test_run_id, .. }) => test_run_id,
            other => panic!("{key}: {other:?}"),
        };
        assert_eq!(id(&snapshot, "a").as_deref(), Some("id-a1"));
        assert!(matches!(snapshot.prior("s", "b"), Some(Prior::Unknown { row: 3, .. })));
        assert_eq!(snapshot.prior("s", "c"), None);
        assert_eq!(id(ledger.known(), "a").as_deref(), Some("id-a2"));
        assert_eq!(id(ledger.known(), "b").as_deref(), Some("id-b"));
        let later = LedgerSnapshot::read(&path).unwrap().unwrap();
        assert_eq!(id(&later, "a").as_deref(), Some("id-a2"));
        assert!(matches!(later.prior("s", "c"), Some(Prior::InFlight { row: 4, .. })));
    }

    /// A snapshot of a ledger whose last line a crash cut short (a dry run reads it before
    /// an import repairs it), and after the repair, when the torn line sits in the middle.
    #[test]
    fn a_snapshot_reads_a_ledger_with_a_torn_line() {
        let a =
            r#"{"v":1,"event":"created","scope":"s","key":"a","row":2,"at":"t","test_run_id":"x","fields":"title:0"}"#;
        let b = r#"{"v":1,"event":"unknown","scope":"s","key":"b","row":3,"at":"t","error":"lost"}"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        std::fs::write(&path, format!("{a}\n\n{b}\n{{\"v\":1,\"event\":\"crea")).unwrap();
        let snapshot = LedgerSnapshot::read(&path).unwrap().unwrap();
        assert!(matches!(snapshot.prior("s", "a"), Some(Prior::Created { fields: Some(f), .. }) if f == "title:0"));
        assert!(matches!(snapshot.prior("s", "b"), Some(Prior::Unknown { error, .. }) if error == "lost"));
        {
            let (mut ledger, notes) = Ledger::open(&path).unwrap();
            assert_eq!(notes.torn_line, Some(4));
            ledger.record_failed("s", "c", 5, "HTTP 400").unwrap();
        }
        let repaired = LedgerSnapshot::read(&path).unwrap().unwrap();
        assert!(matches!(repaired.prior("s", "c"), Some(Prior::Failed { row: 5, error, .. }) if error == "HTTP 400"));
        assert!(matches!(repaired.prior("s", "a"), Some(Prior::Created { .. })));
        assert!(matches!(snapshot.prior("s", "b"), Some(Prior::Unknown { .. })));
    }

    /// A line read back must name the key asked for; a file cut short under a run keeps
    /// each key's state, without its details.
    #[test]
    fn a_line_read_back_is_checked_against_its_key() {
        let line = |key: &str, id: &str| {
            format!(r#"{{"v":1,"event":"created","scope":"s","key":"{key}","row":2,"at":"t","test_run_id":"{id}"}}"#)
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        std::fs::write(&path, format!("{}\n{}\n", line("a", "x"), line("b", "y"))).unwrap();
        let snapshot = LedgerSnapshot::read(&path).unwrap().unwrap();
        // Rewritten in place, the two lines swapped: each offset now holds the other key.
        std::fs::write(&path, format!("{}\n{}\n", line("b", "y"), line("a", "x"))).unwrap();
        assert_eq!(snapshot.prior("s", "a"), None);
        std::fs::write(&path, "").unwrap();
        assert_eq!(
            snapshot.prior("s", "b"),
            Some(Prior::Created {
                test_run_id: None,
                test_run_human_id: None,
                row: 2,
                at: String::new(),
                body: None,
                fields: None,
            })
        );
    }

    /// 200,000 lines over 100,000 keys, as an import writes them (an `in_flight`, then
    /// its answer), read back: every tenth key's state and details are right.
    #[test]
    fn many_keys_read_back_right() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        let mut out = io::BufWriter::new(File::create(&path).unwrap());
        let keys = 100_000;
        for n in 0..keys {
            let (key, id, error) = (
                format!("human_id:K-{n}"),
                format!("run-{n}"),
                format!("HTTP 5{}", n % 100),
            );
            let answer = match n % 3 {
                0 => LineOut {
                    test_run_id: Some(&id),
                    ..LineOut::entry("created", SCOPE, &key, n + 2)
                },
                1 => LineOut {
                    error: Some(&error),
                    ..LineOut::entry("failed", SCOPE, &key, n + 2)
                },
                _ => LineOut::entry("in_flight", "in-process-sandbox/projects/p1", &key, n + 2),
            };
            for line in [LineOut::entry("in_flight", SCOPE, &key, n + 2), answer] {
                serde_json::to_writer(&mut out, &line).unwrap();
                out.write_all(b"\n").unwrap();
            }
        }
        out.flush().unwrap();
        drop(out);
        let snapshot = LedgerSnapshot::read(&path).unwrap().unwrap();
        assert_eq!(snapshot.index.len(), keys + keys / 3);
        for n in (0..keys).step_by(10) {
            let key = format!("human_id:K-{n}");
            let prior = snapshot.prior(SCOPE, &key);
            match n % 3 {
                0 => assert!(
                    matches!(&prior, Some(Prior::Created { test_run_id: Some(id), row, .. }) if *id == format!("run-{n}") && *row == n + 2),
                    "{key}: {prior:?}"
                ),
                1 => assert!(
                    matches!(&prior, Some(Prior::Failed { error, .. }) if *error == format!("HTTP 5{}", n % 100)),
                    "{key}: {prior:?}"
                ),
                _ => {
                    assert!(matches!(prior, Some(Prior::InFlight { .. })), "{key}: {prior:?}");
                    assert_eq!(snapshot.sent_scopes(&key), [SCOPE, "in-process-sandbox/projects/p1"]);
                }
            }
        }
        assert_eq!(snapshot.prior(SCOPE, "human_id:K-100000"), None);
    }
}
