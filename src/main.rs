//! The binary: parse the command line, build the runtime, run, exit with the code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Known before the command line is read: a key pasted into an argument is scrubbed
    // from what is said about that argument.
    if let Some(key) = std::env::var_os("TESTSIGMA_API_KEY") {
        testsigma_import::redact::register(&key.to_string_lossy());
    }
    let cli = match testsigma_import::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let e = testsigma_import::cli::with_better_tip(e);
            // A refused command line (not --help or --version) still says so in the
            // summary a nightly job's monitor reads.
            if e.use_stderr() {
                let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
                testsigma_import::refused_args_in_summary(&args, &e.to_string());
                // The parser quotes the argument it refused, which may be the key.
                let said = testsigma_import::redact::scrub(&e.to_string()).into_owned();
                let _ = std::io::Write::write_all(&mut std::io::stderr(), said.as_bytes());
                return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
            }
            e.exit();
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(testsigma_import::run(cli));
    ExitCode::from(u8::try_from(code.code()).unwrap_or(1))
}
