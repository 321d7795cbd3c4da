//! Unattended bad days, through the real binary: a service that dies mid-run or answers
//! nothing but server errors, a `Retry-After` of a day, a key that another client shares,
//! proxies in the environment, a private certificate authority, an API key pasted into the
//! wrong argument, a ledger reached through a hard link, absurd numbers, and a signal while
//! the run is still looking things up.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testsigma_import::Outcome;
use testsigma_import::sandbox::{Fault, FaultRule, SandboxOptions};

use crate::common::{Output, PROJECT, Rig, count, run, wait_until};

/// Unlike anything else a run could print, so finding it anywhere is a leak.
const KEY: &str = "tsk_live_Bd7q-bad-days-4f1e9c";

/// `Title,Project,Key` and `n` rows `Run <tag> NNN` / `BD-NNN`.
fn rows_csv(tag: &str, n: usize) -> String {
    let mut csv = String::from("Title,Project,Key\n");
    for i in 1..=n {
        csv.push_str(&format!("Run {tag} {i:03},{PROJECT},BD-{i:03}\n"));
    }
    csv
}

/// A spawned run's end and its streams. Bounded only against a hang (a run that waits
/// out a day-long `Retry-After` would never end): nothing here measures speed.
fn finish(child: Child) -> Output {
    let id = child.id();
    let (done, ended) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = done.send(());
        out
    });
    if ended.recv_timeout(Duration::from_secs(240)).is_err() {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &id.to_string()])
            .status();
        panic!("the run did not end");
    }
    let out = waiter.join().expect("the waiter").expect("the binary ends");
    let output = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!output.stderr.contains("panicked"), "{}", output.streams());
    output
}

fn spawn(mut cmd: std::process::Command) -> Child {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().expect("the binary starts")
}

// ---------------------------------------------------------------------------------------
// A service that is down.

/// The service dies mid-run (the sandbox is shut down once 20 runs exist): every later
/// request meets a refused connection, so after ten such answers in a row the run stops
/// sending. The rows not yet sent are `not_sent`, saying why; the exit code is 1, not 2,
/// since the service had answered. It used to put every remaining row through all its
/// retries (141 rows took 557 s).
#[test]
fn a_service_that_dies_mid_run_stops_the_run_and_leaves_the_rest_not_sent() {
    let rig = Rig::new(SandboxOptions::default());
    let sandbox = rig.start_sandbox(SandboxOptions::default());
    rig.write("runs.csv", rows_csv("dies", 200));
    let mut cmd = rig.import_into(&sandbox, "runs.csv", Some(KEY));
    cmd.args(["--rate", "20", "--concurrency", "4", "--state", "s.jsonl"]);
    cmd.args(["--summary-json", "summary.json"]);
    let child = spawn(cmd);
    wait_until("20 runs to be created", || sandbox.runs().len() >= 20);
    let died = Instant::now();
    rig.rt.block_on(sandbox.shutdown());
    let out = finish(child);
    // Printed for the record (`-- --nocapture`), not asserted.
    eprintln!(
        "the run ended {:.1} s after the service died",
        died.elapsed().as_secs_f64()
    );

    assert_eq!(out.code, 1, "{}", out.streams());
    assert!(
        out.stderr.contains("answers in a row from http://127.0.0.1:")
            && out.stderr.contains("said the service is down or misconfigured"),
        "{}",
        out.stderr
    );
    let rows = rig.report("runs.report.csv");
    assert_eq!(rows.len(), 200);
    let not_sent = count(&rows, Outcome::NotSent);
    assert!(count(&rows, Outcome::Created) >= 20, "{rows:#?}");
    // Ten answers in a row stop it: a handful of rows meet the dead service, not 180.
    assert!(not_sent >= 100, "{not_sent} not sent");
    for row in rows.iter().filter(|r| r.outcome == Outcome::NotSent) {
        assert_eq!(row.attempts, 0, "{row:?}");
        let error = row.error.as_deref().unwrap_or_default();
        assert!(
            error.starts_with("not sent: the run stopped after ") && error.ends_with("said the service is down"),
            "{error}"
        );
    }
    let summary: Value = serde_json::from_str(&rig.read("summary.json")).expect("summary JSON");
    assert_eq!(summary["exit_code"], 1, "{summary:#}");
    assert_eq!(summary["counts"]["not_sent"], not_sent, "{summary:#}");
}

