//! The outcome vocabulary of the report: what became of one data row, and the report's
//! line for it in the contract's column order.

/// What became of one data row. The report's `outcome` column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    /// Its run exists: by the ledger, or found at the service.
    AlreadyImported,
    /// Its run exists but the row now differs; nothing was sent.
    Changed,
    /// Its run existed and differed, and was updated (`--update-changed`).
    Updated,
    Invalid,
    /// The service certainly did not create it.
    Failed,
    NotSent,
    /// Sent, but no usable answer came: the run may exist.
    Unknown,
    /// Dry run.
    #[default]
    Planned,
}

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Outcome::Created,
        Outcome::AlreadyImported,
        Outcome::Changed,
        Outcome::Updated,
        Outcome::Invalid,
        Outcome::Failed,
        Outcome::NotSent,
        Outcome::Unknown,
        Outcome::Planned,
    ];

    /// Whether the row is done: its run exists as the row says, or was left as it was on
    /// purpose (`changed`). A run whose rows all end so exits 0.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            Outcome::Created | Outcome::AlreadyImported | Outcome::Changed | Outcome::Updated
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::AlreadyImported => "already_imported",
            Outcome::Changed => "changed",
            Outcome::Updated => "updated",
            Outcome::Invalid => "invalid",
            Outcome::Failed => "failed",
            Outcome::NotSent => "not_sent",
            Outcome::Unknown => "unknown",
            Outcome::Planned => "planned",
        }
    }
}

/// One line of the results report, in the contract's column order.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReportRow {
    pub row: usize,
    pub outcome: Outcome,
    pub test_run_id: Option<String>,
    pub test_run_human_id: Option<String>,
    pub title: Option<String>,
    pub human_id: Option<String>,
    pub http_status: Option<u16>,
    pub attempts: u32,
    pub error: Option<String>,
    pub request_id: Option<String>,
}
