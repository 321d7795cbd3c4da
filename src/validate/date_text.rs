//! Dates written as free text: the value cut into tokens (digit runs, letter runs,
//! separators, white space) once, and a parser that reads the shape of the token list
//! as every accepted form (see [`super::dates`] for the forms) and words every error. The
//! common forms are read straight from their bytes first ([`super::dates`]); this reading
//! decides the rest.

use chrono::{Datelike, NaiveDate, NaiveTime};

use super::dates::{
    DateError, DateOrder, MAX_UNIX_MILLIS, MAX_YEAR, MIN_UNIX_MILLIS, MIN_UNIX_SECONDS, MIN_YEAR, OrderFrom, Reading,
    unrecognised,
};

/// The reading by tokens and [`Parser`]: every accepted form, and the words of every error.
pub(super) fn full_read(value: &str, order: Option<(DateOrder, OrderFrom)>) -> Result<Reading, DateError> {
    if value.is_empty() {
        return Err(DateError::Empty);
    }
    let tokens = Tokens::scan(value).map_err(|reason| unrecognised(value, reason))?;
    Parser {
        value,
        toks: tokens.as_slice(),
        at: 0,
        order,
    }
    .parse()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tok<'a> {
    /// A run of ASCII digits; `value` saturates, `digits` counts leading zeros too.
    Num { value: u64, digits: usize },
    /// A run of ASCII letters.
    Word(&'a str),
    /// One of `- / . : , +`.
    Sym(u8),
    /// A run of white space (including no-break spaces, as spreadsheets write them).
    Space,
}

/// More than any accepted form needs (RFC 2822 with a weekday is 17).
const MAX_TOKENS: usize = 24;

/// The tokens of one value, on the stack: this runs once per cell.
pub(super) struct Tokens<'a> {
    items: [Tok<'a>; MAX_TOKENS],
    len: usize,
}

impl<'a> Tokens<'a> {
    pub(super) fn scan(text: &'a str) -> Result<Self, String> {
        let mut tokens = Tokens {
            items: [Tok::Space; MAX_TOKENS],
            len: 0,
        };
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let start = i;
            let b = bytes[i];
            let tok = if b.is_ascii_digit() {
                let mut value: u64 = 0;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    value = value.saturating_mul(10).saturating_add(u64::from(bytes[i] - b'0'));
                    i += 1;
                }
                Tok::Num {
                    value,
                    digits: i - start,
                }
            } else if b.is_ascii_alphabetic() {
                while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                    i += 1;
                }
                Tok::Word(&text[start..i])
            } else if matches!(b, b'-' | b'/' | b'.' | b':' | b',' | b'+') {
                i += 1;
                Tok::Sym(b)
            } else {
                // White space may be multi-byte (U+00A0, U+202F); anything else is foreign.
                let c = text[start..].chars().next().unwrap_or(' ');
                if !c.is_whitespace() {
                    return Err(format!("it contains `{c}`"));
                }
                i += c.len_utf8();
                while let Some(c) = text[i..].chars().next().filter(|c| c.is_whitespace()) {
                    i += c.len_utf8();
                }
                Tok::Space
            };
            if tokens.len == MAX_TOKENS {
                return Err("it is too long to be a date".to_owned());
            }
            tokens.items[tokens.len] = tok;
            tokens.len += 1;
        }
        Ok(tokens)
    }

    pub(super) fn as_slice(&self) -> &[Tok<'a>] {
        &self.items[..self.len]
    }
}

pub(super) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// 1-based month of an English month name, full or 3-letter (`Sept` too), any case.
pub(super) fn month_number(word: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|full| {
            word.eq_ignore_ascii_case(full)
                || (word.len() == 3 && word.eq_ignore_ascii_case(&full[..3]))
                || (*full == "September" && word.eq_ignore_ascii_case("sept"))
        })
        .map(|i| i as u32 + 1)
}

