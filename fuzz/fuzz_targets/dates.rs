//! The date parser: `[order, zone, text...]`. The text goes through `parse_date`, and
//! each of its lines through `OrderEvidence` and then `parse_date` with the order found.
//! The first 12 bytes also make a workbook date-time for the cell path. Nothing may
//! panic; a date that parses lies in years 1900 to 9999 (give or take a zone's offset),
//! and its start of day is not after its end of day.
#![no_main]

use chrono::{DateTime, NaiveDateTime};
use chrono_tz::Tz;
use libfuzzer_sys::fuzz_target;
use testsigma_import::OrderEvidence;
use testsigma_import::{DateOrder, DateValue, DayBound, parse_date};

/// Zones with the cases that break naive code: DST gaps and folds, half-hour and
/// 45-minute offsets, a zone that skipped a whole day (Apia, 2011-12-30), the far east.
const ZONES: [Tz; 8] = [
    Tz::UTC,
    Tz::Europe__Berlin,
    Tz::America__New_York,
    Tz::Asia__Kolkata,
    Tz::Asia__Kathmandu,
    Tz::Pacific__Apia,
    Tz::Australia__Lord_Howe,
    Tz::America__St_Johns,
];
/// 1900-01-01T00:00:00Z and 10000-01-01T00:00:00Z, widened by the largest offsets.
const MIN_MS: i64 = -2_208_988_800_000 - 26 * 3_600_000;
const MAX_MS: i64 = 253_402_300_800_000 + 26 * 3_600_000;

fn order(b: u8) -> Option<DateOrder> {
    match b % 4 {
        0 => None,
        1 => Some(DateOrder::Ymd),
        2 => Some(DateOrder::Dmy),
        _ => Some(DateOrder::Mdy),
    }
}

fn check(value: DateValue<'_>, order: Option<DateOrder>, tz: Tz) {
    let start = parse_date(value, DayBound::Start, order, tz);
    let end = parse_date(value, DayBound::End, order, tz);
    for ms in [&start, &end].into_iter().flatten() {
        assert!(
            (MIN_MS..MAX_MS).contains(ms),
            "{value:?} read as {ms}, outside 1900 to 9999"
        );
    }
    if let (Ok(start), Ok(end)) = (start, end) {
        assert!(start <= end, "{value:?} starts at {start}, after its end {end}");
    }
}

fuzz_target!(|data: &[u8]| {
    let [o, z, rest @ ..] = data else {
        return;
    };
    let tz = ZONES[usize::from(z % ZONES.len() as u8)];
    let order = order(*o);

    // A workbook cell: any date-time chrono can hold, taken from the first 12 bytes.
    if let Some(head) = data.get(..12) {
        let secs = i64::from_le_bytes(head[..8].try_into().unwrap_or_default());
        let nanos = u32::from_le_bytes(head[8..12].try_into().unwrap_or_default());
        if let Some(dt) = DateTime::from_timestamp(secs, nanos % 2_000_000_000) {
            let cell: NaiveDateTime = dt.naive_utc();
            check(DateValue::DateTime(cell), order, tz);
        }
    }

    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    check(DateValue::Text(text), order, tz);

    let mut evidence = OrderEvidence::default();
    for (row, line) in text.lines().enumerate() {
        evidence.observe(line, row + 2);
    }
    let found = evidence.resolve("Start Date");
    if let Ok(found) = found {
        for line in text.lines() {
            check(DateValue::Text(line), found, tz);
        }
    }
});
