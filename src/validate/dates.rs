//! Dates: turns a date value as the sheet holds it (text as written, or a workbook date
//! cell) into Unix milliseconds, and infers per column whether `03/04/2024` is day-first
//! or month-first. Pure: no I/O, no clock, no environment (`TZ` is never read).
//!
//! The forms most files hold are read here, straight from their bytes; any other text is
//! read by the scanner in `date_text.rs`: the value is cut into tokens (digit runs,
//! letter runs, separators, white space) once, and the shape of the token list decides the
//! form. Trying one `parse_from_str` pattern after another would be far slower on a million
//! rows, and would leave nothing better to say about garbage than "no pattern matched".
//!
//! Choices where the contract is silent:
//! - `17-03-2024` (dashes between numbers, year last) is accepted and read like `17/03/2024`.
//! - Dotted dates (`17.03.2024`) are always day-first, whatever `--date-order` says.
//! - A year-first date (`2024-03-17`, `2024/03/17`, `2024.03.17`, `20240317`) is always y-m-d.
//! - ISO 8601 basic with a time (`20240317T0930`, `20240317T093000.123Z`, `…+0100`) needs
//!   the `T` and a time of `HHMM` or `HHMMSS` (a fraction only after the seconds); the offset
//!   is `Z`, `+HH`, `+HHMM` or `+HH:MM`, with no space before it. Basic and extended are not
//!   mixed, as ISO 8601 says: `20240317T09:30` and `2024-03-17T0930` are errors that show
//!   both ways to write it, rather than guesses.
//! - `--date-order ymd` rejects a year-last slash date rather than guessing which of dmy/mdy.
//! - `05/05/2024` (both parts equal) reads the same either way, so it needs no order.
//! - A bare integer is a Unix time by magnitude: 9 to 11 digits' worth (1e8 ≤ n < 1e11) is
//!   seconds, from 1e11 up to the end of year 9999 is milliseconds; anything smaller is
//!   rejected (a spreadsheet serial is only a date in a date-formatted cell). Exception: an
//!   8-digit value that is a valid `YYYYMMDD` is the ISO 8601 basic date; one with a year
//!   and a month but no such day (`20240230`) is told so, as a date.
//! - Two-digit years are rejected; years outside 1900..=9999 are rejected.
//! - A wall-clock time in a DST gap is an error; one in a DST overlap is the earlier instant.
//! - A date without a time: Start is the first instant of that day (the end of the gap if
//!   midnight is skipped), End is the last whole second of that day (23:59:59; if the day
//!   ends in an overlap, the later 23:59:59, so the whole day is covered).
//! - A workbook date cell is rounded to the millisecond; at exactly 00:00:00 it counts as a
//!   date without a time. Text with an explicit `00:00` is a time, as written.
//! - Fractional seconds in text are truncated to milliseconds.
//! - An explicit offset (`Z`, `+02:00`, `+0200`, `+02`, `UTC`, `GMT`, the RFC 2822 US zones
//!   `EST`..`PDT`) wins over `--timezone`. A weekday name, if given, must match the date.
//! - Accepted extras: 1-digit day/month/hour, `AM`/`PM`, ordinal suffixes (`17th`), full
//!   weekday names, `Sept`, `Mar.`, `17/Mar/2024`, `2024-Mar-17`, a `,` before the time.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Timelike};
use chrono_tz::Tz;

use super::date_text::{MONTHS, Tok, Tokens, full_read, weekday_of};

pub(super) const MIN_YEAR: i64 = 1900;
pub(super) const MAX_YEAR: i64 = 9999;
/// Bare integers from here up are Unix seconds: 1973-03-03. Below this, a number is far
/// more likely a year, an id or a spreadsheet serial that lost its date format.
pub(super) const MIN_UNIX_SECONDS: u64 = 100_000_000;
/// From here up, milliseconds: 1e11 seconds would be the year 5138, 1e11 ms is 1973 again,
/// so the two ranges meet without a gap or an overlap.
pub(super) const MIN_UNIX_MILLIS: u64 = 100_000_000_000;
/// 9999-12-31T23:59:59.999Z.
pub(super) const MAX_UNIX_MILLIS: u64 = 253_402_300_799_999;

/// What every date error ends with: a few forms, not the whole list, which a sheet of bad
/// dates would repeat on every line; the README's Dates section has every form.
const ACCEPTED: &str = "accepted: `2024-03-17`, `2024-03-17 09:30`, `17/03/2024`, `17 Mar 2024` and more \
     (the README's Dates section lists every form)";

const FLAG_ORDER: &str = "pass `--date-order dmy` or `--date-order mdy`";

/// How to read a slash date with the year last (`03/04/2024`). `--date-order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOrder {
    Ymd,
    Dmy,
    Mdy,
}

impl DateOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            DateOrder::Ymd => "ymd",
            DateOrder::Dmy => "dmy",
            DateOrder::Mdy => "mdy",
        }
    }
}

impl FromStr for DateOrder {
    type Err = DateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        [DateOrder::Ymd, DateOrder::Dmy, DateOrder::Mdy]
            .into_iter()
            .find(|order| order.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| DateError::UnknownDateOrder { value: s.to_owned() })
    }
}

impl fmt::Display for DateOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which end of the day a date without a time stands for: `start_date` takes the start
/// (00:00:00), `end_date` the end (23:59:59).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayBound {
    Start,
    End,
}

/// Unit of `start_date` / `end_date` in the request. `--timestamp-unit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampUnit {
    Seconds,
    Milliseconds,
}

impl TimestampUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            TimestampUnit::Seconds => "seconds",
            TimestampUnit::Milliseconds => "milliseconds",
        }
    }

    /// Unix milliseconds in this unit. Seconds round towards the past (floor), so an
    /// instant never moves to a later second than the one it is in.
    pub fn convert(self, unix_ms: i64) -> i64 {
        match self {
            TimestampUnit::Seconds => unix_ms.div_euclid(1000),
            TimestampUnit::Milliseconds => unix_ms,
        }
    }
}

impl FromStr for TimestampUnit {
    type Err = DateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        [TimestampUnit::Seconds, TimestampUnit::Milliseconds]
            .into_iter()
            .find(|unit| unit.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| DateError::UnknownTimestampUnit { value: s.to_owned() })
    }
}

impl fmt::Display for TimestampUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A date as a source gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateValue<'a> {
    /// Text as written (every CSV field, text cells of workbooks).
    Text(&'a str),
    /// A workbook date cell, already converted with the workbook's epoch: wall-clock, no zone.
    DateTime(NaiveDateTime),
}

