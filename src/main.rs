//! The binary: parse the command line, build the runtime, run, exit with the code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match testsigma_import::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let e = testsigma_import::cli::with_better_tip(e);
            // A refused command line (not --help or --version) still says so in the
            // summary a nightly job's monitor reads.
            if e.use_stderr() {
                let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
                testsigma_import::refused_args_in_summary(&args, &e.to_string());
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
