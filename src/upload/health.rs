//! Whether the service looks down: a run of answers in a row that say it is down or
//! misconfigured (refused connections, timeouts, server errors that are not the rate limit,
//! the same 404 again and again). Past a threshold the run stops sending, rather than put
//! every remaining row through its retries against a service that is not there.

use crate::service::{Answer, AnswerKind};

/// Answers in a row that say the service is down, once it has created a run: then it was
/// up, and a few failures in a row may be a blip. With `--concurrency 4` and backoff, ten
/// take a few seconds to come.
pub(super) const DOWN_IN_A_ROW: u32 = 10;
/// The same before anything was created: nothing says the service works at all.
pub(super) const DOWN_IN_A_ROW_BEFORE_ANY_CREATED: u32 = 5;

/// What one answer says about the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Sign {
    /// It is there and working: a run created, a refusal for the rate limit, a 422.
    Up,
    /// It is down or misconfigured: no connection, no answer, a server error.
    Down,
    /// A 404, told apart by project and message: the same one again and again is a wrong
    /// base URL or project, a different one is one row's problem.
    NotFound(String),
    /// Says nothing about the service (nothing was sent).
    Nothing,
}

/// What `answer`, to a request for `project_id`, says about the service.
pub(super) fn sign_of(answer: &Answer, project_id: &str) -> Sign {
    match (&answer.kind, answer.status) {
        (AnswerKind::Created { .. }, _) => Sign::Up,
        (AnswerKind::Retry { rate_limited: true, .. }, _) => Sign::Up,
        (AnswerKind::Retry { .. }, None) if !answer.connected => Sign::Down,
        (AnswerKind::Retry { .. }, Some(status)) if status >= 500 || status == 408 => Sign::Down,
        (AnswerKind::Unknown, None) => Sign::Down,
        (AnswerKind::Unknown, Some(status)) if status >= 500 => Sign::Down,
        (AnswerKind::Rejected, Some(404)) => {
            Sign::NotFound(format!("{project_id} {}", answer.error.as_deref().unwrap_or_default()))
        }
        (AnswerKind::Rejected | AnswerKind::Retry { .. } | AnswerKind::Untrusted, None) => Sign::Nothing,
        _ => Sign::Up,
    }
}

/// The answers in a row, up to the latest, that say the service is down.
#[derive(Debug, Default)]
pub(super) struct DownStreak {
    count: u32,
    /// The 404 the streak's last 404 was.
    last_not_found: Option<String>,
}

impl DownStreak {
    /// Counts one more answer's sign; returns the length of the streak it leaves.
    pub(super) fn add(&mut self, sign: Sign) -> u32 {
        match sign {
            Sign::Up => *self = DownStreak::default(),
            Sign::Down => self.count += 1,
            Sign::NotFound(which) => {
                if self.last_not_found.as_ref().is_some_and(|last| *last != which) {
                    self.count = 0;
                }
                self.count += 1;
                self.last_not_found = Some(which);
            }
            Sign::Nothing => {}
        }
        self.count
    }
}

/// How many answers in a row that say the service is down stop the run.
pub(super) fn threshold(created_any: bool) -> u32 {
    if created_any {
        DOWN_IN_A_ROW
    } else {
        DOWN_IN_A_ROW_BEFORE_ANY_CREATED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(kind: AnswerKind, status: Option<u16>, connected: bool) -> Answer {
        Answer {
            kind,
            status,
            error: Some("HTTP 404: Not Found".to_string()),
            request_id: None,
            connected,
        }
    }

    #[test]
    fn what_each_answer_says_about_the_service() {
        let retry = |rate_limited| AnswerKind::Retry {
            retry_after: None,
            rate_limited,
        };
        let created = AnswerKind::Created {
            id: "1".into(),
            human_id: None,
        };
        let not_found = Sign::NotFound("p HTTP 404: Not Found".to_string());
        let cases = [
            (answer(created, Some(200), true), Sign::Up),
            (answer(retry(true), Some(500), true), Sign::Up),
            (answer(retry(true), Some(429), true), Sign::Up),
            (answer(retry(false), None, false), Sign::Down),
            (answer(retry(false), Some(503), true), Sign::Down),
            (answer(retry(false), Some(408), true), Sign::Down),
            (answer(AnswerKind::Unknown, None, true), Sign::Down),
            (answer(AnswerKind::Unknown, Some(500), true), Sign::Down),
            (answer(AnswerKind::Unknown, Some(502), true), Sign::Down),
            (answer(AnswerKind::Unknown, Some(200), true), Sign::Up),
            (answer(AnswerKind::Rejected, Some(422), true), Sign::Up),
            (answer(AnswerKind::Rejected, Some(404), true), not_found),
            (answer(AnswerKind::Rejected, None, false), Sign::Nothing),
            (answer(AnswerKind::KeyRefused, Some(401), true), Sign::Up),
        ];
        for (answer, want) in cases {
            assert_eq!(sign_of(&answer, "p"), want, "{answer:?}");
        }
    }

    #[test]
    fn a_streak_is_broken_by_a_working_answer_or_a_different_404() {
        let mut streak = DownStreak::default();
        let not_found = |p: &str| Sign::NotFound(format!("{p} HTTP 404: Not Found"));
        assert_eq!(streak.add(Sign::Down), 1);
        assert_eq!(streak.add(Sign::Nothing), 1);
        assert_eq!(streak.add(not_found("a")), 2);
        assert_eq!(streak.add(not_found("a")), 3);
        assert_eq!(streak.add(Sign::Down), 4);
        // Another project's 404: that row's problem, not the service's.
        assert_eq!(streak.add(not_found("b")), 1);
        assert_eq!(streak.add(Sign::Up), 0);
        assert_eq!(threshold(false), 5);
        assert_eq!(threshold(true), 10);
    }
}