/// What is wrong with a date value or a date option. The caller adds row and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("the date is empty; {ACCEPTED}")]
    Empty,
    #[error("`{value}` is not a date I can read: {reason}; {ACCEPTED}")]
    Unrecognised { value: String, reason: String },
    #[error("`{value}` has a two-digit year, whose century would be a guess; write the year in full (e.g. 2024)")]
    TwoDigitYear { value: String },
    #[error(
        "`{value}` is a plain number, not a date: a Unix time needs 9 to 11 digits in seconds \
         (e.g. 1710667800) or 12 to 15 in milliseconds (e.g. 1710667800000), and a spreadsheet \
         serial number is only a date in a cell formatted as a date; format the cell as a date \
         or write the date out, e.g. 2024-03-17"
    )]
    BareNumber { value: String },
    #[error("`{value}` is not a real date: {reason}")]
    InvalidDate { value: String, reason: String },
    #[error("`{value}` is in the year {year}; years 1900 to 9999 are accepted")]
    YearOutOfRange { value: String, year: i64 },
    #[error("`{value}` says {stated}, but that date is a {actual}; correct the date or leave the weekday out")]
    WeekdayMismatch {
        value: String,
        stated: String,
        actual: String,
    },
    #[error("`{value}` could be day/month or month/day; {FLAG_ORDER}")]
    AmbiguousOrder { value: String },
    #[error("`{value}` has the year last, but `--date-order ymd` means year first; {FLAG_ORDER} for this column")]
    YearLastWithYmd { value: String },
    #[error(
        "`{value}` does not exist in {zone}: the clocks skip that time (daylight saving); \
         correct the time, add an offset such as `+01:00`, or pass the right `--timezone`"
    )]
    NonexistentLocalTime { value: String, zone: String },
    #[error("`{value}`: that whole day does not exist in {zone} (the zone skipped it); pass the right `--timezone`")]
    DayNotInZone { value: String, zone: String },
    #[error(
        "column `{column}` mixes day-first and month-first dates: `{dmy_value}` (row {dmy_row}) can only be \
         day/month, `{mdy_value}` (row {mdy_row}) can only be month/day; correct one of them, or {FLAG_ORDER}"
    )]
    ConflictingOrder {
        column: String,
        dmy_value: String,
        dmy_row: usize,
        mdy_value: String,
        mdy_row: usize,
    },
    #[error(
        "column `{column}` has dates like `{value}` (row {row}) that read as day/month or month/day, \
         and no value in the column decides which; {FLAG_ORDER}"
    )]
    UndecidedOrder { column: String, value: String, row: usize },
    #[error("`{value}` is not a date order for `--date-order`; use `ymd`, `dmy` or `mdy`")]
    UnknownDateOrder { value: String },
    #[error("`{value}` is not a unit for `--timestamp-unit`; use `seconds` or `milliseconds`")]
    UnknownTimestampUnit { value: String },
}

/// Reads one date value as Unix milliseconds.
///
/// `order` is `--date-order`, or else what [`OrderEvidence::resolve`] found for the column;
/// with `None`, a slash date is accepted only when it proves its own order (`17/03/2024`).
/// `tz` applies to values without an offset.
pub fn parse_date(value: DateValue<'_>, bound: DayBound, order: Option<DateOrder>, tz: Tz) -> Result<i64, DateError> {
    parse_date_by(value, bound, order.map(|o| (o, OrderFrom::Flag)), tz)
}

/// Where a dd/mm order came from, for the message about a value that is no date in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderFrom {
    /// `--date-order`.
    Flag,
    /// Learned from the column's other values.
    Column,
}

/// [`parse_date`], with the order's source named, so that a message credits the flag only
/// when it was given.
pub fn parse_date_by(
    value: DateValue<'_>,
    bound: DayBound,
    order: Option<(DateOrder, OrderFrom)>,
    tz: Tz,
) -> Result<i64, DateError> {
    match value {
        DateValue::Text(text) => {
            let text = crate::read::row::trim(text);
            match read_text(text, order)? {
                Reading::Unix(ms) => Ok(ms),
                Reading::Wall { date, time: None, .. } => day_bound(date, bound, tz, text),
                Reading::Wall {
                    date,
                    time: Some(time),
                    offset: Some(offset_secs),
                } => Ok(date.and_time(time).and_utc().timestamp_millis() - i64::from(offset_secs) * 1000),
                Reading::Wall {
                    date,
                    time: Some(time),
                    offset: None,
                } => wall_clock(date.and_time(time), tz, text),
            }
        }
        DateValue::DateTime(cell) => {
            // A cell holds days as a float, so 09:00 may arrive as 08:59:59.9999996; Excel
            // itself keeps milliseconds at most.
            let shown = cell.format("%Y-%m-%d %H:%M:%S").to_string();
            let rounded = cell
                .checked_add_signed(TimeDelta::microseconds(500))
                .and_then(|t| t.with_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000))
                .ok_or_else(|| DateError::YearOutOfRange {
                    value: shown.clone(),
                    year: i64::from(cell.year()),
                })?;
            let year = i64::from(rounded.year());
            if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
                return Err(DateError::YearOutOfRange { value: shown, year });
            }
            if rounded.time() == NaiveTime::MIN {
                day_bound(rounded.date(), bound, tz, &shown)
            } else {
                wall_clock(rounded, tz, &shown)
            }
        }
    }
}

/// Whether reading `text` could depend on the dd/mm order: it holds two 1- or 2-digit
/// numbers joined and followed by the same `/` or `-` (an ordinal suffix allowed after the
/// first). Errs on the side of yes; a value this says no to reads the same in every order,
/// and an import need not learn a column's order before it meets one that says yes.
pub fn may_need_order(text: &str) -> bool {
    if !text.bytes().any(|b| b == b'/' || b == b'-') {
        return false;
    }
    let Ok(tokens) = Tokens::scan(text.trim()) else {
        // Not a date in any order: the error does not depend on one.
        return false;
    };
    let toks = tokens.as_slice();
    let short = |t: Option<&Tok>| matches!(t, Some(Tok::Num { digits: 1..=2, .. }));
    (0..toks.len()).any(|i| {
        if !short(toks.get(i)) {
            return false;
        }
        let at = if matches!(toks.get(i + 1), Some(Tok::Word(_))) {
            i + 2
        } else {
            i + 1
        };
        match toks.get(at) {
            Some(Tok::Sym(sep @ (b'/' | b'-'))) => {
                short(toks.get(at + 1)) && matches!(toks.get(at + 2), Some(Tok::Sym(s)) if s == sep)
            }
            _ => false,
        }
    })
}

/// The first two parts of a slash/dash date with a 4-digit year last (`03/04/2024`, also
/// after a weekday: `Wed, 03/04/2024`), or `None`: the values whose reading needs the
/// column's dd/mm order, or proves it.
pub(crate) fn year_last_parts(text: &str) -> Option<(u64, u64)> {
    // Every value of a date column comes here: most start with a number that is not one
    // or two digits then `/` or `-`, and are no such date, without being tokenised.
    let bytes = text.as_bytes();
    // `17/03/2024` and `17/03/2024 09:30[:00]` most of all: read in place, when the rest
    // is plainly what the tokens would take (a short run of ASCII letters, digits, white
    // space and date punctuation, not running on from the year).
    if let [_, _, sep @ (b'/' | b'-'), _, _, sep2, year @ ..] = bytes
        && let [y, yy, yyy, yyyy, rest @ ..] = year
        && sep == sep2
        && [y, yy, yyy, yyyy].iter().all(|d| d.is_ascii_digit())
        && let (Some(first), Some(second)) = (two_digits(bytes, 0), two_digits(bytes, 3))
        && rest.len() <= 9
        && rest.first().is_none_or(|c| !c.is_ascii_digit())
        && rest
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || c.is_ascii_whitespace() || b"-/.:,+".contains(c))
    {
        return Some((u64::from(first), u64::from(second)));
    }
    if bytes.first().is_some_and(u8::is_ascii_digit) {
        let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 2 || !matches!(bytes.get(digits), Some(b'/' | b'-')) {
            return None;
        }
    }
    // Such a date has a `/` or `-` between its parts: `17 Mar 2024` and `Mar 17, 2024`
    // (which begin with no digit) need no tokens to be turned away.
    if !bytes.iter().any(|b| matches!(b, b'/' | b'-')) {
        return None;
    }
    year_last_tokens(text)
}

/// [`year_last_parts`], from the tokens.
fn year_last_tokens(text: &str) -> Option<(u64, u64)> {
    let tokens = Tokens::scan(text).ok()?;
    let mut toks = tokens.as_slice();
    if let [Tok::Word(word), rest @ ..] = toks
        && weekday_of(word).is_some()
    {
        toks = rest;
        if let [Tok::Sym(b','), rest @ ..] = toks {
            toks = rest;
        }
        if let [Tok::Space, rest @ ..] = toks {
            toks = rest;
        }
    }
    match toks {
        [
            Tok::Num {
                value: a,
                digits: 1..=2,
            },
            Tok::Sym(sep @ (b'/' | b'-')),
            Tok::Num {
                value: b,
                digits: 1..=2,
            },
            Tok::Sym(sep2),
            Tok::Num { digits: 4, .. },
            ..,
        ] if sep == sep2 => Some((*a, *b)),
        _ => None,
    }
}

