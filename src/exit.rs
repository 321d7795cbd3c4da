//! The exit codes scripts and cron jobs rely on (CONTRACT.md, "Exit codes"), and the
//! error that ends a run with one before or instead of its upload.

/// How a run ended, as the process's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    /// Every row created or already imported; in a dry run, every row planned.
    Ok,
    /// Some rows failed, were not sent, or are unknown.
    Incomplete,
    /// A usage or setup error: bad flag, unreadable file, missing or refused key.
    Setup,
    /// Validation failed and nothing was sent.
    Invalid,
    /// Interrupted; the report and ledger were written.
    Interrupted,
}

impl Exit {
    /// The number the process exits with.
    pub const fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::Incomplete => 1,
            Exit::Setup => 2,
            Exit::Invalid => 3,
            Exit::Interrupted => 130,
        }
    }
}

impl serde::Serialize for Exit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i32(self.code())
    }
}

/// An error that ends the run before or instead of the upload, with its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SetupError {
    pub message: String,
    pub exit: Exit,
    /// What stopped the run, when that decides the advice (see [`Cause`]).
    pub cause: Option<Cause>,
}

/// What kept rows from being imported, as far as the advice goes: what to put right before
/// importing them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    /// The rows themselves: invalid, or refused by the service for what they hold.
    Rows,
    /// The API key: missing, or refused by the service.
    Key,
    /// A project the rows name: it does not exist, or the key cannot see it.
    Project,
    /// The service: it could not be reached, was down, or gave no usable answer.
    Service,
    /// The run was interrupted.
    Interrupted,
    /// Anything else, which the error message names (a redirect, the ledger, a flag).
    Other,
}

impl SetupError {
    /// A setup error (exit 2) that says `message`.
    pub fn new(message: impl Into<String>) -> SetupError {
        SetupError {
            message: message.into(),
            exit: Exit::Setup,
            cause: None,
        }
    }

    /// The same error, saying what stopped the run.
    pub fn because(self, cause: Cause) -> SetupError {
        SetupError {
            cause: Some(cause),
            ..self
        }
    }

    /// The exit code an error ends the run with: its own for a [`SetupError`], else 2.
    pub fn exit_of(error: &anyhow::Error) -> Exit {
        error.downcast_ref::<SetupError>().map_or(Exit::Setup, |e| e.exit)
    }
}
