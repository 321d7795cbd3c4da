//! The command line: clap derive types. Doc comments here are the `--help` text.
//!
//! Options that a config file may also set are `Option`s (or `bool`s that only turn a
//! thing on), so that `settings.rs` can tell "not given" from "given" and apply
//! flags > environment > config file > defaults.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Create Testsigma Test Management test runs from a spreadsheet, safely: every row
/// validated before anything is sent, every row accounted for in a report, and a
/// ledger so that a re-run never creates a run twice.
#[derive(Debug, Parser)]
#[command(name = "testsigma-import", version, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v: info, -vv: debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Start each plain line on stderr with the time (RFC 3339). auto: when stderr is a
    /// file or pipe, unless the systemd journal (JOURNAL_STREAM) or a CI runner (CI)
    /// stamps lines itself.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = Timestamps::Auto, global = true)]
    pub timestamps: Timestamps,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Timestamps {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a file and create one test run per row.
    #[command(after_help = IMPORT_EXAMPLES)]
    Import(Box<ImportArgs>),
    /// Validate a file and make read-only calls to the service (key, projects,
    /// assignee e-mails). Creates nothing.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(Box<CheckArgs>),
    /// Serve a local stand-in for the API on 127.0.0.1, for rehearsals and tests.
    #[command(after_help = SANDBOX_EXAMPLES)]
    Sandbox(SandboxArgs),
    /// Write a starter .xlsx or .csv with every recognised header and one example row.
    #[command(after_help = TEMPLATE_EXAMPLES)]
    Template(TemplateArgs),
    /// Print shell completions to stdout.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
}

const IMPORT_EXAMPLES: &str = "Examples:
  testsigma-import import samples/test-runs.csv --sandbox
  TESTSIGMA_API_KEY=... testsigma-import import plan.xlsx --sheet Runs --project-id c47ade67-0543-4582-a4a5-b7de447c94f5
  testsigma-import import export.csv --encoding windows-1252 --timezone Europe/Berlin --dry-run --plan plan.jsonl";

const CHECK_EXAMPLES: &str = "Examples:
  TESTSIGMA_API_KEY=... testsigma-import check plan.xlsx --project-id c47ade67-0543-4582-a4a5-b7de447c94f5
  testsigma-import check samples/test-runs.csv --sandbox";

const SANDBOX_EXAMPLES: &str = "Examples:
  testsigma-import sandbox --port 8080
  testsigma-import sandbox --port 8080 --api-key secret --latency-ms 100 --rate-limit 10
  testsigma-import sandbox --fail-rate 0.2 --fault reset-after:0.05 --seed 7";

const TEMPLATE_EXAMPLES: &str = "Examples:
  testsigma-import template runs.xlsx
  testsigma-import template runs.csv";

const COMPLETIONS_EXAMPLES: &str = "Examples:
  testsigma-import completions bash > ~/.local/share/bash-completion/completions/testsigma-import
  testsigma-import completions zsh > ~/.zfunc/_testsigma-import
  testsigma-import completions fish > ~/.config/fish/completions/testsigma-import.fish";

/// How the rows of a file are read, mapped and parsed. Shared by `import` and `check`.
#[derive(Debug, Clone, Default, Args)]
pub struct ReadArgs {
    /// The file to read: .csv .tsv .txt .xlsx .xlsm .xlsb .xls .ods, or `-` for CSV on stdin.
    pub file: String,

    /// Project for rows without a project column.
    #[arg(long, env = "TESTSIGMA_PROJECT_ID", value_name = "UUID")]
    pub project_id: Option<String>,

    /// Worksheet to read (default: the first).
    #[arg(long, value_name = "NAME")]
    pub sheet: Option<String>,

    /// 1-based row that holds the headers.
    #[arg(long, value_name = "N")]
    pub header_row: Option<usize>,

    /// TOML file with [columns] and [defaults].
    #[arg(long, value_name = "FILE.toml")]
    pub mapping: Option<PathBuf>,

    /// Map one field to a header, e.g. `--column "title=Run Name"`. Repeatable; wins over --mapping.
    #[arg(long = "column", value_name = "FIELD=HEADER")]
    pub columns: Vec<String>,

    /// Delimiter of delimited text: `,` `;` `tab` or `|` (default: sniffed from the header line).
    #[arg(long, value_name = "C")]
    pub delimiter: Option<String>,

    /// Text encoding of delimited text, e.g. windows-1252, utf-16le (default: BOM, else UTF-8).
    #[arg(long, value_name = "NAME")]
    pub encoding: Option<String>,

    /// IANA zone for dates and times without an offset, e.g. Europe/Berlin.
    #[arg(long, value_name = "IANA")]
    pub timezone: Option<String>,

    /// How to read dates like 03/04/2024 (default: inferred per column).
    #[arg(long, value_name = "ORDER", value_parser = ["ymd", "dmy", "mdy"])]
    pub date_order: Option<String>,

    /// Characters that split labels, test case ids and environment ids (default: `,;|` and newline).
    #[arg(long, value_name = "CHARS")]
    pub list_separators: Option<String>,