/// A wall-clock time in `tz`: the earlier instant in an overlap, an error in a gap.
fn wall_clock(local: NaiveDateTime, tz: Tz, shown: &str) -> Result<i64, DateError> {
    // UTC has neither gaps nor overlaps: no need to look the instant up in a zone's table.
    if tz == Tz::UTC {
        return Ok(local.and_utc().timestamp_millis());
    }
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.timestamp_millis())
        .ok_or_else(|| DateError::NonexistentLocalTime {
            value: shown.to_owned(),
            zone: tz.name().to_owned(),
        })
}

/// A date without a time: its first instant, or its last whole second.
fn day_bound(date: NaiveDate, bound: DayBound, tz: Tz, shown: &str) -> Result<i64, DateError> {
    let instant = match bound {
        DayBound::Start => first_second_of(date, tz),
        // The last second of the day is one before the next day begins; unlike "23:59:59
        // local" this is right in an overlap and in a gap at the end of the day too.
        DayBound::End => date
            .succ_opt()
            .and_then(|next| first_second_of(next, tz))
            .map(|s| s - 1),
    };
    match instant {
        Some(secs) if local_at(secs, tz).map(|t| t.date()) == Some(date) => Ok(secs * 1000),
        _ => Err(DateError::DayNotInZone {
            value: shown.to_owned(),
            zone: tz.name().to_owned(),
        }),
    }
}

/// The first second (Unix) whose local date is `date` or later.
fn first_second_of(date: NaiveDate, tz: Tz) -> Option<i64> {
    let midnight = date.and_time(NaiveTime::MIN);
    if tz == Tz::UTC {
        return Some(midnight.and_utc().timestamp());
    }
    if let Some(t) = tz.from_local_datetime(&midnight).earliest() {
        return Some(t.timestamp());
    }
    // Midnight is in a gap. Offsets lie within ±14 h, so the day starts within ±26 h of
    // midnight read as UTC; bisect for it. Rare (a few zones, one day a year).
    const REACH: i64 = 26 * 3600;
    let guess = midnight.and_utc().timestamp();
    let (mut before, mut after) = (guess - REACH, guess + REACH);
    while after - before > 1 {
        let mid = before + (after - before) / 2;
        if local_at(mid, tz)? >= midnight {
            after = mid;
        } else {
            before = mid;
        }
    }
    Some(after)
}

fn local_at(secs: i64, tz: Tz) -> Option<NaiveDateTime> {
    DateTime::from_timestamp(secs, 0).map(|utc| utc.with_timezone(&tz).naive_local())
}

/// What the text says, before a zone is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reading {
    /// An instant: a Unix integer.
    Unix(i64),
    Wall {
        date: NaiveDate,
        time: Option<NaiveTime>,
        /// Seconds east of UTC, when the text gives one.
        offset: Option<i32>,
    },
}

pub(super) fn read_text(value: &str, order: Option<(DateOrder, OrderFrom)>) -> Result<Reading, DateError> {
    if let Some(reading) = common_form(value.as_bytes(), order) {
        return Ok(reading);
    }
    full_read(value, order)
}

/// The forms most files hold, read straight from their bytes at fixed places:
/// `2024-03-17`, `2024-03-17T09:30`, `2024-03-17 09:30:00`, either with `Z`; a Unix
/// integer; `17.03.2024`; and `17/03/2024` when the column's order is known; the last
/// two with a time (`09:30[:00]`) too; and `17 Mar 2024` or `Mar 17, 2024`.
/// `None` for every other text, and for these forms with anything out of range: then the
/// full reading decides, and words the error. Where it answers, it answers as
/// [`full_read`] does (a test holds it to that); it only skips the tokens.
fn common_form(b: &[u8], order: Option<(DateOrder, OrderFrom)>) -> Option<Reading> {
    if (9..=15).contains(&b.len()) && b.iter().all(u8::is_ascii_digit) {
        let value = b.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        return match value {
            MIN_UNIX_MILLIS..=MAX_UNIX_MILLIS => Some(Reading::Unix(value as i64)),
            MIN_UNIX_SECONDS..MIN_UNIX_MILLIS => Some(Reading::Unix(value as i64 * 1000)),
            _ => None,
        };
    }
    if let Some(date) = named_month_date(b) {
        return Some(Reading::Wall {
            date,
            time: None,
            offset: None,
        });
    }
    let (date, rest) = match b {
        [_, _, _, _, b'-', _, _, b'-', _, _, rest @ ..] => (
            calendar_date(four_digits(b, 0)?, two_digits(b, 5)?, two_digits(b, 8)?)?,
            rest,
        ),
        [_, _, sep @ (b'/' | b'.'), _, _, sep2, _, _, _, _, rest @ ..] if sep == sep2 => {
            let (first, second) = (two_digits(b, 0)?, two_digits(b, 3)?);
            // A dotted date is always day first.
            let (day, month) = match (sep, order) {
                (b'.', _) | (_, Some((DateOrder::Dmy, _))) => (first, second),
                (_, Some((DateOrder::Mdy, _))) => (second, first),
                _ => return None,
            };
            (calendar_date(four_digits(b, 6)?, month, day)?, rest)
        }
        _ => return None,
    };
    let (time, offset) = match rest {
        [] => {
            return Some(Reading::Wall {
                date,
                time: None,
                offset: None,
            });
        }
        [b' ' | b'T', _, _, b':', _, _, seconds @ ..] => {
            let (hour, minute) = (two_digits(rest, 1)?, two_digits(rest, 4)?);
            let (second, offset) = match seconds {
                [] => (0, None),
                [b'Z'] => (0, Some(0)),
                [b':', _, _] => (two_digits(seconds, 1)?, None),
                [b':', _, _, b'Z'] => (two_digits(seconds, 1)?, Some(0)),
                _ => return None,
            };
            (NaiveTime::from_hms_opt(hour, minute, second)?, offset)
        }
        _ => return None,
    };
    Some(Reading::Wall {
        date,
        time: Some(time),
        offset,
    })
}

/// `17 Mar 2024` or `Mar 17, 2024` (a one-digit day too), with the month's three-letter
/// name in any case: the order of a named month is no question.
fn named_month_date(b: &[u8]) -> Option<NaiveDate> {
    let one_digit = |d: u8| d.is_ascii_digit().then(|| u32::from(d - b'0'));
    let (day, month, year) = match b {
        [d, b' ', m0, m1, m2, b' ', year @ ..] if year.len() == 4 => (one_digit(*d)?, [*m0, *m1, *m2], year),
        [_, _, b' ', m0, m1, m2, b' ', year @ ..] if year.len() == 4 => (two_digits(b, 0)?, [*m0, *m1, *m2], year),
        [m0, m1, m2, b' ', d, b',', b' ', year @ ..] if year.len() == 4 => (one_digit(*d)?, [*m0, *m1, *m2], year),
        [m0, m1, m2, b' ', _, _, b',', b' ', year @ ..] if year.len() == 4 => {
            (two_digits(b, 4)?, [*m0, *m1, *m2], year)
        }
        _ => return None,
    };
    let month = short_month(month)?;
    calendar_date(four_digits(year, 0)?, month, day)
}

/// [`month_number`] of a three-byte word, by one compare per month with the first three
/// letters of its name (which is all `month_number` matches a three-letter word with).
fn short_month(word: [u8; 3]) -> Option<u32> {
    MONTHS
        .iter()
        .position(|name| name.as_bytes()[..3].eq_ignore_ascii_case(&word))
        .map(|i| i as u32 + 1)
}

/// The two ASCII digits at `at` as a number.
#[inline]
fn two_digits(b: &[u8], at: usize) -> Option<u32> {
    let (tens, ones) = (b[at].wrapping_sub(b'0'), b[at + 1].wrapping_sub(b'0'));
    (tens < 10 && ones < 10).then(|| u32::from(tens) * 10 + u32::from(ones))
}