/// A service that answers every create with a plain server error (no rate-limit message)
/// is down too: five such answers in a row before anything was created stop the run,
/// rather than sending every row. Exit 1: the service is there, it answered.
#[test]
fn a_service_that_answers_only_server_errors_is_not_sent_every_row() {
    let rig = Rig::new(SandboxOptions {
        fail_rate: 1.0,
        ..SandboxOptions::default()
    });
    rig.write("runs.csv", rows_csv("errors", 40));
    let mut cmd = rig.import("runs.csv", Some(KEY));
    cmd.args(["--concurrency", "1", "--max-retries", "1", "--rate", "50"]);
    let out = run(cmd);
    assert_eq!(out.code, 1, "{}", out.streams());
    let rows = rig.report("runs.report.csv");
    let sent: Vec<_> = rows.iter().filter(|r| r.attempts > 0).collect();
    assert!((1..=5).contains(&sent.len()), "{rows:#?}");
    assert_eq!(count(&rows, Outcome::NotSent), 40 - sent.len(), "{rows:#?}");
    assert_eq!(rig.sandbox.stats().posts_received, 5, "{}", rig.sandbox.stats());
    assert!(rig.sandbox.runs().is_empty());
}

// ---------------------------------------------------------------------------------------
// Waits.

/// `Retry-After: 100000` (28 hours) is not waited: past the one-minute bound on every
/// wait, the run stops at once. The row that got it (certainly not created) and every
/// other row are `not_sent`, the service's requested time in their messages; exit 1.
#[test]
fn a_retry_after_of_a_day_is_not_waited() {
    let rig = Rig::new(SandboxOptions {
        faults: vec![FaultRule {
            fault: Fault::RetryAfterSeconds(100_000),
            probability: 1.0,
        }],
        ..SandboxOptions::default()
    });
    rig.write("runs.csv", rows_csv("wait", 5));
    let mut cmd = rig.import("runs.csv", Some(KEY));
    cmd.args(["--concurrency", "1", "--state", "s.jsonl"]);
    let out = run(cmd);
    assert_eq!(out.code, 1, "{}", out.streams());
    assert!(
        out.stderr
            .contains("error: the service asked to wait 100000 s before trying again (Retry-After), longer than the 60 s this tool waits"),
        "{}",
        out.stderr
    );
    let rows = rig.report("runs.report.csv");
    let outcomes: Vec<(Outcome, u32, Option<u16>)> =
        rows.iter().map(|r| (r.outcome, r.attempts, r.http_status)).collect();
    assert_eq!(
        outcomes,
        [
            (Outcome::NotSent, 1, Some(503)),
            (Outcome::NotSent, 0, None),
            (Outcome::NotSent, 0, None),
            (Outcome::NotSent, 0, None),
            (Outcome::NotSent, 0, None),
        ]
    );
    for row in &rows {
        let error = row.error.as_deref().unwrap_or_default();
        assert!(
            error.starts_with("not sent: the service asked to wait 100000 s"),
            "{error}"
        );
    }
    assert_eq!(rig.sandbox.stats().posts_received, 1);
    // Refused, so certainly not created: the next run sends it.
    let ledger = rig.read("s.jsonl");
    let last: Value = serde_json::from_str(ledger.lines().last().expect("a ledger line")).expect("JSON");
    assert_eq!(last["event"], "failed", "{ledger}");
}

// ---------------------------------------------------------------------------------------
// Absurd numbers.