pub(super) fn weekday_of(word: &str) -> Option<chrono::Weekday> {
    use chrono::Weekday::*;
    const NAMES: [(&str, chrono::Weekday); 17] = [
        ("mon", Mon),
        ("monday", Mon),
        ("tue", Tue),
        ("tues", Tue),
        ("tuesday", Tue),
        ("wed", Wed),
        ("wednesday", Wed),
        ("thu", Thu),
        ("thur", Thu),
        ("thurs", Thu),
        ("thursday", Thu),
        ("fri", Fri),
        ("friday", Fri),
        ("sat", Sat),
        ("saturday", Sat),
        ("sun", Sun),
        ("sunday", Sun),
    ];
    NAMES
        .iter()
        .find(|(name, _)| word.eq_ignore_ascii_case(name))
        .map(|(_, day)| *day)
}

fn weekday_name(day: chrono::Weekday) -> &'static str {
    use chrono::Weekday::*;
    match day {
        Mon => "Monday",
        Tue => "Tuesday",
        Wed => "Wednesday",
        Thu => "Thursday",
        Fri => "Friday",
        Sat => "Saturday",
        Sun => "Sunday",
    }
}

/// Seconds east of UTC for a zone name: `Z`, UTC/GMT, and the US zones RFC 2822 defines.
fn named_offset(word: &str) -> Option<i32> {
    const ZONES: [(&str, i32); 12] = [
        ("z", 0),
        ("ut", 0),
        ("utc", 0),
        ("gmt", 0),
        ("edt", -4),
        ("est", -5),
        ("cdt", -5),
        ("cst", -6),
        ("mdt", -6),
        ("mst", -7),
        ("pdt", -7),
        ("pst", -8),
    ];
    ZONES
        .iter()
        .find(|(name, _)| word.eq_ignore_ascii_case(name))
        .map(|(_, hours)| hours * 3600)
}

fn is_ordinal_suffix(word: &str) -> bool {
    ["st", "nd", "rd", "th"].iter().any(|s| s.eq_ignore_ascii_case(word))
}

/// How a year-last numeric date was read, for messages about an impossible day or month.
fn reading_hint(
    sep: u8,
    order: Option<(DateOrder, OrderFrom)>,
    chose: DateOrder,
    first: u64,
    second: u64,
) -> Option<String> {
    let form = if chose == DateOrder::Dmy {
        "day/month/year"
    } else {
        "month/day/year"
    };
    match (sep, order) {
        (b'.', _) => Some("dotted dates are read as day.month.year".to_owned()),
        (_, Some((o, OrderFrom::Flag))) => Some(format!("read as {form} because of `--date-order {o}`")),
        (_, Some((_, OrderFrom::Column))) => Some(format!("read as {form} like the column's other values")),
        (_, None) if first > 12 => Some(format!("read as {form} because the first part is over 12")),
        (_, None) if second > 12 => Some(format!("read as {form} because the second part is over 12")),
        // Equal parts, or a zero: the reading does not matter, the value is wrong either way.
        (_, None) => None,
    }
}

struct Parser<'t, 'a> {
    value: &'a str,
    toks: &'t [Tok<'a>],
    at: usize,
    order: Option<(DateOrder, OrderFrom)>,
}