/// The four ASCII digits at `at` (a year) as a number.
#[inline]
fn four_digits(b: &[u8], at: usize) -> Option<u32> {
    Some(two_digits(b, at)? * 100 + two_digits(b, at + 2)?)
}

/// A date in the accepted years, or `None`.
fn calendar_date(year: u32, month: u32, day: u32) -> Option<NaiveDate> {
    if !(MIN_YEAR..=MAX_YEAR).contains(&i64::from(year)) {
        return None;
    }
    NaiveDate::from_ymd_opt(year as i32, month, day)
}

pub(super) fn unrecognised(value: &str, reason: impl Into<String>) -> DateError {
    DateError::Unrecognised {
        value: value.to_owned(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::date_order::tests::evidence;
    use crate::validate::date_text::month_number;
    use DayBound::{End, Start};
    use chrono_tz::America::{Havana, New_York, Santiago};
    use chrono_tz::Europe::Berlin;
    use chrono_tz::UTC;

    #[test]
    fn year_last_parts_skips_tokenising_only_what_tokens_would_refuse() {
        use rand::{RngExt, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(11);
        let prefixes = ["", "", "", "Wed, ", "Wed ", "x", " ", "\u{a0}"];
        let seps = ["/", "-", ".", ":", " ", ""];
        let suffixes = [
            "",
            "",
            " 10:30",
            " 10:30:00",
            "T10:30:00Z",
            "x",
            "\u{a0}",
            " \u{a0}",
            " 10:30 \u{20ac}",
            " 1 2 3 4 5 6 7 8 9 10 11",
            "5",
        ];
        let mut found = 0;
        for _ in 0..50_000 {
            let number = |rng: &mut StdRng| {
                let digits = rng.random_range(0..=4);
                (0..digits)
                    .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                    .collect::<String>()
            };
            let (a, b, year) = (number(&mut rng), number(&mut rng), number(&mut rng));
            let (sep, sep2) = (
                seps[rng.random_range(0..seps.len())],
                seps[rng.random_range(0..seps.len())],
            );
            let text = format!(
                "{}{a}{sep}{b}{sep2}{year}{}",
                prefixes[rng.random_range(0..prefixes.len())],
                suffixes[rng.random_range(0..suffixes.len())]
            );
            let parts = year_last_parts(&text);
            assert_eq!(parts, year_last_tokens(&text), "{text:?}");
            found += usize::from(parts.is_some());
        }
        assert!(found > 30, "only {found} year-last dates were tried");
        // The short way's edges: a year running on, a foreign character, too many tokens.
        for text in [
            "03/04/2024",
            "03-04-2024 10:30:00",
            "03/04/20245",
            "03/04/2024\u{a0}",
            "03/04/2024 \u{20ac}",
            "03/04/2024 1 2 3 4 5 6 7 8 9 10 11",
            "03/04-2024",
            "3/04/2024",
            "17 Mar 2024",
            "Mar 17, 2024",
            "Wed, 03/04/2024",
            "Wed 03.04.2024",
        ] {
            assert_eq!(year_last_parts(text), year_last_tokens(text), "{text:?}");
        }
    }

    #[test]
    fn common_forms_read_as_the_full_reading_does() {
        use rand::{RngExt, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(17);
        // Pieces of the common forms, with the near misses among them.
        let numbers = [
            "", "0", "00", "7", "09", "12", "13", "29", "30", "31", "32", "59", "60", "99",
        ];
        let years = ["2024", "2023", "1900", "1899", "0000", "9999", "202", "20245"];
        let seps = ["-", "/", ".", ":", " ", "T", "t", "Z", ""];
        let orders = [
            None,
            Some((DateOrder::Dmy, OrderFrom::Column)),
            Some((DateOrder::Mdy, OrderFrom::Flag)),
            Some((DateOrder::Ymd, OrderFrom::Flag)),
        ];
        let (mut answered, mut tried) = (0, 0);
        for _ in 0..200_000 {
            let pick = |rng: &mut StdRng, from: &[&'static str]| from[rng.random_range(0..from.len())];
            let text = if rng.random_range(0..6) == 0 {
                // A month by name, before or after the day.
                let day = pick(
                    &mut rng,
                    &["", "0", "1", "7", "07", "17", "29", "30", "31", "32", "123"],
                );
                let month = pick(
                    &mut rng,
                    &[
                        "Mar", "mar", "MAR", "Feb", "Sep", "Sept", "March", "Foo", "Ma", "Mär", "Mon",
                    ],
                );
                let (first, second) = (
                    pick(&mut rng, &[" ", "  ", ",", "-"]),
                    pick(&mut rng, &[" ", ", ", ","]),
                );
                let year = pick(&mut rng, &years);
                match rng.random_range(0..2) {
                    0 => format!("{day}{first}{month}{first}{year}"),
                    _ => format!("{month}{first}{day}{second}{year}"),
                }
            } else if rng.random_range(0..8) == 0 {
                // Integers around the Unix ranges' edges.
                let digits = rng.random_range(7..=17);
                let lead = pick(&mut rng, &["1", "2", "9", "0"]);
                let tail: String = (1..digits)
                    .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                    .collect();
                format!("{lead}{tail}")
            } else {
                // The year first or last.
                let year_first = rng.random_range(0..2) == 0;
                let sep = pick(&mut rng, &seps);
                let (year, a, b) = (
                    pick(&mut rng, &years),
                    pick(&mut rng, &numbers),
                    pick(&mut rng, &numbers),
                );
                let date = if year_first {
                    format!("{year}{sep}{a}{sep}{b}")
                } else {
                    format!("{a}{sep}{b}{sep}{year}")
                };
                let time = match rng.random_range(0..4) {
                    0 => String::new(),
                    1 => format!(
                        "{}{}:{}",
                        pick(&mut rng, &seps),
                        pick(&mut rng, &numbers),
                        pick(&mut rng, &numbers)
                    ),
                    _ => format!(
                        "{}{}:{}:{}",
                        pick(&mut rng, &seps),
                        pick(&mut rng, &numbers),
                        pick(&mut rng, &numbers),
                        pick(&mut rng, &numbers)
                    ),
                };
                let zone = pick(&mut rng, &["", "", "Z", "z", "+01:00", " Z"]);
                format!("{date}{time}{zone}")
            };
            let order = orders[rng.random_range(0..orders.len())];
            tried += 1;
            if let Some(reading) = common_form(text.as_bytes(), order) {
                answered += 1;
                assert_eq!(full_read(&text, order), Ok(reading), "{text:?} {order:?}");
            }
        }
        assert!(
            answered > tried / 20,
            "only {answered} of {tried} texts were read by the short way"
        );
    }

    #[test]
    fn short_month_names_are_read_as_month_number_reads_them() {
        let mut bytes: Vec<u8> = (b'a'..=b'z').chain(b'A'..=b'Z').collect();
        bytes.extend([b'0', b' ', b'-', b'.', 0xC3]);
        for &a in &bytes {
            for &b in &bytes {
                for &c in &bytes {
                    let word = [a, b, c];
                    let want = std::str::from_utf8(&word).ok().and_then(month_number);
                    assert_eq!(short_month(word), want, "{:?}", String::from_utf8_lossy(&word));
                }
            }
        }
        assert_eq!(short_month(*b"SEP"), Some(9));
    }

    /// 2024-03-17 09:30:00 UTC and the two ends of that day, in ms.
    const NINE_THIRTY: i64 = 1_710_667_800_000;
    const DAY_START: i64 = 1_710_633_600_000;
    const DAY_END: i64 = 1_710_719_999_000;

    fn text(value: &str, bound: DayBound, order: Option<DateOrder>, tz: Tz) -> Result<i64, DateError> {
        parse_date(DateValue::Text(value), bound, order, tz)
    }

    /// A value `may_need_order` says no to reads the same in every order (or fails the
    /// same way), so rows before the first value it says yes to need no order at all.
    #[test]
    fn values_that_need_no_order_read_the_same_in_every_order() {
        let parts = [
            "03",
            "3",
            "17",
            "2024",
            "24",
            "/",
            "-",
            ".",
            " ",
            ":",
            "T",
            "Z",
            "+05:30",
            "Mar",
            "rd",
            ",",
            "09",
            "1710633600",
        ];
        let orders = [None, Some(DateOrder::Dmy), Some(DateOrder::Mdy), Some(DateOrder::Ymd)];
        let mut rng = 20_261_128u64;
        let mut next = |n: usize| {
            rng = rng
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (rng >> 33) as usize % n
        };
        let mut needing = 0;
        let mut values: Vec<String> = [
            "2024-03-17",
            "2024/03/17",
            "17.03.2024",
            "17-Mar-2024",
            "03/04/2024",
            "3rd/04/2024",
            "17/03/2024 09:30",
            "2024-03-17T09:30:00+05:30",
            "Sun, 17 Mar 2024 09:30:00 +0000",
            "1710633600",
            "20240304T093000Z",
            "20240304T0930-05:00",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let numbers = ["3", "03", "12", "13", "17", "0", "24", "2024", "Mar"];
        let seps = ["/", "-", ".", " ", ":", ""];
        let tails = ["", " 09:30", "T09:30:00Z", " +05:30", "rd", ",", " 9:30 PM"];
        for _ in 0..20_000 {
            // Date-shaped (three parts and a tail) half the time, any mix of pieces otherwise.
            let value = if next(2) == 0 {
                let first_sep = seps[next(seps.len())];
                // The same separator twice half the time: the shape that may need an order.
                let second_sep = if next(2) == 0 {
                    first_sep
                } else {
                    seps[next(seps.len())]
                };
                let mut v = String::new();
                for sep in [first_sep, second_sep, ""] {
                    v.push_str(numbers[next(numbers.len())]);
                    v.push_str(sep);
                }
                v + tails[next(tails.len())]
            } else {
                (0..1 + next(7)).map(|_| parts[next(parts.len())]).collect()
            };
            values.push(value);
        }
        for value in &values {
            if may_need_order(value) {
                needing += 1;
                continue;
            }
            let first = text(value, Start, orders[0], UTC).map_err(|e| e.to_string());
            for order in &orders[1..] {
                assert_eq!(
                    text(value, Start, *order, UTC).map_err(|e| e.to_string()),
                    first,
                    "{value:?} with {order:?}"
                );
            }
        }
        assert!(
            needing > 1_000,
            "the generator makes values that need an order too ({needing})"
        );
        assert!(may_need_order("03/04/2024") && may_need_order(" 3-4-2024 10:00"));
        assert!(!may_need_order("2024-03-17T09:30:00Z") && !may_need_order("17.03.2024"));
    }

    fn cell(y: i32, m: u32, d: u32, hms: (u32, u32, u32), nanos: u32) -> DateValue<'static> {
        let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
        DateValue::DateTime(date.and_hms_nano_opt(hms.0, hms.1, hms.2, nanos).unwrap())
    }

    #[test]
    fn every_accepted_form_in_utc() {
        let dmy = Some(DateOrder::Dmy);
        let mdy = Some(DateOrder::Mdy);
        let cases: &[(&str, DayBound, Option<DateOrder>, i64)] = &[
            // ISO 8601 / RFC 3339
            ("2024-03-17", Start, None, DAY_START),
            ("2024-03-17", End, None, DAY_END),
            ("  2024-03-17\t", Start, None, DAY_START),
            ("2024-03-17T09:30", End, None, NINE_THIRTY),
            ("2024-03-17 09:30:00", Start, None, NINE_THIRTY),
            ("2024-03-17\u{a0}09:30", Start, None, NINE_THIRTY),
            ("2024-03-17T09:30:15.25Z", Start, None, NINE_THIRTY + 15_250),
            ("2024-03-17T09:30:15,250Z", Start, None, NINE_THIRTY + 15_250),
            ("2024-03-17T09:30:15.123456789Z", Start, None, NINE_THIRTY + 15_123),
            ("2024-03-17t09:30z", Start, None, NINE_THIRTY),
            ("2024-03-17T09:30:00+02:00", Start, None, NINE_THIRTY - 7_200_000),
            ("2024-03-17T09:30:00+0200", Start, None, NINE_THIRTY - 7_200_000),
            ("2024-03-17T09:30+02", Start, None, NINE_THIRTY - 7_200_000),
            ("2024-03-17 09:30 +02:00", Start, None, NINE_THIRTY - 7_200_000),
            ("2024-03-17T09:30:00-05:00", Start, None, NINE_THIRTY + 18_000_000),
            ("2024-03-17T09:30:00+05:45", Start, None, NINE_THIRTY - 20_700_000),
            ("2024-03-17 09:30 UTC", Start, None, NINE_THIRTY),
            ("2024/03/17", Start, None, DAY_START),
            ("2024.03.17", End, None, DAY_END),
            ("2024-3-7", Start, None, DAY_START - 10 * 86_400_000),
            ("2024-Mar-17", Start, None, DAY_START),
            ("20240317", Start, None, DAY_START),
            ("20240317", End, None, DAY_END),
            // RFC 2822
            ("Sun, 17 Mar 2024 09:30:00 +0000", Start, None, NINE_THIRTY),
            ("Sun, 17 Mar 2024 09:30:00 GMT", Start, None, NINE_THIRTY),
            ("17 Mar 2024 09:30 -0500", Start, None, NINE_THIRTY + 18_000_000),
            ("Sun, 17 Mar 2024 09:30:00 EST", Start, None, NINE_THIRTY + 18_000_000),
            ("Sun, 17 Mar 2024 09:30:00 PDT", Start, None, NINE_THIRTY + 25_200_000),
            // slash, dash and dotted numbers
            ("17/03/2024", Start, None, DAY_START),
            ("17/03/2024", End, None, DAY_END),
            ("03/17/2024", Start, None, DAY_START),
            ("3/17/2024", End, None, DAY_END),
            ("17/03/2024 09:30", Start, None, NINE_THIRTY),
            ("17/03/2024 9:30:00", Start, dmy, NINE_THIRTY),
            ("3/17/2024 9:30 AM", Start, mdy, NINE_THIRTY),
            ("3/17/2024 9:30 pm", Start, mdy, NINE_THIRTY + 43_200_000),
            ("3/17/2024 12:30 AM", Start, mdy, DAY_START + 1_800_000),
            ("3/17/2024 12:30 PM", Start, mdy, DAY_START + 45_000_000),
            ("17-03-2024", Start, None, DAY_START),
            ("03-17-2024 09:30", Start, None, NINE_THIRTY),
            ("17.03.2024", Start, None, DAY_START),
            ("17.03.2024", End, mdy, DAY_END),
            ("17.03.2024 09:30:00", Start, None, NINE_THIRTY),
            ("03/04/2024", Start, dmy, 1_712_102_400_000),
            ("03/04/2024", Start, mdy, 1_709_510_400_000),
            ("03-04-2024", Start, dmy, 1_712_102_400_000),
            ("05/05/2024", Start, None, 1_714_867_200_000),
            // month names
            ("17 Mar 2024", Start, None, DAY_START),
            ("17 march 2024", End, None, DAY_END),
            ("17 MARCH, 2024", Start, None, DAY_START),
            ("17th March 2024", Start, None, DAY_START),
            ("17-Mar-2024", Start, None, DAY_START),
            ("17/Mar/2024", Start, None, DAY_START),
            ("17 Mar 2024 09:30", Start, None, NINE_THIRTY),
            ("Mar 17, 2024", Start, None, DAY_START),
            ("Mar 17,2024", Start, None, DAY_START),
            ("Mar. 17th, 2024", Start, None, DAY_START),
            ("March 17 2024", End, None, DAY_END),
            ("March 17, 2024 09:30", Start, None, NINE_THIRTY),
            ("Mar 17, 2024, 9:30 AM", Start, None, NINE_THIRTY),
            ("Sunday, March 17, 2024", Start, None, DAY_START),
            ("Sept 1, 2024", Start, None, 1_725_148_800_000),
            ("1 September 2024", Start, None, 1_725_148_800_000),
            // Unix integers, by magnitude
            ("1710667800", Start, None, NINE_THIRTY),
            ("1710667800", End, None, NINE_THIRTY),
            ("1710667800123", Start, None, NINE_THIRTY + 123),
            ("100000000", Start, None, 100_000_000_000),
            ("99999999999", Start, None, 99_999_999_999_000),
            ("100000000000", Start, None, 100_000_000_000),
            ("253402300799999", Start, None, 253_402_300_799_999),
            // calendar edges
            ("29/02/2024", Start, None, 1_709_164_800_000),
            ("1900-01-01", Start, None, -2_208_988_800_000),
            ("9999-12-31", End, None, 253_402_300_799_000),
        ];
        for (value, bound, order, want) in cases {
            assert_eq!(
                text(value, *bound, *order, UTC),
                Ok(*want),
                "{value:?} {bound:?} {order:?}"
            );
        }
    }

    #[test]
    fn zones_and_daylight_saving() {
        let cases: &[(&str, DayBound, Tz, i64)] = &[
            // Fixture excel-semicolon-cp1252.csv, row 2.
            ("05.02.2024", Start, Berlin, 1_707_087_600_000),
            ("09.02.2024 17:00", End, Berlin, 1_707_494_400_000),
            ("2024-03-17", Start, Berlin, 1_710_630_000_000),
            ("2024-03-17", End, Berlin, 1_710_716_399_000),
            ("2024-03-17 09:30", Start, Berlin, NINE_THIRTY - 3_600_000),
            // Fall-back overlap: 02:30 happens twice; the earlier (CEST) one wins.
            ("2024-10-27 02:30", Start, Berlin, 1_729_989_000_000),
            ("2024-10-27 02:30", End, Berlin, 1_729_989_000_000),
            // An explicit offset ignores the zone.
            ("2024-03-17T09:30:00Z", Start, Berlin, NINE_THIRTY),
            ("2024-03-17T09:30:00+01:00", Start, New_York, NINE_THIRTY - 3_600_000),
            ("1710667800", Start, New_York, NINE_THIRTY),
            ("2024-03-17 09:30", Start, New_York, 1_710_682_200_000),
            ("03/17/2024 9:30 AM", Start, New_York, 1_710_682_200_000),
            // A 23-hour day.
            ("2024-03-10", Start, New_York, 1_710_046_800_000),
            ("2024-03-10", End, New_York, 1_710_129_599_000),
            ("2024-11-03 01:30", Start, New_York, 1_730_611_800_000),
            // Santiago skipped 2022-09-11 00:00..01:00: the day starts at 01:00 -03.
            ("2022-09-11", Start, Santiago, 1_662_868_800_000),
            ("2022-09-11", End, Santiago, 1_662_951_599_000),
            ("2022-09-10", End, Santiago, 1_662_868_799_000),
            ("11.09.2022", Start, Santiago, 1_662_868_800_000),
            // Havana: midnight skipped in March, midnight twice in November.
            ("2024-03-10", Start, Havana, 1_710_046_800_000),
            ("2024-03-09", End, Havana, 1_710_046_799_000),
            ("2024-11-03", Start, Havana, 1_730_606_400_000),
            ("2024-11-02", End, Havana, 1_730_606_399_000),
        ];
        for (value, bound, tz, want) in cases {
            assert_eq!(text(value, *bound, None, *tz), Ok(*want), "{value:?} {bound:?} {tz}");
        }
    }

    #[test]
    fn iso_basic_date_times() {
        let cases: &[(&str, DayBound, Tz, i64)] = &[
            ("20240317T0930", Start, UTC, NINE_THIRTY),
            // A time is given, so it is the same instant for either end.
            ("20240317T0930", End, UTC, NINE_THIRTY),
            ("20240317T093000", Start, UTC, NINE_THIRTY),
            ("20240317T093015Z", Start, UTC, NINE_THIRTY + 15_000),
            ("20240317t093000z", Start, UTC, NINE_THIRTY),
            ("  20240317T0930Z\t", Start, UTC, NINE_THIRTY),
            ("20240317T093000.123Z", Start, UTC, NINE_THIRTY + 123),
            ("20240317T093000,5Z", Start, UTC, NINE_THIRTY + 500),
            ("20240317T093000.123456789Z", Start, UTC, NINE_THIRTY + 123),
            ("20240317T093000+0100", Start, UTC, NINE_THIRTY - 3_600_000),
            ("20240317T093000+01", Start, UTC, NINE_THIRTY - 3_600_000),
            ("20240317T093000+01:00", Start, UTC, NINE_THIRTY - 3_600_000),
            ("20240317T0930-0530", Start, UTC, NINE_THIRTY + 19_800_000),
            ("20240317T0000", End, UTC, DAY_START),
            ("20240317T235959.999Z", Start, UTC, DAY_END + 999),
            // Without an offset, in `--timezone`: CET, and EDT a week after the change.
            ("20240317T0930", Start, Berlin, NINE_THIRTY - 3_600_000),
            ("20240317T093000", Start, New_York, NINE_THIRTY + 14_400_000),
            // A fall-back overlap is the earlier instant (CEST), as for other forms.
            ("20241027T023000", Start, Berlin, 1_729_989_000_000),
            // An offset wins over the zone.
            ("20240317T093000Z", Start, Berlin, NINE_THIRTY),
            ("20240317T093000+0100", Start, New_York, NINE_THIRTY - 3_600_000),
        ];
        for (value, bound, tz, want) in cases {
            assert_eq!(text(value, *bound, None, *tz), Ok(*want), "{value:?} {bound:?} {tz}");
        }

        let gap = text("20240331T0230", Start, None, Berlin);
        assert_eq!(
            gap,
            Err(DateError::NonexistentLocalTime {
                value: "20240331T0230".to_owned(),
                zone: "Europe/Berlin".to_owned()
            })
        );
    }

    #[test]
    fn iso_basic_rejects_impossible_values_like_the_other_forms() {
        // Each with the extended value that must get the same message.
        let cases: &[(&str, &str, &str)] = &[
            ("20241317T0930", "2024-13-17T09:30", "there is no month 13"),
            ("20240017T0930", "2024-00-17T09:30", "there is no month 0"),
            (
                "20240230T0930",
                "2024-02-30T09:30",
                "february 2024 has days 1 to 29, not 30",
            ),
            (
                "20230229T093000Z",
                "2023-02-29T09:30:00Z",
                "february 2023 has days 1 to 28, not 29",
            ),
            ("20240317T2500", "2024-03-17T25:00", "25:00:00 is not a time of day"),
            ("20240317T2400", "2024-03-17T24:00", "24:00:00 is not a time of day"),
            ("20240317T0960", "2024-03-17T09:60", "09:60:00 is not a time of day"),
            (
                "20240317T093060Z",
                "2024-03-17T09:30:60Z",
                "09:30:60 is not a time of day",
            ),
        ];
        for (value, extended, needle) in cases {
            let err = text(value, Start, None, UTC).unwrap_err();
            assert!(matches!(err, DateError::InvalidDate { .. }), "{value:?}: {err:?}");
            let message = err.to_string();
            assert!(
                message.to_lowercase().contains(needle),
                "{value:?}: {message:?} lacks {needle:?}"
            );
            let extended_message = text(extended, Start, None, UTC).unwrap_err().to_string();
            assert_eq!(message.replace(value, extended), extended_message, "{value:?}");
        }
        let err = text("18991231T0930", Start, None, UTC).unwrap_err();
        assert!(matches!(err, DateError::YearOutOfRange { year: 1899, .. }), "{err:?}");
    }

    #[test]
    fn iso_basic_refuses_other_shapes_and_says_how_to_write_them() {
        let cases: &[(&str, &str)] = &[
            // Basic and extended mixed: ISO 8601 does not allow it, and neither does this.
            ("20240317T09:30:00Z", "mixes the iso 8601 basic date"),
            ("20240317T9:30", "mixes the iso 8601 basic date"),
            ("2024-03-17T093000Z", "the time `093000` has no colons"),
            ("2024-03-17 0930", "the time `0930` has no colons"),
            // The `T` and a time are required.
            ("20240317 093000", "takes a time only after `t`"),
            ("20240317 09:30", "takes a time only after `t`"),
            ("20240317T", "expected the time as hhmm or hhmmss after `t`"),
            ("20240317T09", "found `09`"),
            ("20240317T093", "found `093`"),
            ("20240317T09300", "found `09300`"),
            // `TZ` is one word, not `T` then a time.
            ("20240317TZ", "takes a time only after `t`"),
            ("2024031T0930", "`2024031` is neither a 4-digit year"),
            ("202403170T0930", "`202403170` is neither a 4-digit year"),
            // Fractions, offsets and what may follow.
            ("20240317T0930.5", "a fraction goes after the seconds"),
            ("20240317T093000.1234567890Z", "more than 9 digits"),
            ("20240317T093000 Z", "no spaces"),
            ("20240317T093000 +0100", "no spaces"),
            ("20240317T093000UTC", "unexpected `utc` after the time"),
            ("20240317T093000/", "unexpected `/` after the time"),
            ("20240317T093000+1", "an offset must look like"),
            ("20240317T093000+2400", "under 24 hours"),
            ("20240317T093000Z+01", "unexpected `+` at the end"),
            ("20240317T093000+0100Z", "unexpected `z` at the end"),
        ];
        for (value, needle) in cases {
            let message = match text(value, Start, None, UTC) {
                Ok(ms) => panic!("{value:?} was accepted as {ms}"),
                Err(err) => err.to_string(),
            };
            assert!(
                message.to_lowercase().contains(needle),
                "{value:?}: {message:?} lacks {needle:?}"
            );
        }
    }

    /// Basic dates are year-first: they neither need nor prove a dd/mm order.
    #[test]
    fn iso_basic_dates_carry_their_own_order() {
        let basic = [
            "20240304T0930",
            "20240403T093000Z",
            "20241231T2359-05:00",
            "20240102T0304-0506",
        ];
        for value in basic {
            assert!(!may_need_order(value), "{value}");
            assert_eq!(year_last_parts(value), None, "{value}");
            let want = text(value, Start, None, UTC);
            assert!(want.is_ok(), "{value}: {want:?}");
            for order in [Some(DateOrder::Ymd), Some(DateOrder::Dmy), Some(DateOrder::Mdy)] {
                assert_eq!(text(value, Start, order, UTC), want, "{value} {order:?}");
            }
        }
        assert_eq!(evidence(&basic).resolve("Start"), Ok(None));
        // Among slash dates, they change nothing: the slash dates alone decide, or do not.
        let with = |slash: &[&'static str]| evidence(&[&basic[..], slash].concat()).resolve("Start");
        assert_eq!(with(&["03/04/2024", "17/03/2024"]), Ok(Some(DateOrder::Dmy)));
        assert_eq!(with(&["03/04/2024", "03/17/2024"]), Ok(Some(DateOrder::Mdy)));
        assert!(
            matches!(with(&["03/04/2024"]), Err(DateError::UndecidedOrder { row: 6, .. })),
            "{:?}",
            with(&["03/04/2024"])
        );
    }

    #[test]
    fn wall_clock_in_a_gap_names_the_zone_and_the_flag() {
        for (value, tz) in [
            ("2024-03-31 02:30", Berlin),
            ("31.03.2024 02:00", Berlin),
            ("2024-03-10 02:30", New_York),
            ("2022-09-11 00:30", Santiago),
        ] {
            let err = text(value, Start, None, tz).unwrap_err();
            assert_eq!(
                err,
                DateError::NonexistentLocalTime {
                    value: value.to_owned(),
                    zone: tz.name().to_owned()
                }
            );
            let message = err.to_string();
            assert!(
                message.contains(tz.name()) && message.contains("--timezone"),
                "{message}"
            );
        }
        // The same wall-clock time with an offset is fine.
        assert_eq!(
            text("2024-03-31T02:30:00+01:00", Start, None, Berlin),
            Ok(1_711_848_600_000)
        );
    }

    #[test]
    fn workbook_cells() {
        let cases: &[(DateValue<'static>, DayBound, Tz, i64)] = &[
            // Fixture openpyxl-1904-dates.xlsx (the reader already applied the epoch).
            (cell(2024, 7, 1, (9, 0, 0), 0), Start, UTC, 1_719_824_400_000),
            (cell(2024, 7, 1, (9, 0, 0), 0), End, UTC, 1_719_824_400_000),
            // A midnight cell is a date without a time.
            (cell(2024, 7, 8, (0, 0, 0), 0), Start, UTC, 1_720_396_800_000),
            (cell(2024, 7, 8, (0, 0, 0), 0), End, UTC, 1_720_483_199_000),
            (cell(2024, 7, 9, (0, 0, 0), 0), End, UTC, 1_720_569_599_000),
            // Float noise from the serial rounds to the millisecond, midnight included.
            (
                cell(2024, 7, 1, (8, 59, 59), 999_600_000),
                Start,
                UTC,
                1_719_824_400_000,
            ),
            (cell(2024, 7, 7, (23, 59, 59), 999_900_000), End, UTC, 1_720_483_199_000),
            (cell(2024, 7, 1, (9, 0, 0), 250_000_000), Start, UTC, 1_719_824_400_250),
            (cell(2024, 2, 5, (0, 0, 0), 0), Start, Berlin, 1_707_087_600_000),
            (cell(2024, 2, 9, (17, 0, 0), 0), End, Berlin, 1_707_494_400_000),
            (cell(2024, 10, 27, (2, 30, 0), 0), Start, Berlin, 1_729_989_000_000),
            (cell(2022, 9, 11, (0, 0, 0), 0), Start, Santiago, 1_662_868_800_000),
        ];
        for (value, bound, tz, want) in cases {
            assert_eq!(
                parse_date(*value, *bound, None, *tz),
                Ok(*want),
                "{value:?} {bound:?} {tz}"
            );
        }
        let gap = parse_date(cell(2024, 3, 31, (2, 30, 0), 0), Start, None, Berlin);
        assert!(matches!(gap, Err(DateError::NonexistentLocalTime { .. })), "{gap:?}");
        // Serial 0 of the 1900 system.
        let zero = parse_date(cell(1899, 12, 31, (0, 0, 0), 0), Start, None, UTC);
        assert!(
            matches!(zero, Err(DateError::YearOutOfRange { year: 1899, .. })),
            "{zero:?}"
        );
    }

    #[test]
    fn garbage_is_rejected_with_a_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("   ", "empty"),
            ("tomorrow", "`tomorrow` is not an English month or weekday name"),
            ("2024-13-01", "there is no month 13"),
            ("32/01/2024", "january 2024 has days 1 to 31, not 32"),
            ("31/02/2024", "february 2024 has days 1 to 29, not 31"),
            ("29.02.2023", "february 2023 has days 1 to 28, not 29"),
            (
                "02/31/2024",
                "(read as month/day/year because the second part is over 12)",
            ),
            ("13/13/2024", "there is no month 13"),
            ("00/05/2024", "may 2024 has days 1 to 31, not 0"),
            ("05/00/2024", "there is no month 0"),
            (
                "31/04/2024",
                "(read as day/month/year because the first part is over 12)",
            ),
            ("13/01/2024", "not a date order"),
            ("12:30", "a time without a date"),
            ("2024-03-17 25:00", "25:00:00 is not a time of day"),
            ("2024-03-17 09:60", "09:60:00 is not a time of day"),
            ("2024-03-17 13:00 PM", "hour 13 does not go with PM"),
            ("2024-03-17 9", "expected `:` after the hour"),
            ("2024-03-17 09:5", "expected 2-digit minutes"),
            ("2024-03-17T", "expected the end or a time"),
            ("2024-03-17 later", "expected the end or a time"),
            ("2024-03-17Z", "expected the end or a time"),
            (
                "2024-03-17 09:30 CET",
                "`CET` is not a zone abbreviation this tool knows",
            ),
            ("2024-03-17 09:30 +2", "an offset must look like"),
            ("2024-03-17 09:30 +24:00", "under 24 hours"),
            ("2024-03-17 09:30:00 foo", "`foo` is not a zone abbreviation"),
            ("2024-03-17 09:30:00 +0000 foo", "unexpected `foo` at the end"),
            ("2024-03-17 09:30:00 +0000 (UTC)", "it contains `(`"),
            ("2024-03", "expected `-` and the day"),
            ("2024-03-17-01", "expected the end or a time"),
            ("17 Mar", "expected the year"),
            ("Mar 2024", "expected a 1- or 2-digit day"),
            ("17 Mär 2024", "it contains `ä`"),
            ("Smarch 17, 2024", "`Smarch` is not an English month or weekday name"),
            ("17 03 2024", "expected a month after `17`"),
            ("17/03-2024", "expected `/` and the year"),
            ("123/03/2024", "neither a 4-digit year"),
            ("17/03/202", "the year `202` does not have 4 digits"),
            ("Mon, 17 Mar 2024", "says Monday, but that date is a Sunday"),
            ("1899-12-31", "in the year 1899"),
            ("0001-01-01", "in the year 1"),
            ("253402300800000", "after the year 9999"),
            ("99999999999999999999999", "after the year 9999"),
            ("2024-03-17 09:30:00.1234567890", "more than 9 digits"),
            ("$12", "it contains `$`"),
            ("1 2 3 4 5 6 7 8 9 10 11 12 13", "too long"),
        ];
        for (value, needle) in cases {
            let order = if value.starts_with("13/01") {
                Some(DateOrder::Mdy)
            } else {
                None
            };
            let message = match text(value, Start, order, UTC) {
                Ok(ms) => panic!("{value:?} was accepted as {ms}"),
                Err(err) => err.to_string(),
            };
            let needle = needle.replace("not a date order", "there is no month 13");
            assert!(
                message.to_lowercase().contains(&needle.to_lowercase()),
                "{value:?}: {message:?} lacks {needle:?}"
            );
        }
    }

    #[test]
    fn plain_numbers_point_at_date_cells() {
        for value in [
            "2024",
            "45000",
            "45000.5",
            "99999999",
            "12345678",
            "-1710667800",
            "0",
            "+5",
        ] {
            let err = assert_bare_number(value);
            assert!(err.to_string().contains("cell formatted as a date"), "{err}");
        }
    }

    /// `value` read as a start date in UTC is the plain-number error; the error, for more.
    fn assert_bare_number(value: &str) -> DateError {
        let err = text(value, Start, None, UTC).unwrap_err();
        assert_eq!(
            err,
            DateError::BareNumber {
                value: value.to_owned()
            },
            "{value}"
        );
        err
    }

    /// An 8-digit value with a year and a month in it is taken for a basic date, and one
    /// with an impossible day is told so; anything else stays a plain number.
    #[test]
    fn eight_digits_with_a_year_and_month_are_told_about_the_day() {
        for (value, reason) in [
            ("20240230", "February 2024 has days 1 to 29, not 30"),
            ("20240431", "April 2024 has days 1 to 30, not 31"),
            ("20240100", "January 2024 has days 1 to 31, not 0"),
        ] {
            let err = text(value, Start, None, UTC).unwrap_err();
            assert_eq!(
                err,
                DateError::InvalidDate {
                    value: value.to_owned(),
                    reason: format!("{reason} (read as the ISO 8601 basic date YYYYMMDD)"),
                }
            );
        }
        for value in ["20241317", "20240017", "18991231", "10000000"] {
            assert_bare_number(value);
        }
    }

    #[test]
    fn two_digit_years_are_refused() {
        for value in [
            "17/03/24",
            "3/17/24 09:30",
            "17.03.24",
            "17-Mar-24",
            "Mar 17, 24",
            "17 Mar 24",
        ] {
            let err = text(value, Start, Some(DateOrder::Dmy), UTC).unwrap_err();
            assert_eq!(
                err,
                DateError::TwoDigitYear {
                    value: value.to_owned()
                },
                "{value}"
            );
            assert!(err.to_string().contains("two-digit year"));
        }
    }

    #[test]
    fn slash_dates_need_an_order_unless_they_prove_one() {
        let err = text("03/04/2024", Start, None, UTC).unwrap_err();
        assert_eq!(
            err,
            DateError::AmbiguousOrder {
                value: "03/04/2024".to_owned()
            }
        );
        assert!(err.to_string().contains("--date-order dmy"), "{err}");
        let err = text("03-04-2024 10:00", Start, None, UTC).unwrap_err();
        assert!(matches!(err, DateError::AmbiguousOrder { .. }), "{err:?}");
        // The flag says year first; a year-last value is refused rather than guessed.
        let err = text("17/03/2024", Start, Some(DateOrder::Ymd), UTC).unwrap_err();
        assert!(matches!(err, DateError::YearLastWithYmd { .. }), "{err:?}");
        assert!(err.to_string().contains("--date-order dmy"), "{err}");
        // Year-first and dotted values do not care about the flag.
        for order in [None, Some(DateOrder::Ymd), Some(DateOrder::Dmy), Some(DateOrder::Mdy)] {
            assert_eq!(text("2024/03/17", Start, order, UTC), Ok(DAY_START));
            assert_eq!(text("17.03.2024", Start, order, UTC), Ok(DAY_START));
            assert_eq!(text("17 Mar 2024", Start, order, UTC), Ok(DAY_START));
        }
    }

    #[test]
    fn options_parse_and_print() {
        for (name, order) in [
            ("ymd", DateOrder::Ymd),
            ("dmy", DateOrder::Dmy),
            ("MDY", DateOrder::Mdy),
        ] {
            assert_eq!(name.parse::<DateOrder>(), Ok(order));
            assert_eq!(order.to_string(), name.to_lowercase());
        }
        let err = "dd/mm".parse::<DateOrder>().unwrap_err().to_string();
        assert!(err.contains("--date-order") && err.contains("`dmy`"), "{err}");

        for (name, unit) in [
            ("seconds", TimestampUnit::Seconds),
            ("Milliseconds", TimestampUnit::Milliseconds),
        ] {
            assert_eq!(name.parse::<TimestampUnit>(), Ok(unit));
            assert_eq!(unit.to_string(), name.to_lowercase());
        }
        let err = "ms".parse::<TimestampUnit>().unwrap_err().to_string();
        assert!(
            err.contains("--timestamp-unit") && err.contains("`milliseconds`"),
            "{err}"
        );
    }

    #[test]
    fn timestamp_units_floor_to_seconds() {
        let cases = [
            (TimestampUnit::Seconds, 1_710_667_800_999, 1_710_667_800),
            (TimestampUnit::Seconds, 1_710_667_800_000, 1_710_667_800),
            (TimestampUnit::Seconds, -1, -1),
            (TimestampUnit::Seconds, -2_208_988_800_000, -2_208_988_800),
            (TimestampUnit::Milliseconds, 1_710_667_800_999, 1_710_667_800_999),
        ];
        for (unit, ms, want) in cases {
            assert_eq!(unit.convert(ms), want, "{unit} {ms}");
        }
        // The fixture values, end to end.
        let seconds = |value, bound, tz| text(value, bound, None, tz).map(|ms| TimestampUnit::Seconds.convert(ms));
        assert_eq!(seconds("05.02.2024", Start, Berlin), Ok(1_707_087_600));
        assert_eq!(seconds("09.02.2024 17:00", End, Berlin), Ok(1_707_494_400));
        assert_eq!(seconds("2024-03-17", Start, UTC), Ok(1_710_633_600));
        assert_eq!(seconds("2024-03-17", End, UTC), Ok(1_710_719_999));
    }
}