/// `--timeout 1e20` used to panic (exit 101) turning it into a duration: it is refused,
/// exit 2, naming the flag, and said in the summary; so are the other absurd numbers.
#[test]
fn absurd_numbers_are_refused_with_exit_2_naming_the_flag() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", rows_csv("absurd", 2));
    for (flag, value, said) in [
        (
            "--timeout",
            "1e20",
            "--timeout: `100000000000000000000`: give a number of seconds above 0, at most 3600",
        ),
        (
            "--max-retries",
            "4000000000",
            "--max-retries: `4000000000`: give a number from 0 to 100",
        ),
        (
            "--concurrency",
            "100000",
            "--concurrency: `100000`: give a number from 1 to 256",
        ),
        (
            "--rate",
            "1e9",
            "--rate: `1000000000`: give requests per second between 0.2 and 10000",
        ),
    ] {
        let mut cmd = rig.import("runs.csv", Some(KEY));
        cmd.args([flag, value, "--summary-json", "summary.json"]);
        let out = run(cmd);
        assert_eq!(out.code, 2, "{flag}: {}", out.streams());
        assert_eq!(out.error_lines(), [format!("error: {said}")], "{}", out.streams());
        let summary: Value = serde_json::from_str(&rig.read("summary.json")).expect("summary JSON");
        assert_eq!(summary["exit_code"], 2, "{summary:#}");
    }
    assert_eq!(rig.sandbox.stats().posts_received, 0);
}

// ---------------------------------------------------------------------------------------
// The ledger.

/// A second run on the same ledger through a hard link (another name, so another sidecar
/// lock) is refused like any other: the ledger file itself is locked. It used to get in,
/// and 80 of 100 rows were created twice.
#[cfg(unix)]
#[test]
fn a_second_run_through_a_hard_link_to_the_ledger_is_refused() {
    let rig = Rig::new(SandboxOptions {
        latency: Duration::from_millis(200),
        ..SandboxOptions::default()
    });
    rig.write("runs.csv", rows_csv("linked", 20));
    rig.write("s.jsonl", "");
    std::fs::hard_link(rig.path("s.jsonl"), rig.path("hard.jsonl")).expect("a hard link");
    let mut first = rig.import("runs.csv", Some(KEY));
    first.args(["--concurrency", "1", "--state", "s.jsonl"]);
    let child = spawn(first);
    let holder = child.id();
    wait_until("the first run to create a run", || !rig.sandbox.runs().is_empty());

    let mut second = rig.import("runs.csv", Some(KEY));
    second.args(["--state", "hard.jsonl", "--report", "second.report.csv"]);
    let out = run(second);
    assert_eq!(out.code, 2, "{}", out.streams());
    let said = format!("is in use by another testsigma-import run (process {holder})");
    assert!(out.stderr.contains(&said), "{}", out.stderr);

    let out = finish(child);
    assert_eq!(out.code, 0, "{}", out.streams());
    let runs = rig.sandbox.runs();
    assert_eq!(runs.len(), 20, "every row created once, none twice");
}

// ---------------------------------------------------------------------------------------
// Signals and writes.

/// SIGTERM while the run is still looking up its assignees (`GET /users`, here slow):
/// the signal is caught from before the first request, so the run ends with exit 130,
/// every row `not_sent` in the report, and a summary that says so. It used to die there,
/// with no report, leaving last night's summary in place.
#[test]
fn sigterm_during_the_user_lookup_writes_the_report_and_the_summary() {
    let rig = Rig::new(SandboxOptions {
        latency: Duration::from_secs(30),
        ..SandboxOptions::default()
    });
    rig.write(
        "runs.csv",
        format!("Title,Project,Assignee\nOne,{PROJECT},ada@example.com\nTwo,{PROJECT},\n"),
    );
    rig.write("summary.json", "{\"exit_code\": 0, \"note\": \"last night\"}\n");
    let mut cmd = rig.import("runs.csv", Some(KEY));
    cmd.args(["--summary-json", "summary.json"]);
    let child = spawn(cmd);
    wait_until("GET /users to arrive", || rig.sandbox.stats().user_lists >= 1);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = finish(child);
    assert_eq!(out.code, 130, "{}", out.streams());
    let rows = rig.report("runs.report.csv");
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!((row.outcome, row.attempts), (Outcome::NotSent, 0), "{row:?}");
        assert_eq!(row.error.as_deref(), Some("not sent: the run was interrupted"));
    }
    let summary: Value = serde_json::from_str(&rig.read("summary.json")).expect("summary JSON");
    assert_eq!(summary["exit_code"], 130, "{summary:#}");
    assert_eq!(summary["counts"]["not_sent"], 2, "{summary:#}");
    assert_eq!(rig.sandbox.stats().posts_received, 0);
}

