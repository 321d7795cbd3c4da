//! The command line: clap derive types. Doc comments here are the `--help` text, and
//! the man pages (`testsigma-import man DIR`) are made from the same definitions.
//!
//! Options that a config file may also set are `Option`s (or `bool`s that only turn a
//! thing on), so that `settings.rs` can tell "not given" from "given" and apply
//! flags > environment > config file > defaults. So clap cannot show their defaults: each
//! says `[default: …]` in its own words, and a test in `settings` holds those words to
//! the values the settings resolve to.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

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
    /// Write the man pages (testsigma-import.1 and one per command) into a directory.
    #[command(hide = true, after_help = MAN_EXAMPLES)]
    Man(ManArgs),
}

/// The headings `--help` groups the options under, in the order a run meets them.
pub mod heading {
    pub const INPUT: &str = "Input";
    pub const COLUMNS: &str = "Columns";
    pub const DATES: &str = "Dates";
    pub const SERVICE: &str = "Service";
    pub const UPLOAD: &str = "Upload";
    pub const RERUNS: &str = "Re-runs";
    pub const OUTPUT: &str = "Output";
}

const IMPORT_EXAMPLES: &str = "Examples:
  testsigma-import import samples/test-runs.csv --sandbox          # a rehearsal: no account, nothing real created
  testsigma-import import runs.xlsx --dry-run                      # validate offline; no key needed
  export TESTSIGMA_API_KEY=...                                     # Testsigma: Settings > API keys
  testsigma-import import runs.xlsx --sheet Runs --project-id c47ade67-0543-4582-a4a5-b7de447c94f5
  testsigma-import import export.csv --encoding windows-1252 --timezone Europe/Berlin --dry-run --plan requests.jsonl

Exit codes: 0 every row done (or a file with no rows) · 1 some rows failed, were not sent or are unknown
            2 setup error, nothing sent · 3 invalid rows, nothing sent · 130 interrupted";

const CHECK_EXAMPLES: &str = "Examples:
  TESTSIGMA_API_KEY=... testsigma-import check runs.xlsx --project-id c47ade67-0543-4582-a4a5-b7de447c94f5
  testsigma-import check samples/test-runs.csv --sandbox";

const SANDBOX_EXAMPLES: &str = "Examples:
  testsigma-import sandbox --port 8080
  testsigma-import sandbox --port 8080 --api-key secret --latency-ms 100 --rate-limit 10
  testsigma-import sandbox --fail-rate 0.2 --fault reset-after:0.05 --seed 7";

const TEMPLATE_EXAMPLES: &str = "Examples:
  testsigma-import template runs.xlsx
  testsigma-import template runs.csv";

const MAN_EXAMPLES: &str = "Examples:
  testsigma-import man ~/.local/share/man/man1 && man testsigma-import-import
  sudo testsigma-import man /usr/local/share/man/man1";

const COMPLETIONS_EXAMPLES: &str = "Examples:
  testsigma-import completions bash > ~/.local/share/bash-completion/completions/testsigma-import
  testsigma-import completions zsh > ~/.zfunc/_testsigma-import
  testsigma-import completions fish > ~/.config/fish/completions/testsigma-import.fish";

/// How the rows of a file are read, mapped and parsed. Shared by `import` and `check`.
#[derive(Debug, Clone, Default, Args)]
pub struct ReadArgs {
    /// The file to read: .csv .tsv .txt .xlsx .xlsm .xlsb .xls .ods, or `-` for CSV on stdin.
    pub file: String,

    /// Worksheet to read [default: the first visible sheet]
    #[arg(long, value_name = "NAME", help_heading = heading::INPUT)]
    pub sheet: Option<String>,

    /// 1-based row that holds the headers [default: 1]
    #[arg(long, value_name = "N", help_heading = heading::INPUT)]
    pub header_row: Option<usize>,

    /// Delimiter of delimited text: `,` `;` `tab` or `|` [default: sniffed from the header line]
    #[arg(long, value_name = "C", help_heading = heading::INPUT)]
    pub delimiter: Option<String>,

    /// Text encoding of delimited text, e.g. windows-1252, utf-16le [default: the BOM's, else UTF-8]
    #[arg(long, value_name = "NAME", help_heading = heading::INPUT)]
    pub encoding: Option<String>,

