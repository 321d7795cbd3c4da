//! One file per subcommand: orchestration only. Each strings the stages together and
//! leaves the rules to the stage folders.

pub mod check;
pub mod dry_run;
pub mod import;
mod outputs;
pub mod template;

use clap::CommandFactory;

use crate::cli::{Cli, Command, LogFormat, Timestamps};
use crate::exit::{Exit, SetupError};
use crate::report::{RunInfo, setup_error_in_summary};
use crate::sandbox;
use crate::settings;
use crate::ui::{console, error, say};

/// Writes an `exit_code: 2` summary for an `import` whose command line was refused before
/// it could be parsed, when `--summary-json` names a file that is not another argument.
pub fn refused_args_in_summary(args: &[std::ffi::OsString], message: &str) {
    if let Some(path) = settings::summary_path_of_refused_args(args) {
        let dry_run = args.iter().any(|a| a == "--dry-run");
        // The parser's message up to its usage lines, on one line.
        let said: Vec<&str> = message
            .lines()
            .map(str::trim)
            .take_while(|line| !line.is_empty())
            .collect();
        let said = said.join(" ");
        let said = said.strip_prefix("error: ").unwrap_or(&said);
        let run = RunInfo::new(std::time::Instant::now(), None, None);
        let _ = setup_error_in_summary(Some(&path), dry_run, run, None, anyhow::anyhow!("{said}"));
    }
}

/// Runs one command line and returns the process exit code.
pub async fn run(cli: Cli) -> Exit {
    let started = std::time::Instant::now();
    init_logging(cli.verbose, cli.log_format, cli.timestamps);
    let result = match cli.command {
        Command::Import(args) => match settings::resolve_import(&args) {
            Ok(settings) => import::run_import(settings).await,
            // A monitor reading the summary must not see the last run's success.
            Err(e) => {
                // As far as the refused settings tell: the input as given, the base URL if a
                // flag or the environment gave one.
                let run = RunInfo::new(started, Some(args.read.file.clone()), args.service.base_url.clone());
                let summary = settings::summary_path(&args);
                Err(setup_error_in_summary(
                    summary.as_deref(),
                    args.dry_run,
                    run,
                    None,
                    e.into(),
                ))
            }
        },
        Command::Check(args) => check::run_check(&args).await,
        Command::Sandbox(args) => sandbox_command(args).await,
        Command::Template(args) => template::write_template(&args.file, args.force, &crate::settings::template_status_words())
            .map(|()| {
                // Offline first: `check` needs a key, which a new user may not have yet.
                let file = args.file.display();
                say(&format!(
                    "wrote {file}: fill it in, then check it offline with `testsigma-import import {file} --dry-run`"
                ));
                say(&format!(
                    "with TESTSIGMA_API_KEY set, `testsigma-import check {file}` also asks the service (the key, the projects, the assignees)"
                ));
                Exit::Ok
            })
            .map_err(Into::into),
        Command::Man(args) => write_man_pages(&args.dir),
        Command::Completions(args) => {
            let mut cmd = Cli::command();
            clap_complete::generate(args.shell, &mut cmd, "testsigma-import", &mut std::io::stdout());
            Ok(Exit::Ok)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = SetupError::exit_of(&e);
            error(&format!("{e:#}"));
            code
        }
    }
}

/// `testsigma-import man DIR`: the man pages, made from the same definitions as `--help`.
fn write_man_pages(dir: &std::path::Path) -> anyhow::Result<Exit> {
    let cannot = |e: std::io::Error| anyhow::anyhow!("man: cannot write the pages into {}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(cannot)?;
    clap_mangen::generate_to(Cli::command(), dir).map_err(cannot)?;
    say(&format!(
        "wrote testsigma-import.1 and a page per command (testsigma-import-import.1, …) into {}; `man testsigma-import-import` shows the import's options",
        dir.display()
    ));
    Ok(Exit::Ok)
}

async fn sandbox_command(args: crate::cli::SandboxArgs) -> anyhow::Result<Exit> {
    let mut faults = Vec::new();
    for spec in &args.faults {
        faults.push(sandbox::parse_fault(spec).map_err(|e| anyhow::anyhow!("--fault {spec}: {e}"))?);
    }
    if !(0.0..=1.0).contains(&args.fail_rate) {
        anyhow::bail!("--fail-rate {}: give a share from 0 to 1, e.g. 0.2", args.fail_rate);
    }
    let users = match &args.users {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("--users: cannot read {}: {e}", path.display()))?;
            Some(serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "--users {}: expected a JSON array of {{id, email, first_name, last_name}}: {e}",
                    path.display()
                )
            })?)
        }
    };
    let options = sandbox::SandboxOptions {
        api_key: args.api_key.clone(),
        latency: std::time::Duration::from_millis(args.latency_ms),
        rate_limit: args.rate_limit,
        fail_rate: args.fail_rate,
        faults,
        users,
        projects: (!args.projects.is_empty()).then(|| args.projects.clone()),
        seed: args.seed,
        busy_reads: 0,
        test_cases: None,
    };
    sandbox::serve_until_ctrl_c(options, args.port)
        .await
        .map_err(|e| anyhow::anyhow!("sandbox: {e}"))?;
    Ok(Exit::Ok)
}

/// `-v`/`-vv` turn on tracing to stderr; `--log-format json` for log shippers. Quiet by
/// default: the summary and errors are printed directly.
fn init_logging(verbose: u8, format: LogFormat, timestamps: Timestamps) {
    let stamped = match timestamps {
        Timestamps::Auto => console::stamps_by_default(),
        Timestamps::Always => true,
        Timestamps::Never => false,
    };
    console::configure(format == LogFormat::Json, verbose > 0, stamped);
    if verbose == 0 && format == LogFormat::Text {
        return;
    }
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("testsigma_import={level}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| console::LossyStderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Says, once the rows are read, how a date column that proves no order was settled by
/// the other (a note, not a problem).
pub(crate) fn tell_date_notes(stage: &crate::validate::stage::ReadStage) {
    for note in stage.source.notes().into_iter().chain(stage.validator.column_notes()) {
        crate::ui::say(&format!("note: {note}"));
    }
}