/// The report cannot be written (a full disk: here a report that is a link to /dev/full)
/// while every row is created: the run still ends with the real counts in the summary
/// and the write error beside them, exit 2. It used to say `created: 0`.
#[cfg(target_os = "linux")]
#[test]
fn after_a_failed_report_write_the_summary_carries_the_real_counts() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", rows_csv("full", 5));
    std::os::unix::fs::symlink("/dev/full", rig.path("report.jsonl")).expect("a link to /dev/full");
    let mut cmd = rig.import("runs.csv", Some(KEY));
    cmd.args([
        "--report",
        "report.jsonl",
        "--summary-json",
        "summary.json",
        "--state",
        "s.jsonl",
    ]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{}", out.streams());
    assert_eq!(rig.sandbox.runs().len(), 5);
    let summary: Value = serde_json::from_str(&rig.read("summary.json")).expect("summary JSON");
    assert_eq!(summary["exit_code"], 2, "{summary:#}");
    assert_eq!(summary["counts"]["created"], 5, "{summary:#}");
    assert_eq!(summary["requests_sent"], 5, "{summary:#}");
    let error = summary["error"].as_str().unwrap_or_default();
    assert!(error.contains("report.jsonl"), "{summary:#}");
    // The ledger, the durable record, has every row: the next run sends nothing.
    let mut again = rig.import("runs.csv", Some(KEY));
    again.args(["--state", "s.jsonl"]);
    let again = run(again);
    assert_eq!(again.code, 0, "{}", again.streams());
    assert_eq!(rig.sandbox.runs().len(), 5);
}

// ---------------------------------------------------------------------------------------
// Proxies and certificates.

/// A TCP listener on 127.0.0.1 that counts the connections it accepts.
struct Listener {
    addr: std::net::SocketAddr,
    accepted: std::sync::Arc<std::sync::Mutex<Vec<std::net::SocketAddr>>>,
}

impl Listener {
    fn start(rig: &Rig) -> Listener {
        let listener = rig
            .rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("its address");
        let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let noted = accepted.clone();
        rig.rt.spawn(async move {
            while let Ok((_stream, peer)) = listener.accept().await {
                noted.lock().expect("the listener's lock").push(peer);
            }
        });
        Listener { addr, accepted }
    }

    /// Connections made to it before this call: a probe made now is accepted after every
    /// earlier one, so once it is seen the count is whole.
    fn connections_so_far(&self) -> usize {
        let probe = std::net::TcpStream::connect(self.addr).expect("connect to the listener");
        let mine = probe.local_addr().expect("its address");
        let mut before = 0;
        wait_until("the listener to accept the probe", || {
            let accepted = self.accepted.lock().expect("the listener's lock");
            match accepted.iter().position(|peer| *peer == mine) {
                Some(at) => {
                    before = at;
                    true
                }
                None => false,
            }
        });
        before
    }
}

/// A proxy named by the environment (every spelling) must not see a connection when the
/// base URL is on this machine, nor with `--sandbox`: it would be another host, and to an
/// `http://` base URL it would get the key in clear. The rows are created all the same.
#[test]
fn a_proxy_from_the_environment_is_not_used_for_a_loopback_service() {
    let rig = Rig::new(SandboxOptions::default());
    let proxy = Listener::start(&rig);
    let proxy_url = format!("http://{}", proxy.addr);
    rig.write("runs.csv", rows_csv("proxy", 3));
    let with_proxy = |cmd: &mut std::process::Command| {
        for name in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            cmd.env(name, &proxy_url);
        }
        cmd.env_remove("NO_PROXY").env_remove("no_proxy");
    };
    let mut cmd = rig.import("runs.csv", Some(KEY));
    with_proxy(&mut cmd);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
    assert_eq!(rig.sandbox.runs().len(), 3);

    let mut cmd = crate::common::bare_command(rig.dir.path(), None);
    cmd.args(["import", "runs.csv", "--sandbox", "--report", "sandbox.report.csv"]);
    with_proxy(&mut cmd);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
    assert_eq!(count(&rig.report("sandbox.report.csv"), Outcome::Created), 3);
    assert_eq!(proxy.connections_so_far(), 0, "the proxy was used");
}

