//! The binary: parse the command line, build the runtime, run, exit with the code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = testsigma_import::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(testsigma_import::run(cli));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