    /// Largest cell accepted, in bytes [default: 1048576]
    #[arg(long, value_name = "BYTES", help_heading = heading::INPUT)]
    pub max_cell_bytes: Option<usize>,

    /// Most columns accepted in a sheet [default: 1000]
    #[arg(long, value_name = "N", help_heading = heading::INPUT)]
    pub max_columns: Option<usize>,

    /// Config file: any option by its long name, plus [columns] and [defaults]
    /// [default: testsigma-import.toml in the working directory, if there is one]
    #[arg(long, value_name = "FILE", help_heading = heading::INPUT)]
    pub config: Option<PathBuf>,

    /// Project for rows without a project column.
    #[arg(long, env = "TESTSIGMA_PROJECT_ID", value_name = "UUID", help_heading = heading::COLUMNS)]
    pub project_id: Option<String>,

    /// TOML file with [columns] and [defaults].
    #[arg(long, value_name = "FILE.toml", help_heading = heading::COLUMNS)]
    pub mapping: Option<PathBuf>,

    /// Map one field to a header, e.g. `--column "title=Run Name"`. Repeatable; wins over --mapping.
    #[arg(long = "column", value_name = "FIELD=HEADER", help_heading = heading::COLUMNS)]
    pub columns: Vec<String>,

    /// Characters that split labels, test case ids and environment ids [default: `,;|` and newline]
    #[arg(long, value_name = "CHARS", help_heading = heading::COLUMNS)]
    pub list_separators: Option<String>,

    /// Status for rows without one: ACTIVE or CLOSED [default: ACTIVE]
    #[arg(long, value_name = "S", help_heading = heading::COLUMNS)]
    pub status: Option<String>,

    /// IANA zone for dates and times without an offset, e.g. Europe/Berlin [default: UTC]
    #[arg(long, value_name = "IANA", help_heading = heading::DATES)]
    pub timezone: Option<String>,

    /// How to read dates like 03/04/2024 [default: inferred per column]
    #[arg(long, value_name = "ORDER", value_parser = ["ymd", "dmy", "mdy"], help_heading = heading::DATES)]
    pub date_order: Option<String>,

    /// Unit of start_date and end_date in the request [default: seconds]
    #[arg(long, value_name = "UNIT", value_parser = ["seconds", "milliseconds"], help_heading = heading::DATES)]
    pub timestamp_unit: Option<String>,

    /// The fields that identify a row across runs, comma-separated; two rows with one key are
    /// invalid [default: human_id when the file has that column, else title,start_date]
    #[arg(long, value_name = "FIELDS", help_heading = heading::RERUNS)]
    pub key: Option<String>,

    /// No progress bar: only errors and the final summary.
    #[arg(long)]
    pub quiet: bool,
}