/// `import runs.csv --base-url BASE` in the rig's dir, with the key.
fn import_at(rig: &Rig, base: &str) -> std::process::Command {
    let mut cmd = crate::common::bare_command(rig.dir.path(), Some(KEY));
    cmd.args(["import", "runs.csv", "--base-url", base]);
    cmd
}

/// A private authority and a server certificate it signed, for 127.0.0.1: the authority's
/// PEM, and the server's certificate and key in DER.
fn private_ca() -> (String, Vec<u8>, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "bad-days test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("the CA certificate");
    let server_key = KeyPair::generate().expect("a server key");
    let server = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("server params");
    let server_cert = server
        .signed_by(&server_key, &ca_cert, &ca_key)
        .expect("the server certificate");
    (ca_cert.pem(), server_cert.der().to_vec(), server_key.serialize_der())
}

/// An HTTPS server on 127.0.0.1 with `cert` that answers every request as a created run;
/// returns its base URL and how many creates reached it.
fn tls_service(rig: &Rig, cert: Vec<u8>, key: Vec<u8>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .expect("a server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = rig
        .rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("its address");
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = requests.clone();
    rig.rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, counted) = (acceptor.clone(), counted.clone());
            tokio::spawn(async move {
                // A client that does not trust the certificate ends here.
                let Ok(mut tls) = acceptor.accept(stream).await else { return };
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(n) = tls.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                    let head = String::from_utf8_lossy(&seen[..end]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if seen.len() < end + 4 + length {
                        continue;
                    }
                    // Creates are counted; a GET (the project check) gets the same answer.
                    let n = if head.starts_with("post ") {
                        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
                    } else {
                        0
                    };
                    let body = format!(r#"{{"message":"","data":{{"test_run":{{"id":"tls-{n}","human_id":"TLS-R-{n}"}}}}}}"#);
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                    return;
                }
            });
        }
    });
    (format!("https://{addr}/api/v1"), requests)
}