impl<'a> Parser<'_, 'a> {
    fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<Tok<'a>> {
        let tok = self.peek();
        if tok.is_some() {
            self.at += 1;
        }
        tok
    }

    fn eat(&mut self, tok: Tok<'_>) -> bool {
        let hit = self.peek() == Some(tok);
        if hit {
            self.at += 1;
        }
        hit
    }

    fn fail(&self, reason: impl Into<String>) -> DateError {
        unrecognised(self.value, reason)
    }

    /// The text from the current token on, to show what was not understood.
    fn describe_rest(&self) -> String {
        let next = match self.toks.get(self.at..) {
            Some([Tok::Space, next, ..]) => Some(*next),
            Some(rest) => rest.first().copied(),
            None => None,
        };
        match next {
            None => "the end".to_owned(),
            // As written, `0930` rather than `930` (unless the value saturated).
            Some(Tok::Num { value, digits }) if digits < 20 => format!("`{value:0digits$}`"),
            Some(Tok::Num { value, .. }) => format!("`{value}`"),
            Some(Tok::Word(w)) => format!("`{w}`"),
            Some(Tok::Sym(c)) => format!("`{}`", c as char),
            Some(Tok::Space) => "a space".to_owned(),
        }
    }

    /// A number of `digits` digits, named `what` in the message if it is missing.
    fn number(&mut self, digits: std::ops::RangeInclusive<usize>, what: &str) -> Result<u64, DateError> {
        match self.peek() {
            Some(Tok::Num { value, digits: d }) if digits.contains(&d) => {
                self.at += 1;
                Ok(value)
            }
            _ => Err(self.fail(format!("expected {what}, found {}", self.describe_rest()))),
        }
    }

    fn year(&mut self) -> Result<i64, DateError> {
        match self.peek() {
            Some(Tok::Num { value, digits: 4 }) => {
                self.at += 1;
                Ok(value as i64)
            }
            Some(Tok::Num { digits: 2, .. }) => Err(DateError::TwoDigitYear {
                value: self.value.to_owned(),
            }),
            Some(Tok::Num { value, .. }) => Err(self.fail(format!("the year `{value}` does not have 4 digits"))),
            _ => Err(self.fail(format!("expected a 4-digit year, found {}", self.describe_rest()))),
        }
    }

    fn parse(mut self) -> Result<Reading, DateError> {
        match self.toks {
            [Tok::Num { value, digits }] => return self.integer(*value, *digits),
            // ISO 8601 basic, `20240317T093000Z`: only an 8-digit number then `T` comes here,
            // so no other form pays more than a look at tokens it was going to read anyway.
            [Tok::Num { value, digits: 8 }, Tok::Word(t), ..] if t.eq_ignore_ascii_case("t") => {
                self.at = 2;
                return self.basic(*value);
            }
            // Decimals and signed numbers: serials or broken timestamps, never dates.
            [Tok::Num { digits: 3.., .. }, Tok::Sym(b'.' | b','), Tok::Num { .. }]
            | [Tok::Sym(b'-' | b'+'), Tok::Num { .. }, ..] => {
                return Err(DateError::BareNumber {
                    value: self.value.to_owned(),
                });
            }
            _ => {}
        }
        let date = self.date(true)?;
        let (time, offset) = self.time_and_offset()?;
        Ok(Reading::Wall { date, time, offset })
    }

    fn integer(&self, value: u64, digits: usize) -> Result<Reading, DateError> {
        if value > MAX_UNIX_MILLIS {
            return Err(self.fail("as Unix milliseconds it would be after the year 9999"));
        }
        if value >= MIN_UNIX_MILLIS {
            return Ok(Reading::Unix(value as i64));
        }
        if value >= MIN_UNIX_SECONDS {
            return Ok(Reading::Unix(value as i64 * 1000));
        }
        if digits == 8 {
            // ISO 8601 basic: 20240317.
            let (y, m, d) = (
                (value / 10_000) as i64,
                (value / 100 % 100) as u32,
                (value % 100) as u32,
            );
            if (MIN_YEAR..=MAX_YEAR).contains(&y) && (1..=12).contains(&m) {
                // A year and a month: `20240230` is far more likely a date with a slip in the
                // day than a number, so say what is wrong with it as a date.
                let date = self.calendar(y, m, u64::from(d), Some("read as the ISO 8601 basic date YYYYMMDD"))?;
                return Ok(Reading::Wall {
                    date,
                    time: None,
                    offset: None,
                });
            }
        }
        Err(DateError::BareNumber {
            value: self.value.to_owned(),
        })
    }

    /// After `YYYYMMDDT`: the ISO 8601 basic time `HHMM` or `HHMMSS[.fff]`, then `Z`, an
    /// offset (`+01`, `+0100`, `+01:00`) or nothing. The date and the time must both be
    /// basic: `20240317T09:30` mixes the two forms, which ISO 8601 does not allow.
    fn basic(&mut self, ymd: u64) -> Result<Reading, DateError> {
        let date = self.calendar((ymd / 10_000) as i64, (ymd / 100 % 100) as u32, ymd % 100, None)?;
        let (hour, minute, second) = match self.peek() {
            Some(Tok::Num { value, digits: 4 }) => (value / 100, value % 100, None),
            Some(Tok::Num { value, digits: 6 }) => (value / 10_000, value / 100 % 100, Some(value % 100)),
            Some(Tok::Num { digits: 1..=2, .. }) if self.toks.get(self.at + 1) == Some(&Tok::Sym(b':')) => {
                return Err(self.fail(
                    "it mixes the ISO 8601 basic date (no dashes) with a time with colons; write it all basic \
                     (`20240317T093000`) or all extended (`2024-03-17T09:30:00`)",
                ));
            }
            _ => {
                return Err(self.fail(format!(
                    "expected the time as HHMM or HHMMSS after `T` (e.g. `20240317T093000`), found {}",
                    self.describe_rest()
                )));
            }
        };
        self.at += 1;
        let nanos = self.fraction()?;
        if nanos.is_some() && second.is_none() {
            return Err(self.fail("a fraction goes after the seconds: HHMMSS.fff"));
        }
        let (second, millis) = (second.unwrap_or(0), nanos.unwrap_or(0) / 1_000_000);
        let time = NaiveTime::from_hms_milli_opt(hour as u32, minute as u32, second as u32, millis as u32)
            .ok_or_else(|| self.not_a_time_of_day(hour, minute, second))?;
        let offset = match self.peek() {
            None => None,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("z") => {
                self.at += 1;
                Some(0)
            }
            Some(Tok::Sym(sign @ (b'+' | b'-'))) => {
                self.at += 1;
                Some(self.numeric_offset(sign)?)
            }
            Some(Tok::Space) => return Err(self.fail("a basic date and time has no spaces")),
            Some(_) => {
                return Err(self.fail(format!(
                    "unexpected {} after the time; a basic time ends there, or with `Z` or an offset such as `+0100`",
                    self.describe_rest()
                )));
            }
        };
        if self.peek().is_some() {
            return Err(self.fail(format!("unexpected {} at the end", self.describe_rest())));
        }
        Ok(Reading::Wall {
            date,
            time: Some(time),
            offset,
        })
    }

    /// The date part. `weekday_allowed` lets one leading weekday name through.
    fn date(&mut self, weekday_allowed: bool) -> Result<NaiveDate, DateError> {
        match self.peek() {
            Some(Tok::Num { digits: 4, .. }) => self.year_first(),
            Some(Tok::Num { digits: 1..=2, .. }) => self.day_or_month_first(),
            // `20240317` alone is read in `integer`, `20240317T0930` in `basic`.
            Some(Tok::Num { digits: 8, .. }) => Err(self.fail(
                "an 8-digit date takes a time only after `T` and without colons, as in `20240317T093000`; \
                 or write `2024-03-17 09:30`",
            )),
            Some(Tok::Num { value, .. }) => Err(self.fail(format!(
                "`{value}` is neither a 4-digit year nor a 1- or 2-digit day or month"
            ))),
            Some(Tok::Word(word)) => {
                self.at += 1;
                if let Some(month) = month_number(word) {
                    return self.month_first(month);
                }
                match weekday_of(word) {
                    Some(stated) if weekday_allowed => {
                        self.eat(Tok::Sym(b','));
                        self.eat(Tok::Space);
                        let date = self.date(false)?;
                        if date.weekday() != stated {
                            return Err(DateError::WeekdayMismatch {
                                value: self.value.to_owned(),
                                stated: weekday_name(stated).to_owned(),
                                actual: weekday_name(date.weekday()).to_owned(),
                            });
                        }
                        Ok(date)
                    }
                    _ => Err(self.fail(format!("`{word}` is not an English month or weekday name"))),
                }
            }
            _ => Err(self.fail(format!("it starts with {}", self.describe_rest()))),
        }
    }

    /// `2024-03-17`, `2024/03/17`, `2024.03.17`, `2024-Mar-17`.
    fn year_first(&mut self) -> Result<NaiveDate, DateError> {
        let year = self.year()?;
        let sep = match self.bump() {
            Some(Tok::Sym(sep @ (b'-' | b'/' | b'.'))) => sep,
            _ => {
                return Err(self.fail("a year first must be followed by `-`, `/` or `.` and the month"));
            }
        };
        let month = match self.peek() {
            Some(Tok::Word(word)) => {
                self.at += 1;
                month_number(word).ok_or_else(|| self.fail(format!("`{word}` is not an English month name")))?
            }
            _ => self.number(1..=2, "a 1- or 2-digit month after the year")? as u32,
        };
        if !self.eat(Tok::Sym(sep)) {
            return Err(self.fail(format!(
                "expected `{}` and the day after the month, found {}",
                sep as char,
                self.describe_rest()
            )));
        }
        let day = self.number(1..=2, "a 1- or 2-digit day")?;
        self.calendar(year, month, day, None)
    }

    /// `17/03/2024`, `03/17/2024`, `17-03-2024`, `17.03.2024`, `17 Mar 2024`, `17-Mar-2024`.
    fn day_or_month_first(&mut self) -> Result<NaiveDate, DateError> {
        let first = self.number(1..=2, "a day or month")?;
        if let Some(Tok::Word(word)) = self.peek()
            && is_ordinal_suffix(word)
        {
            self.at += 1;
        }
        let sep = match self.bump() {
            Some(Tok::Sym(sep @ (b'-' | b'/' | b'.'))) => sep,
            Some(Tok::Space) => b' ',
            Some(Tok::Sym(b':')) => return Err(self.fail("it is a time without a date")),
            _ => return Err(self.fail(format!("`{first}` is not followed by a month"))),
        };
        match self.peek() {
            Some(Tok::Word(word)) => {
                let month =
                    month_number(word).ok_or_else(|| self.fail(format!("`{word}` is not an English month name")))?;
                self.at += 1;
                // `17 Mar 2024`, `17 March, 2024`, `17-Mar-2024`, `17 Mar. 2024`.
                if sep != b'.' {
                    self.eat(Tok::Sym(b'.'));
                }
                let ok = if sep == b' ' {
                    self.eat(Tok::Sym(b','));
                    self.eat(Tok::Space)
                } else {
                    self.eat(Tok::Sym(sep))
                };
                if !ok {
                    return Err(self.fail(format!(
                        "expected the year after `{word}`, found {}",
                        self.describe_rest()
                    )));
                }
                let year = self.year()?;
                self.calendar(year, month, first, None)
            }
            Some(Tok::Num { .. }) if sep != b' ' => {
                let second = self.number(1..=2, "a 1- or 2-digit day or month")?;
                if !self.eat(Tok::Sym(sep)) {
                    return Err(self.fail(format!(
                        "expected `{}` and the year, found {}",
                        sep as char,
                        self.describe_rest()
                    )));
                }
                let year = self.year()?;
                let chose = if sep == b'.' {
                    DateOrder::Dmy
                } else {
                    match self.order.map(|(order, _)| order) {
                        Some(DateOrder::Ymd) => {
                            return Err(DateError::YearLastWithYmd {
                                value: self.value.to_owned(),
                            });
                        }
                        Some(order) => order,
                        None if first > 12 || first == second || first == 0 || second == 0 => DateOrder::Dmy,
                        None if second > 12 => DateOrder::Mdy,
                        None => {
                            return Err(DateError::AmbiguousOrder {
                                value: self.value.to_owned(),
                            });
                        }
                    }
                };
                let (day, month) = if chose == DateOrder::Dmy {
                    (first, second)
                } else {
                    (second, first)
                };
                let hint = reading_hint(sep, self.order, chose, first, second);
                self.calendar(year, month as u32, day, hint.as_deref())
            }
            _ => Err(self.fail(format!(
                "expected a month after `{first}`, found {}",
                self.describe_rest()
            ))),
        }
    }

    /// After the month name: `Mar 17, 2024`, `March 17 2024`, `Mar. 17th, 2024`.
    fn month_first(&mut self, month: u32) -> Result<NaiveDate, DateError> {
        self.eat(Tok::Sym(b'.'));
        if !(self.eat(Tok::Space) || self.eat(Tok::Sym(b'-'))) {
            return Err(self.fail(format!(
                "expected the day after the month, found {}",
                self.describe_rest()
            )));
        }
        let day = self.number(1..=2, "a 1- or 2-digit day after the month")?;
        if let Some(Tok::Word(word)) = self.peek()
            && is_ordinal_suffix(word)
        {
            self.at += 1;
        }
        let comma = self.eat(Tok::Sym(b','));
        let space = self.eat(Tok::Space);
        if !(comma || space || self.eat(Tok::Sym(b'-'))) {
            return Err(self.fail(format!(
                "expected the year after the day, found {}",
                self.describe_rest()
            )));
        }
        let year = self.year()?;
        self.calendar(year, month, day, None)
    }

    fn calendar(&self, year: i64, month: u32, day: u64, hint: Option<&str>) -> Result<NaiveDate, DateError> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(DateError::YearOutOfRange {
                value: self.value.to_owned(),
                year,
            });
        }
        let invalid = |reason: String| DateError::InvalidDate {
            value: self.value.to_owned(),
            reason: match hint {
                Some(hint) => format!("{reason} ({hint})"),
                None => reason,
            },
        };
        if !(1..=12).contains(&month) {
            return Err(invalid(format!("there is no month {month}")));
        }
        let day = u32::try_from(day).unwrap_or(u32::MAX);
        NaiveDate::from_ymd_opt(year as i32, month, day).ok_or_else(|| {
            let days = days_in_month(year as i32, month);
            let name = MONTHS[month as usize - 1];
            invalid(format!("{name} {year} has days 1 to {days}, not {day}"))
        })
    }

    /// An optional time (after a space, `T` or `,`) and an optional offset, then the end.
    fn time_and_offset(&mut self) -> Result<(Option<NaiveTime>, Option<i32>), DateError> {
        if self.peek().is_none() {
            return Ok((None, None));
        }
        let separated = match self.peek() {
            Some(Tok::Space) => self.eat(Tok::Space),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("t") => self.eat(Tok::Word(w)),
            Some(Tok::Sym(b',')) => {
                self.at += 1;
                self.eat(Tok::Space);
                true
            }
            _ => false,
        };
        if !separated || !matches!(self.peek(), Some(Tok::Num { .. })) {
            return Err(self.fail(format!(
                "expected the end or a time such as 09:30 after the date, found {}",
                self.describe_rest()
            )));
        }
        let time = self.time()?;
        let before_offset = self.at;
        self.eat(Tok::Space);
        let offset = match self.bump() {
            None => {
                self.at = before_offset;
                None
            }
            Some(Tok::Word(word)) => Some(named_offset(word).ok_or_else(|| {
                self.fail(format!(
                    "`{word}` is not a zone abbreviation this tool knows (Z, UTC, GMT, EST, EDT, CST, CDT, \
                     MST, MDT, PST, PDT); write an offset such as +01:00, or leave it out and pass `--timezone`"
                ))
            })?),
            Some(Tok::Sym(sign @ (b'+' | b'-'))) => Some(self.numeric_offset(sign)?),
            Some(_) => {
                self.at -= 1;
                return Err(self.fail(format!("unexpected {} after the time", self.describe_rest())));
            }
        };
        if self.peek().is_some() {
            return Err(self.fail(format!("unexpected {} at the end", self.describe_rest())));
        }
        Ok((Some(time), offset))
    }

    /// `H:MM`, `HH:MM:SS`, `HH:MM:SS.fff`, with an optional `AM`/`PM`.
    fn time(&mut self) -> Result<NaiveTime, DateError> {
        let mut hour = match self.number(1..=2, "a 1- or 2-digit hour") {
            Ok(hour) => hour,
            Err(_) if matches!(self.peek(), Some(Tok::Num { digits: 4 | 6, .. })) => {
                return Err(self.fail(format!(
                    "the time {} has no colons: write it `09:30[:00]`, or write the whole value in ISO 8601 \
                     basic form, e.g. `20240317T093000`",
                    self.describe_rest()
                )));
            }
            Err(e) => return Err(e),
        };
        if !self.eat(Tok::Sym(b':')) {
            return Err(self.fail(format!("expected `:` after the hour, found {}", self.describe_rest())));
        }
        let minute = self.number(2..=2, "2-digit minutes")?;
        let (mut second, mut nanos) = (0, 0);
        if self.eat(Tok::Sym(b':')) {
            second = self.number(2..=2, "2-digit seconds")?;
            nanos = self.fraction()?.unwrap_or(0);
        }
        let before_meridiem = self.at;
        self.eat(Tok::Space);
        match self.peek() {
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("am") || w.eq_ignore_ascii_case("pm") => {
                self.at += 1;
                if !(1..=12).contains(&hour) {
                    return Err(self.fail(format!("hour {hour} does not go with {w}; use 1 to 12")));
                }
                hour = hour % 12 + if w.eq_ignore_ascii_case("pm") { 12 } else { 0 };
            }
            _ => self.at = before_meridiem,
        }
        // Milliseconds are all a request carries; the rest is dropped here, not rounded up
        // into a later second. Each part has at most 2 digits, so `as u32` loses nothing.
        let millis = nanos / 1_000_000;
        NaiveTime::from_hms_milli_opt(hour as u32, minute as u32, second as u32, millis as u32)
            .ok_or_else(|| self.not_a_time_of_day(hour, minute, second))
    }

    /// An optional `.fff` or `,fff` after the seconds, as nanoseconds.
    fn fraction(&mut self) -> Result<Option<u64>, DateError> {
        let (Some(Tok::Sym(b'.' | b',')), Some(Tok::Num { value, digits })) =
            (self.peek(), self.toks.get(self.at + 1).copied())
        else {
            return Ok(None);
        };
        if digits > 9 {
            return Err(self.fail("fractional seconds have more than 9 digits"));
        }
        self.at += 2;
        Ok(Some(value * 10u64.pow((9 - digits) as u32)))
    }

    /// The message for a time out of range, the same for every form.
    // Only the message is shared. A shared function handing back the time as a `Result`
    // was not inlined, and the call cost every value with a time some 30 instructions
    // (callgrind).
    fn not_a_time_of_day(&self, hour: u64, minute: u64, second: u64) -> DateError {
        DateError::InvalidDate {
            value: self.value.to_owned(),
            reason: format!(
                "{hour:02}:{minute:02}:{second:02} is not a time of day (hours 0 to 23, minutes and seconds 0 to 59)"
            ),
        }
    }

    /// After the sign: `02:00`, `0200` or `02`.
    fn numeric_offset(&mut self, sign: u8) -> Result<i32, DateError> {
        let (hours, minutes) = match self.bump() {
            Some(Tok::Num { value, digits: 4 }) => (value / 100, value % 100),
            Some(Tok::Num { value, digits: 2 }) => {
                if self.eat(Tok::Sym(b':')) {
                    (value, self.number(2..=2, "2-digit offset minutes")?)
                } else {
                    (value, 0)
                }
            }
            _ => return Err(self.fail("an offset must look like +02:00, +0200 or +02")),
        };
        if hours > 23 || minutes > 59 {
            return Err(self.fail("an offset must be under 24 hours, e.g. +02:00"));
        }
        let secs = (hours * 3600 + minutes * 60) as i32;
        Ok(if sign == b'-' { -secs } else { secs })
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(next_year, next_month, 1)
        .and_then(|next| next.pred_opt())
        .map_or(31, |last| last.day())
}