/// Where the service is and how to reach it. Shared by `import` and `check`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServiceArgs {
    /// API root [default: https://test-management.testsigma.com/api/v1]
    #[arg(long, env = "TESTSIGMA_BASE_URL", value_name = "URL", help_heading = heading::SERVICE)]
    pub base_url: Option<String>,

    /// File whose first line is the API key. Without it the key is read from
    /// TESTSIGMA_API_KEY: no flag takes the key itself.
    #[arg(long, value_name = "PATH", help_heading = heading::SERVICE)]
    pub api_key_file: Option<PathBuf>,

    /// Allow a non-loopback http:// base URL (the key would travel in clear text).
    #[arg(long, help_heading = heading::SERVICE)]
    pub allow_insecure: bool,

    /// Per-request timeout in seconds; making the connection may take half of it, 10 s at most [default: 30]
    #[arg(long, value_name = "SECS", help_heading = heading::SERVICE)]
    pub timeout: Option<f64>,

    /// Start an in-process sandbox on a free loopback port and talk to it instead of the service.
    #[arg(long, help_heading = heading::SERVICE)]
    pub sandbox: bool,

    /// Also trust this PEM certificate authority (a TLS-inspecting proxy's).
    #[arg(long, env = "TESTSIGMA_CA_CERT", value_name = "FILE", help_heading = heading::SERVICE)]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub read: ReadArgs,

    #[command(flatten)]
    pub service: ServiceArgs,

    /// Validate and plan only: no network, no key needed.
    #[arg(long, help_heading = heading::UPLOAD)]
    pub dry_run: bool,

    /// Write the exact requests as JSON Lines (with or without --dry-run); `-` is standard output.
    #[arg(long, value_name = "FILE", help_heading = heading::OUTPUT)]
    pub plan: Option<PathBuf>,

    /// Results report; a .json or .jsonl ending switches its format. Beside it, <stem>.failed.csv
    /// holds the rows not imported [default: <input stem>.report.csv in the working directory]
    #[arg(long, value_name = "FILE", help_heading = heading::OUTPUT)]
    pub report: Option<PathBuf>,

    /// Requests per second, at most, in any one-second window [default: 8]
    #[arg(long, value_name = "N", help_heading = heading::UPLOAD)]
    pub rate: Option<f64>,

    /// Requests in flight, at most [default: 4]
    #[arg(long, value_name = "N", help_heading = heading::UPLOAD)]
    pub concurrency: Option<usize>,

    /// Retries per row for retryable failures [default: 5]
    #[arg(long, value_name = "N", help_heading = heading::UPLOAD)]
    pub max_retries: Option<u32>,

    /// Ledger of imported rows; a testsigma-import.state.jsonl in the working directory is
    /// still used [default: <input stem>-<hash>.state.jsonl, one per input file, in
    /// $XDG_STATE_HOME/testsigma-import or ~/.local/state/testsigma-import]
    #[arg(long, value_name = "FILE", help_heading = heading::RERUNS)]
    pub state: Option<PathBuf>,

    /// Keep no ledger.
    #[arg(long, conflicts_with = "state", help_heading = heading::RERUNS)]
    pub no_state: bool,

    /// Send rows the ledger shows as already imported.
    #[arg(long, help_heading = heading::RERUNS)]
    pub force: bool,

    /// With --no-lookup: resend rows whose earlier answer never came (without --no-lookup the
    /// service is asked whether their runs exist).
    #[arg(long, requires = "no_lookup", help_heading = heading::RERUNS)]
    pub retry_unknown: bool,

    /// Do not ask the service which runs already exist: trust the ledger alone.
    #[arg(long, help_heading = heading::RERUNS)]
    pub no_lookup: bool,

    /// Update the runs of rows that changed since they were imported (`updated`), instead of
    /// only reporting them (`changed`).
    #[arg(long, help_heading = heading::RERUNS)]
    pub update_changed: bool,

    /// The service moved from this base URL: rows the ledger shows as created there are
    /// not sent again (and are recorded under the new address).
    #[arg(long, value_name = "URL", help_heading = heading::RERUNS)]
    pub moved_from: Option<String>,

    /// Write the run's summary as JSON: counts per outcome, times, version, input, service,
    /// ledger, report and exit code.
    #[arg(long, value_name = "FILE", help_heading = heading::OUTPUT)]
    pub summary_json: Option<PathBuf>,

    /// Upload the valid rows even if some rows are invalid.
    #[arg(long, help_heading = heading::UPLOAD)]
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
pub struct ManArgs {
    /// Directory to write the pages into (made if missing), e.g. ~/.local/share/man/man1.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Words people reach for that are no option of this tool, and what does the job. clap's
/// own guess goes by spelling alone (`--limit` → `--delimiter`).
const INSTEAD: &[(&[&str], &str)] = &[
    (
        &["--limit", "--rate-limit", "--rps", "--throttle"],
        "--rate N (requests per second, default 8) or --concurrency N (in flight, default 4)",
    ),
    (
        &["--threads", "--jobs", "--parallel", "--workers"],
        "--concurrency N (requests in flight, default 4)",
    ),
    (&["--retries", "--retry"], "--max-retries N (default 5)"),
    (
        &["--api-key", "--token", "--apikey", "--key-file"],
        "TESTSIGMA_API_KEY=... in the environment, or --api-key-file PATH: no option takes the key itself",
    ),
    (&["--url", "--host", "--endpoint", "--server"], "--base-url URL"),
    (&["--project"], "--project-id UUID"),
    (
        &["--output", "--out", "--results"],
        "--report FILE (and --summary-json FILE for a monitor)",
    ),
    (&["--ledger", "--state-file"], "--state FILE"),
    (
        &["--tz", "--time-zone"],
        "--timezone IANA, e.g. --timezone Europe/Berlin",
    ),
    (&["--worksheet", "--tab"], "--sheet NAME"),
    (&["--separator", "--sep"], "--delimiter C"),
    (&["--summary"], "--summary-json FILE"),
];

/// A refused command line's error, with a tip that fits what the unknown option was
/// meant for when it is a word people reach for (see [`INSTEAD`]); others as clap made them.
pub fn with_better_tip(error: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if error.kind() != ErrorKind::UnknownArgument {
        return error;
    }
    let Some(ContextValue::String(given)) = error.get(ContextKind::InvalidArg) else {
        return error;
    };
    let name = given.split('=').next().unwrap_or(given);
    let Some((_, tip)) = INSTEAD.iter().find(|(words, _)| words.contains(&name)) else {
        return error;
    };
    let mut cmd = Cli::command();
    cmd.build();
    // The usage of the command it was given to, not one built around clap's guess.
    let usage = match error.get(ContextKind::Usage) {
        Some(ContextValue::StyledStr(usage)) => usage.to_string(),
        _ => String::new(),
    };
    let sub = usage.split_whitespace().nth(2).unwrap_or_default().to_owned();
    let usage = match cmd.find_subcommand_mut(&sub) {
        Some(sub) => sub.render_usage(),
        None => cmd.render_usage(),
    };
    let mut better = clap::Error::new(ErrorKind::UnknownArgument).with_cmd(&cmd);
    better.insert(ContextKind::InvalidArg, ContextValue::String(given.clone()));
    better.insert(
        ContextKind::Suggested,
        ContextValue::StyledStrs(vec![format!("no such option; for that, use {tip}").into()]),
    );
    better.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
    better
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn refused(args: &[&str]) -> String {
        let error = Cli::try_parse_from(args).err().map(with_better_tip);
        error.map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn an_option_people_reach_for_gets_the_one_that_does_the_job() {
        for (args, tip) in [
            (&["t", "import", "x.csv", "--limit", "5"][..], "use --rate N"),
            (&["t", "import", "x.csv", "--threads=3"][..], "use --concurrency N"),
            (
                &["t", "check", "x.csv", "--api-key", "k"][..],
                "no option takes the key itself",
            ),
            (&["t", "import", "x.csv", "--output", "r.csv"][..], "use --report FILE"),
        ] {
            let said = refused(args);
            assert!(said.contains(tip), "{args:?}: {said}");
            let name = args[3].split('=').next().unwrap_or_default();
            assert!(said.contains(&format!("unexpected argument '{name}")), "{said}");
            assert!(
                said.contains(&format!("Usage: testsigma-import {} [OPTIONS] <FILE>", args[1])),
                "{said}"
            );
            assert!(!said.contains("--delimiter"), "no guess by spelling: {said}");
        }
        // A near miss keeps clap's own suggestion.
        let said = refused(&["t", "import", "x.csv", "--rat", "5"]);
        assert!(said.contains("a similar argument exists: '--rate'"), "{said}");
    }

    #[test]
    fn every_import_option_sits_under_a_heading_in_the_order_a_run_meets_them() {
        let mut cmd = Cli::command();
        cmd.build();
        let import = cmd.find_subcommand("import").expect("an import command").clone();
        // What is said on the console stays with the global options, under "Options".
        let global = [
            "verbose",
            "log_format",
            "timestamps",
            "quiet",
            "help",
            "version",
            "file",
        ];
        for arg in import
            .get_arguments()
            .filter(|a| !global.contains(&a.get_id().as_str()))
        {
            assert!(arg.get_help_heading().is_some(), "{} has no heading", arg.get_id());
        }
        let help = import.clone().render_help().to_string();
        let headings: Vec<&str> = help
            .lines()
            .filter(|l| l.ends_with(':') && !l.starts_with(' '))
            .collect();
        assert_eq!(
            headings,
            [
                "Arguments:",
                "Options:",
                "Input:",
                "Columns:",
                "Dates:",
                "Re-runs:",
                "Service:",
                "Upload:",
                "Output:",
                "Examples:"
            ],
            "in the order a run meets them"
        );
        for (heading, option) in [
            ("Input:", "--sheet"),
            ("Columns:", "--column"),
            ("Dates:", "--timezone"),
            ("Service:", "--base-url"),
            ("Upload:", "--rate"),
            ("Re-runs:", "--state"),
            ("Output:", "--report"),
        ] {
            let section = help
                .split("\n\n")
                .find(|part| part.starts_with(heading))
                .unwrap_or_else(|| panic!("no {heading} section:\n{help}"));
            assert!(
                section.contains(&format!("  {option} ")),
                "{option} under {heading}:\n{help}"
            );
        }
    }
}
