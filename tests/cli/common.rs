//! Shared by the upload and re-run tests: a tempdir with an in-process sandbox on a
//! loopback port, the real binary run in that dir, and readers for what it writes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use testsigma_import::sandbox::{Sandbox, SandboxOptions, StoredRun, builtin_users};
use testsigma_import::{Outcome, ReportRow};

pub const PROJECT: &str = "c47ade67-0543-4582-a4a5-b7de447c94f5";
pub const BIN: &str = env!("CARGO_BIN_EXE_testsigma-import");
pub const REPORT_HEADER: &str =
    "row,outcome,test_run_id,test_run_human_id,title,human_id,http_status,attempts,error,request_id";
/// A run that hangs longer than this is a bug, not a slow machine.
const RUN_LIMIT: Duration = Duration::from_secs(240);

/// A working directory and a sandbox, on a runtime that serves it while the binary runs.
pub struct Rig {
    pub sandbox: Sandbox,
    pub rt: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
}

/// What a finished run of the binary left on its standard streams.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Both streams, for scanning and for assertion messages.
    pub fn streams(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }

    /// The `error: ...` lines a setup error prints.
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with("error: ")).collect()
    }
}

impl Rig {
    pub fn new(opts: SandboxOptions) -> Rig {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let sandbox = rt.block_on(Sandbox::start(opts, 0)).expect("the sandbox starts");
        Rig {
            sandbox,
            rt,
            dir: tempfile::tempdir().expect("a temp dir"),
        }
    }

    /// Another sandbox on this rig's runtime (e.g. a healthy one after a failing one).
    pub fn start_sandbox(&self, opts: SandboxOptions) -> Sandbox {
        self.rt.block_on(Sandbox::start(opts, 0)).expect("the sandbox starts")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write a test file");
        path
    }

    pub fn append(&self, name: &str, contents: impl AsRef<[u8]>) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.path(name))
            .expect("open for appending");
        file.write_all(contents.as_ref()).expect("append");
    }

    pub fn read(&self, name: &str) -> String {
        let path = self.path(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Copies `samples/test-runs.csv` into the dir.
    pub fn copy_sample(&self) -> PathBuf {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/test-runs.csv");
        self.write("test-runs.csv", std::fs::read(&source).expect("the sample"))
    }

    /// `testsigma-import import FILE --base-url <this rig's sandbox>` in the dir, with a
    /// clean environment and `key` (if any) in TESTSIGMA_API_KEY.
    pub fn import(&self, file: &str, key: Option<&str>) -> std::process::Command {
        self.import_into(&self.sandbox, file, key)
    }

    pub fn import_into(&self, sandbox: &Sandbox, file: &str, key: Option<&str>) -> std::process::Command {
        let mut cmd = bare_command(self.dir.path(), key);
        cmd.args(["import", file, "--base-url", &sandbox.base_url()]);
        cmd
    }

    pub fn report(&self, name: &str) -> Vec<ReportRow> {
        read_csv_report(&self.path(name))
    }

    /// Each report row's number and outcome, in report order.
    pub fn outcomes(&self, name: &str) -> Vec<(usize, testsigma_import::Outcome)> {
        self.report(name).iter().map(|r| (r.row, r.outcome)).collect()
    }

    pub fn summary(&self, name: &str) -> Value {
        serde_json::from_str(&self.read(name)).expect("--summary-json holds JSON")
    }

    /// The plan's lines, in file order.
    pub fn plan(&self, name: &str) -> Vec<Value> {
        self.read(name)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a plan line is JSON"))
            .collect()
    }
}

/// The binary in `dir` with every TESTSIGMA_* variable removed and CI=true.
pub fn bare_command(dir: &Path, key: Option<&str>) -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    cmd.current_dir(dir)
        // The default ledger lives in the user's state directory: here, one per test.
        .env("XDG_STATE_HOME", dir.join(".state"))
        .env("CI", "true")
        .env("NO_COLOR", "1")
        .env_remove("TESTSIGMA_API_KEY")
        .env_remove("TESTSIGMA_BASE_URL")
        .env_remove("TESTSIGMA_PROJECT_ID")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    if let Some(key) = key {
        cmd.env("TESTSIGMA_API_KEY", key);
    }
    cmd
}

/// Runs to the end (bounded by [`RUN_LIMIT`]) and collects the exit code and streams.
/// Whatever the input or the service did, the binary must not have panicked.
pub fn run(cmd: std::process::Command) -> Output {
    let out = assert_cmd::Command::from_std(cmd)
        .timeout(RUN_LIMIT)
        .output()
        .expect("the binary runs");
    let output = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !output.stderr.contains("panicked") && !output.stderr.contains("RUST_BACKTRACE"),
        "the binary panicked:\n{}",
        output.streams()
    );
    output
}

/// A CSV report: its header line must be the contract's, then one row per data row.
pub fn read_csv_report(path: &Path) -> Vec<ReportRow> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        text.lines().next(),
        Some(REPORT_HEADER),
        "report header of {}",
        path.display()
    );
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .map(|r| r.expect("a report row"))
        .collect()
}

/// `Title,Project,Key` rows `Run <tag> NNN` / `<TAG>-NNN` for `range`, header first when asked.
pub fn generated_rows(tag: &str, range: std::ops::Range<usize>, header: bool) -> String {
    let mut csv = String::new();
    if header {
        csv.push_str("Title,Project,Key\n");
    }
    for i in range {
        csv.push_str(&format!("Run {tag} {i:03},{PROJECT},{}-{i:03}\n", tag.to_uppercase()));
    }
    csv
}

pub fn title_of(n: usize, tag: &str) -> String {
    format!("Run {tag} {n:03}")
}

pub fn runs_by_title(sandbox: &Sandbox) -> HashMap<String, Vec<StoredRun>> {
    let mut by_title: HashMap<String, Vec<StoredRun>> = HashMap::new();
    for run in sandbox.runs() {
        let title = run.body["title"]
            .as_str()
            .expect("a stored run has a title")
            .to_string();
        by_title.entry(title).or_default().push(run);
    }
    by_title
}

pub fn count(rows: &[ReportRow], outcome: Outcome) -> usize {
    rows.iter().filter(|r| r.outcome == outcome).count()
}

pub fn title(row: &ReportRow) -> &str {
    row.title.as_deref().expect("every report row has a title here")
}

/// The id the sandbox's built-in users give ada@example.com.
pub fn ada_id() -> String {
    builtin_users()
        .into_iter()
        .find(|u| u.email == "ada@example.com")
        .expect("ada is a built-in user")
        .id
}

/// The body a plan line promises, with an assignee the plan left unresolved (an
/// e-mail) filled in with the user id the sandbox resolves it to.
pub fn expected_body(plan_line: &Value) -> Value {
    let mut body = plan_line["body"].clone();
    if let Some(email) = plan_line.get("unresolved").and_then(|u| u["assignee_id"].as_str()) {
        assert_eq!(email, "ada@example.com", "the only e-mail assignee of the sample");
        body["assignee_id"] = Value::String(ada_id());
    }
    body
}

/// Waits (bounded) until `ready` holds, polling every 20 ms.
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads one HTTP/1.1 request whole (its head, then as many bytes as Content-Length says)
/// and returns the head; `None` if the connection ends first.
pub async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while request.len() < head_end + length {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    Some(head)
}