    /// Unit of start_date and end_date in the request.
    #[arg(long, value_name = "UNIT", value_parser = ["seconds", "milliseconds"])]
    pub timestamp_unit: Option<String>,

    /// Default status for rows without one: ACTIVE or CLOSED.
    #[arg(long, value_name = "S")]
    pub status: Option<String>,

    /// Largest cell accepted, in bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_cell_bytes: Option<usize>,

    /// Most columns accepted in a sheet.
    #[arg(long, value_name = "N")]
    pub max_columns: Option<usize>,

    /// The fields that identify a row across runs, comma-separated (default: human_id when
    /// the file has that column, else title,start_date). Two rows with one key are invalid.
    #[arg(long, value_name = "FIELDS")]
    pub key: Option<String>,

    /// Config file (default: testsigma-import.toml in the working directory, if present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// No progress bar: only errors and the final summary.
    #[arg(long)]
    pub quiet: bool,
}

/// Where the service is and how to reach it. Shared by `import` and `check`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServiceArgs {
    /// API root.
    #[arg(long, env = "TESTSIGMA_BASE_URL", value_name = "URL")]
    pub base_url: Option<String>,

    /// File holding the API key (the key itself is read from TESTSIGMA_API_KEY; no flag takes it).
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,

    /// Allow a non-loopback http:// base URL (the key would travel in clear text).
    #[arg(long)]
    pub allow_insecure: bool,

    /// Per-request timeout in seconds; making the connection may take half of it, 10 s at most.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,

    /// Start an in-process sandbox on a free loopback port and talk to it instead of the service.
    #[arg(long)]
    pub sandbox: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub read: ReadArgs,

    #[command(flatten)]
    pub service: ServiceArgs,

    /// Validate and plan only: no network, no key needed.
    #[arg(long)]
    pub dry_run: bool,

    /// Write the exact requests as JSON Lines (with or without --dry-run).
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,

    /// Results report (default: <input stem>.report.csv here); .json / .jsonl switch format.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Requests per second, at most, in any one-second window.
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,

    /// Requests in flight, at most.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Retries per row for retryable failures.
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u32>,

    /// Ledger of imported rows (default: one per input file in the user's state directory;
    /// a testsigma-import.state.jsonl in the working directory is still used).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Keep no ledger.
    #[arg(long, conflicts_with = "state")]
    pub no_state: bool,

    /// Send rows the ledger shows as already imported.
    #[arg(long)]
    pub force: bool,

    /// With --no-lookup: resend rows whose earlier answer never came (without --no-lookup the
    /// service is asked whether their runs exist).
    #[arg(long, requires = "no_lookup")]
    pub retry_unknown: bool,

    /// Do not ask the service which runs already exist: trust the ledger alone.
    #[arg(long)]
    pub no_lookup: bool,

    /// Update the runs of rows that changed since they were imported (`updated`), instead of
    /// only reporting them (`changed`).
    #[arg(long)]
    pub update_changed: bool,

    /// The service moved from this base URL: rows the ledger shows as created there are
    /// not sent again (and are recorded under the new address).
    #[arg(long, value_name = "URL")]
    pub moved_from: Option<String>,

    /// Write counts per outcome, elapsed time, rate and exit code as JSON.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,

    /// Upload the valid rows even if some rows are invalid.
    #[arg(long)]
    pub skip_invalid: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub read: ReadArgs,

    #[command(flatten)]
    pub service: ServiceArgs,
}

#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Port on 127.0.0.1 (0: a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,

    /// Accept only this bearer key (default: any non-empty key).
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,

    /// Added before every answer, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,

    /// Requests per second per key; over it: HTTP 500 {"message":"rate limit exceeded"}.
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,

    /// Share of create requests answered with a random 500/503, creating nothing (0 to 1).
    #[arg(long, default_value_t = 0.0, value_name = "F")]
    pub fail_rate: f64,

    /// Inject a fault into create requests, e.g. reset-after:0.1, slow=5000ms:0.1, retry-after=2:0.2. Repeatable.
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<String>,

    /// Users served by GET /users, as a JSON array of {id, email, first_name, last_name}.
    #[arg(long, value_name = "FILE.json")]
    pub users: Option<PathBuf>,

    /// Projects that exist (GET /projects/{id} answers 404 for others; creating in them too). Repeatable; default: every UUID exists.
    #[arg(long = "project", value_name = "UUID")]
    pub projects: Vec<String>,

    /// Seed for the random switches, for repeatable rehearsals.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, Args)]
pub struct TemplateArgs {
    /// File to write: .xlsx or .csv.
    pub file: PathBuf,

    /// Overwrite the file if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_flag_takes_the_key_itself() {
        let cmd = Cli::command();
        let import = cmd
            .find_subcommand("import")
            .map(|c| c.get_arguments().map(|a| a.get_id().to_string()).collect::<Vec<_>>());
        let ids = import.unwrap_or_default();
        assert!(ids.contains(&"api_key_file".to_string()));
        assert!(
            !ids.contains(&"api_key".to_string()),
            "import must not take the key on the command line: {ids:?}"
        );
    }
}