/// A service whose certificate a private authority signed (as a TLS-inspecting proxy's):
/// without `--ca-cert` the run stops at once (not retried as if the network had failed),
/// saying what failed and naming the flag, exit 2, nothing sent; with `--ca-cert` (or
/// `TESTSIGMA_CA_CERT`) every row is created.
#[test]
fn a_private_authority_is_refused_without_ca_cert_and_trusted_with_it() {
    let rig = Rig::new(SandboxOptions::default());
    let (ca_pem, cert, key) = private_ca();
    rig.write("ca.pem", &ca_pem);
    let (base, requests) = tls_service(&rig, cert, key);
    rig.write("runs.csv", rows_csv("tls", 3));

    let mut cmd = import_at(&rig, &base);
    cmd.args(["--summary-json", "summary.json", "--no-state", "--no-lookup"]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{}", out.streams());
    let errors = out.error_lines();
    assert_eq!(errors.len(), 1, "{}", out.streams());
    assert!(
        errors[0].contains("the service's TLS certificate is not trusted") && errors[0].contains("--ca-cert FILE"),
        "{}",
        errors[0]
    );
    let rows = rig.report("runs.report.csv");
    assert!(rows.iter().all(|r| r.outcome == Outcome::NotSent), "{rows:#?}");
    // At most the first request met the certificate (the project check before the upload
    // does), and it was not retried as a network blip.
    assert!(rows.iter().map(|r| r.attempts).sum::<u32>() <= 1, "{rows:#?}");
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 0);

    let mut cmd = import_at(&rig, &base);
    cmd.args(["--ca-cert", "ca.pem", "--no-state", "--no-lookup"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
    assert_eq!(count(&rig.report("runs.report.csv"), Outcome::Created), 3);

    let mut cmd = import_at(&rig, &base);
    cmd.args(["--no-state", "--no-lookup"])
        .env("TESTSIGMA_CA_CERT", "ca.pem");
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 6);

    // A file that is not a certificate is a setup error naming the flag.
    rig.write("not-a-cert.pem", "hello\n");
    let mut cmd = import_at(&rig, &base);
    cmd.args(["--ca-cert", "not-a-cert.pem", "--no-state", "--no-lookup"]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{}", out.streams());
    assert!(out.stderr.contains("--ca-cert not-a-cert.pem:"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------
// The key in the wrong place.

/// Every file under `dir` but the inputs, as text.
fn written_files(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".csv") && !name.contains(".report.") && !name.contains(".failed.") {
            continue;
        }
        if let Ok(bytes) = std::fs::read(entry.path()) {
            files.push((name, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    files
}

/// The API key pasted into an argument that is not for it (the key file's path, the project
/// id, a stray extra argument, the input file), once with the key also in
/// TESTSIGMA_API_KEY and, for the key file, once without: refused (exit 2), and the key is
/// in no output and no file the run wrote, the summary included. A key holding a tab is
/// looked for as typed and as text cleaning leaves it (the tab a space).
#[test]
fn a_key_pasted_into_the_wrong_argument_is_in_no_output_and_no_file() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", rows_csv("paste", 2));
    rig.write("plain.csv", "Title\nOne\n");
    let tabbed = "tsk_live_Bd7q\tpasted-tab-4f1e9c";
    let cleaned = "tsk_live_Bd7q pasted-tab-4f1e9c";
    let joined = format!("--project-id={KEY}");
    let cases: [(&str, Option<&str>, Vec<&str>); 7] = [
        ("--api-key-file KEY", Some(KEY), vec!["runs.csv", "--api-key-file", KEY]),
        (
            "--api-key-file KEY, no key set",
            None,
            vec!["runs.csv", "--api-key-file", KEY],
        ),
        ("--project-id KEY", Some(KEY), vec!["plain.csv", "--project-id", KEY]),
        ("--project-id=KEY", Some(KEY), vec!["plain.csv", &joined]),
        ("a stray argument", Some(KEY), vec!["runs.csv", KEY]),
        ("the key as the file", Some(KEY), vec![KEY]),
        (
            "a key with a tab as --project-id",
            Some(tabbed),
            vec!["plain.csv", "--project-id", tabbed],
        ),
    ];
    for (what, env_key, args) in cases {
        let _ = std::fs::remove_file(rig.path("summary.json"));
        let mut cmd = crate::common::bare_command(rig.dir.path(), env_key);
        cmd.arg("import").args(&args).args(["--summary-json", "summary.json"]);
        let out = run(cmd);
        assert_eq!(out.code, 2, "{what}: {}", out.streams());
        let summary: Value = serde_json::from_str(&rig.read("summary.json")).expect("summary JSON");
        assert_eq!(summary["exit_code"], 2, "{what}: {summary:#}");
        let mut places = vec![
            ("stdout".to_string(), out.stdout.clone()),
            ("stderr".to_string(), out.stderr.clone()),
        ];
        places.extend(written_files(rig.dir.path()));
        for (place, text) in &places {
            for secret in [KEY, tabbed, cleaned] {
                assert!(!text.contains(secret), "{what}: the key is in {place}:\n{text}");
            }
        }
    }
    assert_eq!(rig.sandbox.stats().posts_received, 0);
}

/// A key file saved with a byte-order mark (Notepad) sends the key, not the mark; one that
/// other users can read is used, with a warning to `chmod 600` it.
#[cfg(unix)]
#[test]
fn a_key_file_with_a_bom_works_and_a_readable_one_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let rig = Rig::new(SandboxOptions {
        api_key: Some(KEY.to_string()),
        ..SandboxOptions::default()
    });
    rig.write("runs.csv", rows_csv("bom", 2));
    rig.write("key.txt", format!("\u{feff}{KEY}\r\n"));
    std::fs::set_permissions(rig.path("key.txt"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut cmd = rig.import("runs.csv", None);
    cmd.args(["--api-key-file", "key.txt"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
    assert!(
        out.stderr.contains(
            "warning: the API key file key.txt can be read by other users (mode 644); run `chmod 600 key.txt`"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(rig.sandbox.runs().len(), 2);

    std::fs::set_permissions(rig.path("key.txt"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut cmd = rig.import("runs.csv", None);
    cmd.args([
        "--api-key-file",
        "key.txt",
        "--no-state",
        "--report",
        "again.report.csv",
    ]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}
