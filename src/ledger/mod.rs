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
//! State of a key (see [`Ledger::prior`]): `created` wins and stays until a later
//! `created` replaces its ids (`--force`); otherwise the latest event decides. An
//! `in_flight` with no later answer and an `unknown` both mean "the run may exist".
//!
//! Locking: the ledger file itself is held with an exclusive OS lock (flock /
//! LockFileEx) for the ledger's life, so whatever name reaches the file (a hard link
//! too) meets the lock. A sidecar `<state>.lock` file beside the path's real file is
//! locked first and holds the holder's pid, for the message that names it. The OS drops
//! both locks when the process dies, so a crash never leaves a stale lock; the sidecar is
//! left in place, because deleting a lock file others may have open lets two runs lock
//! different files.

pub mod keys;
pub mod policy;

pub use keys::{KeyFingerprints, KeySpec, body_hash, field_hashes, idempotency_key, row_key, scope};

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
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

#[derive(serde::Deserialize)]
struct LineIn {
    v: u32,
    event: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    row: Option<usize>,
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    test_run_id: Option<String>,
    #[serde(default)]
    test_run_human_id: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    fields: Option<String>,
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

/// One parsed line.
enum Parsed {
    Entry { scope: String, key: String, prior: Prior },
    TornMarker,
}

/// Why a line is not an entry; `Newer` is kept apart because its advice differs.
enum LineProblem {
    Invalid(String),
    Newer(u32),
}

fn parse_line(text: &[u8]) -> Result<Parsed, LineProblem> {
    let line: LineIn = serde_json::from_slice(text).map_err(|e| LineProblem::Invalid(e.to_string()))?;
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
    let scope = line.scope.ok_or_else(|| missing("scope"))?;
    let key = line.key.ok_or_else(|| missing("key"))?;
    let row = line.row.ok_or_else(|| missing("row"))?;
    let at = line.at.unwrap_or_default();
    let error = line.error.unwrap_or_default();
    let prior = match line.event.as_str() {
        "created" => Prior::Created {
            test_run_id: line.test_run_id,
            test_run_human_id: line.test_run_human_id,
            row,
            at,
            body: line.body,
            fields: line.fields,
        },
        "in_flight" => Prior::InFlight { row, at },
        "failed" => Prior::Failed { row, error, at },
        "unknown" => Prior::Unknown { row, error, at },
        other => {
            return Err(LineProblem::Invalid(format!(
                "unknown event \"{other}\"; known: in_flight, created, failed, unknown"
            )));
        }
    };
    Ok(Parsed::Entry { scope, key, prior })
}

/// `created` stays until a later `created`; anything else follows the latest event.
fn fold(states: &mut HashMap<(String, String), Prior>, scope: String, key: String, next: Prior) {
    match states.entry((scope, key)) {
        Entry::Occupied(mut seen) => {
            if next.is_created() || !seen.get().is_created() {
                seen.insert(next);
            }
        }
        Entry::Vacant(empty) => {
            empty.insert(next);
        }
    }
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

/// Each (scope, key)'s latest state.
type States = HashMap<(String, String), Prior>;

/// Whether an unparsable last line could be a ledger line cut short: the start of a JSON
/// object, or the zeros a power cut can leave. Anything else (a notes file given as
/// `--state` by mistake) is no ledger, and appending to it would spoil the file.
fn could_be_torn(text: &[u8]) -> bool {
    let text = text.trim_ascii_start();
    // A whole JSON object was not cut short: one that is no ledger entry was written so.
    let whole = serde_json::from_slice::<serde_json::Value>(text).is_ok();
    (text.starts_with(b"{") && !whole) || text.iter().all(|&b| b == 0)
}

/// Every key's latest state, from a ledger's bytes. A torn last line (a crash mid-write)
/// is tolerated and noted; a bad line anywhere else is an error.
fn read_states(path: &Path, bytes: &[u8]) -> Result<(States, LoadNotes), LedgerError> {
    let mut body: &[u8] = bytes;
    if body.ends_with(b"\n") {
        body = &body[..body.len() - 1];
    }
    let lines: Vec<(usize, &[u8])> = if bytes.is_empty() {
        Vec::new()
    } else {
        body.split(|b| *b == b'\n')
            .enumerate()
            .map(|(i, line)| (i + 1, line))
            .filter(|(_, line)| !line.trim_ascii().is_empty())
            .collect()
    };

    let mut states = HashMap::new();
    let mut entries = 0;
    let mut torn_line = None;
    for (index, &(number, text)) in lines.iter().enumerate() {
        match parse_line(text) {
            Ok(Parsed::Entry { scope, key, prior }) => {
                entries += 1;
                fold(&mut states, scope, key, prior);
            }
            Ok(Parsed::TornMarker) => {}
            Err(problem) => {
                let is_last = index + 1 == lines.len();
                let marked = lines
                    .get(index + 1)
                    .is_some_and(|(_, next)| matches!(parse_line(next), Ok(Parsed::TornMarker)));
                if is_last && could_be_torn(text) {
                    torn_line = Some(number);
                } else if !marked {
                    return Err(match problem {
                        LineProblem::Newer(version) => LedgerError::NewerVersion {
                            path: path.to_path_buf(),
                            line: number,
                            version,
                        },
                        LineProblem::Invalid(reason) => LedgerError::Corrupt {
                            path: path.to_path_buf(),
                            line: number,
                            reason,
                        },
                    });
                }
            }
        }
    }

    Ok((states, LoadNotes { entries, torn_line }))
}

/// What a ledger holds, read without creating or locking it: a dry run may look while an
/// import is using it.
#[derive(Default)]
pub struct LedgerSnapshot {
    states: States,
    /// For each key, the scopes in which it was sent (see [`LedgerSnapshot::sent_scopes`]):
    /// built when first asked for, dropped when an entry is added.
    sent: std::cell::OnceCell<HashMap<String, Vec<String>>>,
}

impl LedgerSnapshot {
    fn new(states: States) -> LedgerSnapshot {
        LedgerSnapshot {
            states,
            sent: std::cell::OnceCell::new(),
        }
    }

    /// The scopes in which the ledger shows `key` created, or sent with no answer: to find
    /// rows sent through another base URL of what may be the same service.
    pub fn sent_scopes(&self, key: &str) -> &[String] {
        let sent = self.sent.get_or_init(|| {
            let mut sent: HashMap<String, Vec<String>> = HashMap::new();
            for ((scope, key), prior) in &self.states {
                if prior.is_created() || prior.is_unknown() {
                    sent.entry(key.clone()).or_default().push(scope.clone());
                }
            }
            sent
        });
        sent.get(key).map_or(&[], Vec::as_slice)
    }

    fn fold(&mut self, scope: String, key: String, prior: Prior) {
        fold(&mut self.states, scope, key, prior);
        self.sent.take();
    }

    /// `None` when there is no ledger at `path` yet.
    pub fn read(path: &Path) -> Result<Option<LedgerSnapshot>, LedgerError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LedgerError::Open {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let (states, _) = read_states(path, &bytes)?;
        Ok(Some(LedgerSnapshot::new(states)))
    }

    /// The state of `key` in `scope`, if the ledger has seen it.
    pub fn prior(&self, scope: &str, key: &str) -> Option<&Prior> {
        self.states.get(&(scope.to_string(), key.to_string()))
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
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(open_error)?;
        lock_file(&file, path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(open_error)?;

        let needs_newline = !bytes.is_empty() && !bytes.ends_with(b"\n");
        let (states, notes) = read_states(path, &bytes)?;
        let ledger = Ledger {
            path: path.to_path_buf(),
            file,
            _lock: lock,
            known: LedgerSnapshot::new(states),
            needs_newline,
            needs_marker: notes.torn_line.is_some(),
        };
        Ok((ledger, notes))
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
        let mut bytes = Vec::with_capacity(entry.len() + 80);
        if self.needs_newline {
            bytes.push(b'\n');
        }
        if self.needs_marker {
            let marker = serde_json::to_vec(&LineOut::new("torn")).map_err(|e| write_error(e.into()))?;
            bytes.extend(marker);
            bytes.push(b'\n');
        }
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
        if let Ok(Parsed::Entry { scope, key, prior }) = parse_line(&entry) {
            self.known.fold(scope, key, prior);
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
}
