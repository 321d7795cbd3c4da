//! The workbook reader against real files: written by rust_xlsxwriter here, or kept in
//! tests/fixtures (LibreOffice, openpyxl, the public corpus, the fuzzer's finds).

use std::io::Cursor;

use chrono::NaiveDate;

use super::book::OLE_MAGIC;
use super::*;
use crate::read::open_source;
use crate::read::row::Cell;
use crate::read::test_support::{bytes_input, fixture, read_all};
use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};

fn dt(y: i32, m: u32, d: u32, h: u32, min: u32) -> Cell<'static> {
    Cell::DateTime(
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap(),
    )
}

fn text(s: &str) -> Cell<'_> {
    Cell::Text(s)
}

fn opts() -> SourceOptions {
    SourceOptions::default()
}

fn open_err(input: &Input, opts: &SourceOptions) -> String {
    match open_source(input, opts) {
        Ok(_) => panic!("expected an error"),
        Err(err) => err.to_string(),
    }
}

/// Writes a workbook with rust_xlsxwriter into a temp dir and returns its path.
fn write_xlsx(dir: &tempfile::TempDir, file: &str, build: impl FnOnce(&mut Workbook)) -> Input {
    let mut workbook = Workbook::new();
    build(&mut workbook);
    let path = dir.path().join(file);
    workbook.save(&path).unwrap();
    Input::File(path)
}

#[test]
fn reading_some_columns_gives_the_same_cells_there() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_xlsx(&dir, "runs.xlsx", |wb| {
        let sheet = wb.add_worksheet();
        sheet.write_string(0, 0, "Title").unwrap();
        sheet.write_string(0, 1, "Start").unwrap();
        sheet.write_string(0, 2, "Notes").unwrap();
        sheet.write_string(1, 0, "A").unwrap();
        sheet.write_string(1, 1, "01/02/2024").unwrap();
        sheet.write_number(1, 2, 7.0).unwrap();
        sheet.write_string(2, 0, "B").unwrap();
        sheet.write_string(2, 2, "text").unwrap();
        let date = ExcelDateTime::from_ymd(2024, 2, 13).unwrap();
        sheet
            .write_datetime_with_format(3, 1, &date, &Format::new().set_num_format("dd/mm/yyyy"))
            .unwrap();
    });
    let mut full = open_source(&input, &opts()).unwrap();
    let mut some = open_source(&input, &opts()).unwrap();
    let (mut all_cells, mut start_only) = (SourceRow::default(), SourceRow::default());
    let mut starts = Vec::new();
    while full.next_row(&mut all_cells).unwrap() {
        assert!(some.next_row_columns(&mut start_only, &[1]).unwrap());
        assert_eq!(start_only.number, all_cells.number);
        assert_eq!(start_only.cell(1).unwrap(), all_cells.cell(1).unwrap());
        assert_eq!(
            [start_only.cell(0).unwrap(), start_only.cell(2).unwrap()],
            [Cell::Empty, Cell::Empty]
        );
        starts.push(start_only.clone());
    }
    assert!(!some.next_row_columns(&mut start_only, &[1]).unwrap());
    let starts: Vec<Cell> = starts.iter().map(|row| row.cell(1).unwrap()).collect();
    assert_eq!(starts, [text("01/02/2024"), Cell::Empty, dt(2024, 2, 13, 0, 0)]);
}

#[test]
fn the_1904_workbook_keeps_its_epoch() {
    let input = fixture("openpyxl-1904-dates.xlsx");
    let source = open_source(&input, &opts()).unwrap();
    assert!(source.is_workbook());
    assert_eq!(source.sheet_name(), Some("Runs"));
    let (headers, rows) = read_all(&input, &opts());
    assert_eq!(headers, ["Title", "Human ID", "Start Date", "End Date", "Labels"]);
    // The stored serial for C2 is 44012.375: read in the 1900 system it would be
    // 2020-06-30, four years and one day early.
    assert_eq!(
        rows,
        [
            SourceRow::new(
                2,
                &[
                    text("Checkout flow"),
                    Cell::Number(42.0),
                    dt(2024, 7, 1, 9, 0),
                    dt(2024, 7, 3, 18, 0),
                    text("web;checkout"),
                ]
            ),
            SourceRow::new(
                3,
                &[
                    text("Search"),
                    Cell::Number(43.0),
                    dt(2024, 7, 8, 0, 0),
                    dt(2024, 7, 9, 0, 0),
                    text("web"),
                ]
            ),
        ]
    );
    assert_eq!(rows[0].cell(1).unwrap().as_text(), "42");
}

#[test]
fn libreoffice_ods_and_xls_read_alike() {
    for file in ["libreoffice.ods", "libreoffice.xls"] {
        let input = fixture(file);
        let source = open_source(&input, &opts()).unwrap();
        assert_eq!(source.sheet_name(), Some("Plan"), "{file}");
        let (headers, rows) = read_all(&input, &opts());
        assert_eq!(headers, ["Title", "Start", "End", "Labels", "Cases"], "{file}");
        assert_eq!(
            rows,
            [
                SourceRow::new(
                    2,
                    &[
                        text("Release candidate"),
                        dt(2024, 9, 2, 10, 0),
                        dt(2024, 9, 6, 16, 0),
                        text("Release|RC"),
                        text("2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091"),
                    ]
                ),
                SourceRow::new(
                    3,
                    &[
                        text("Accessibility pass"),
                        dt(2024, 9, 9, 0, 0),
                        Cell::Empty,
                        text("a11y"),
                        Cell::Empty,
                    ]
                ),
            ],
            "{file}"
        );
    }
}

#[test]
fn libreoffice_error_cells_are_error_cells_in_ods_as_in_xls() {
    // Both made by LibreOffice 7.4 from libreoffice-errors.csv, its formulas evaluated on
    // import (see tests/fixtures/README.md).
    for (file, bad_root) in [
        ("libreoffice-errors.ods", "Err:502"),
        ("libreoffice-errors.xls", "#VALUE!"),
    ] {
        let (headers, rows) = read_all(&fixture(file), &opts());
        assert_eq!(headers, ["Title", "Human ID", "Status", "Start"], "{file}");
        let cells: Vec<Vec<Cell>> = rows.iter().map(|row| row.cells().collect()).collect();
        assert_eq!(
            cells,
            [
                vec![
                    Cell::Error("#DIV/0!"),
                    Cell::Error("#N/A"),
                    text("ACTIVE"),
                    dt(2024, 3, 17, 0, 0)
                ],
                vec![
                    Cell::Error(bad_root),
                    text("R-2"),
                    text("ACTIVE"),
                    Cell::Error("#DIV/0!")
                ],
                vec![
                    text("Ok title"),
                    Cell::Error("#VALUE!"),
                    text("ACTIVE"),
                    dt(2024, 3, 18, 0, 0)
                ],
            ],
            "{file}"
        );
    }
}

/// Public files that read wrongly with calamine 0.38.0 (tests/fixtures/corpus/README.md),
/// held to what xlrd and LibreOffice read.
#[test]
fn corpus_xlsb_formula_errors_are_error_cells() {
    let misc = SourceOptions {
        sheet: Some("misc".to_owned()),
        ..opts()
    };
    let (headers, rows) = read_all(&fixture("corpus/apachepoi_FormulaEvalTestData.xls.xlsb"), &misc);
    assert_eq!(headers, ["string", "1", "1", "TRUE", "0", ""]);
    let first: Vec<(usize, Cell)> = rows.iter().map(|row| (row.number, row.cell(0).unwrap())).collect();
    assert_eq!(
        first,
        [
            (2, text("TRUE")),
            (3, text("FALSE")),
            (5, Cell::Empty),
            (6, Cell::Empty),
            (8, Cell::Error("#NUM!")),
            (10, Cell::Empty),
            (12, text("TRUE")),
            (13, Cell::Error("#VALUE!")),
            (14, Cell::Number(1.0)),
            (16, text("abc")),
            (18, Cell::Number(0.5)),
        ]
    );
    // Rows with no value (4, 7, ...) are passed over; row 13 holds nothing but the error.
    assert_eq!(rows[7].number, 13);
    assert!(rows[7].cells().skip(1).all(|cell| cell == Cell::Empty));
}

#[test]
fn corpus_biff8_text_has_no_nul_between_letters() {
    let (headers, rows) = read_all(&fixture("corpus/CRLFR9.XLS"), &opts());
    assert_eq!(headers, ["Normal", "abc\r\ndef"]);
    assert_eq!(rows, [SourceRow::new(2, &[text("Formula"), text("abc\r\ndef")])]);
}

fn two_sheets(workbook: &mut Workbook) {
    let first = workbook.add_worksheet();
    first.set_name("Notes").unwrap();
    first.write_string(0, 0, "Read me").unwrap();
    let second = workbook.add_worksheet();
    second.set_name("Runs").unwrap();
    second.write_string(0, 0, "Title").unwrap();
    second.write_string(0, 1, "Status").unwrap();
    second.write_string(1, 0, "Second sheet run").unwrap();
    second.write_string(1, 1, "ACTIVE").unwrap();
}

#[test]
fn sheet_flag_picks_the_sheet_and_a_missing_one_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_xlsx(&dir, "two.xlsx", two_sheets);

    let (headers, _) = read_all(&input, &opts());
    assert_eq!(headers, ["Read me"]);

    for wanted in ["Runs", "runs", " RUNS "] {
        let opts = SourceOptions {
            sheet: Some(wanted.to_owned()),
            ..opts()
        };
        let source = open_source(&input, &opts).unwrap();
        assert_eq!(source.sheet_name(), Some("Runs"));
        let (headers, rows) = read_all(&input, &opts);
        assert_eq!(headers, ["Title", "Status"]);
        assert_eq!(rows, [SourceRow::new(2, &[text("Second sheet run"), text("ACTIVE")])]);
    }

    let opts = SourceOptions {
        sheet: Some("Plan".to_owned()),
        ..opts()
    };
    assert_eq!(
        open_err(&input, &opts),
        format!(
            "{}: --sheet Plan: there is no such sheet; the sheets are `Notes`, `Runs`",
            input.display_name()
        )
    );
}

#[test]
fn the_default_sheet_is_the_first_visible_one() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_xlsx(&dir, "hidden.xlsx", |workbook| {
        two_sheets(workbook);
        if let Ok(notes) = workbook.worksheet_from_name("Notes") {
            notes.set_hidden(true);
        }
        if let Ok(runs) = workbook.worksheet_from_name("Runs") {
            runs.set_active(true);
        }
    });
    let source = open_source(&input, &opts()).unwrap();
    assert_eq!(source.sheet_name(), Some("Runs"));
}

#[test]
fn header_row_three_and_a_table_off_a1_keep_real_references() {
    let dir = tempfile::tempdir().unwrap();
    let date_format = Format::new().set_num_format("yyyy-mm-dd hh:mm");
    let input = write_xlsx(&dir, "offset.xlsx", |workbook| {
        let sheet = workbook.add_worksheet();
        sheet.write_string(0, 1, "Quarterly export").unwrap();
        sheet.write_string(2, 1, " Title ").unwrap();
        sheet.write_string(2, 2, "Start").unwrap();
        sheet.write_string(2, 3, "Done").unwrap();
        sheet.write_string(2, 4, "Score").unwrap();
        sheet.write_string(3, 1, "Offset run").unwrap();
        let start = ExcelDateTime::parse_from_str("2024-03-17 09:30:00").unwrap();
        sheet.write_datetime_with_format(3, 2, &start, &date_format).unwrap();
        sheet.write_boolean(3, 3, true).unwrap();
        sheet.write_formula(3, 4, Formula::new("=1+1").set_result("2")).unwrap();
        sheet.write_string(5, 1, "After a gap").unwrap();
        sheet
            .write_formula(5, 4, Formula::new("=NA()").set_result("#N/A"))
            .unwrap();
    });
    let opts = SourceOptions {
        header_row: 3,
        ..opts()
    };
    let (headers, rows) = read_all(&input, &opts);
    assert_eq!(headers, ["", "Title", "Start", "Done", "Score"]);
    assert_eq!(
        rows,
        [
            SourceRow::new(
                4,
                &[
                    Cell::Empty,
                    text("Offset run"),
                    dt(2024, 3, 17, 9, 30),
                    Cell::Bool(true),
                    Cell::Number(2.0),
                ]
            ),
            SourceRow::new(
                6,
                &[
                    Cell::Empty,
                    text("After a gap"),
                    Cell::Empty,
                    Cell::Empty,
                    Cell::Error("#N/A"),
                ]
            ),
        ]
    );

    // With the default header row, row 1 holds only the title text.
    let (headers, _) = read_all(&input, &SourceOptions::default());
    assert_eq!(headers, ["", "Quarterly export", "", "", ""]);
    let opts2 = SourceOptions {
        header_row: 2,
        ..SourceOptions::default()
    };
    assert_eq!(
        open_err(&input, &opts2),
        format!(
            "{}: row 2 (--header-row) is empty; row 3 has values: pass --header-row 3 if it holds the column names",
            input.display_name()
        )
    );
    let opts9 = SourceOptions {
        header_row: 9,
        ..SourceOptions::default()
    };
    assert_eq!(
        open_err(&input, &opts9),
        format!(
            "{}: --header-row 9 is past the last row (6); pass the row that holds the column names",
            input.display_name()
        )
    );
}

#[test]
fn times_and_durations_are_not_dates() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_xlsx(&dir, "times.xlsx", |workbook| {
        let sheet = workbook.add_worksheet();
        sheet.write_string(0, 0, "Time").unwrap();
        sheet.write_string(0, 1, "Elapsed").unwrap();
        let time = Format::new().set_num_format("hh:mm");
        let elapsed = Format::new().set_num_format("[h]:mm:ss");
        let nine = ExcelDateTime::from_hms(9, 15, 0).unwrap();
        sheet.write_datetime_with_format(1, 0, &nine, &time).unwrap();
        sheet.write_number_with_format(1, 1, 1.5, &elapsed).unwrap();
    });
    let (_, rows) = read_all(&input, &opts());
    assert_eq!(rows[0].cells().collect::<Vec<_>>(), [text("9:15:00"), text("36:00:00")]);
}

#[test]
fn bytes_input_reads_a_workbook() {
    let data =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openpyxl-1904-dates.xlsx"))
            .unwrap();
    let (headers, rows) = read_all(&bytes_input("upload.XLSX", &data), &opts());
    assert_eq!(headers[..2], ["Title", "Human ID"]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].cell(2).unwrap(), dt(2024, 7, 8, 0, 0));
}

#[test]
fn damaged_workbooks_are_clear_errors() {
    let data =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openpyxl-1904-dates.xlsx"))
            .unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated.xlsx", data[..data.len() / 2].to_vec()),
        ("truncated.xlsx", data[..100].to_vec()),
        ("empty.xlsx", Vec::new()),
        ("text.xlsx", b"Title,Status\nA,B\n".to_vec()),
        ("text.ods", b"Title,Status\nA,B\n".to_vec()),
        ("text.xls", b"Title,Status\nA,B\n".to_vec()),
        ("text.xlsb", b"Title,Status\nA,B\n".to_vec()),
        ("zip.xls", data.clone()),
    ];
    for (file, bytes) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file);
        std::fs::write(&path, &bytes).unwrap();
        let input = Input::File(path);
        let err = open_err(&input, &opts());
        let prefix = format!("cannot read {} as a workbook (", input.display_name());
        assert!(err.starts_with(&prefix), "{file}: {err}");
        assert!(
            err.ends_with("it may be damaged, truncated or of another type than its extension says: open it in Excel or LibreOffice and save a fresh copy"),
            "{file}: {err}"
        );
    }
}

#[test]
fn a_password_protected_workbook_says_so() {
    // The 1904 fixture encrypted with msoffcrypto-tool 6.1.0, password `secret`.
    let input = fixture("msoffcrypto-encrypted.xlsx");
    assert_eq!(
        open_err(&input, &opts()),
        format!(
            "{} is password-protected; remove the password (in Excel: File > Info > Protect Workbook; in LibreOffice: File > Save As without \"Save with password\") and save it again",
            input.display_name()
        )
    );
}

#[test]
fn every_password_protected_format_gets_the_password_advice() {
    // An encrypted .xlsb is the same OLE container as an encrypted .xlsx.
    let ole = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/msoffcrypto-encrypted.xlsx"),
    )
    .unwrap();
    // An encrypted .ods is a zip whose manifest describes how each part is encrypted.
    let encrypted = r#"<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="AAAA"><manifest:algorithm manifest:algorithm-name="Blowfish CFB" manifest:initialisation-vector="AAAA"/></manifest:encryption-data>"#;
    let ods = ods_package(encrypted, "\u{8f}\u{13}encrypted");
    for (file, data) in [("locked.xlsb", &ole), ("locked.ods", &ods)] {
        assert_eq!(
            open_err(&bytes_input(file, data), &opts()),
            format!(
                "{file} is password-protected; remove the password (in Excel: File > Info > Protect Workbook; in LibreOffice: File > Save As without \"Save with password\") and save it again"
            ),
        );
    }
}

/// A stored .ods package: its manifest, with `encryption` inside the entry of
/// `content.xml`, and `content` as that part.
fn ods_package(encryption: &str, content: &str) -> Vec<u8> {
    use std::io::Write;
    let manifest = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">{encryption}</manifest:file-entry></manifest:manifest>"#
    );
    let mut ods = Vec::new();
    let mut zip = zip::ZipWriter::new(Cursor::new(&mut ods));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (part, bytes) in [
        ("mimetype", "application/vnd.oasis.opendocument.spreadsheet"),
        ("META-INF/manifest.xml", &manifest),
        ("content.xml", content),
    ] {
        zip.start_file(part, stored).unwrap();
        zip.write_all(bytes.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    ods
}

fn fixture_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn ods_with_content(content: &str) -> Vec<u8> {
    ods_package("", content)
}

fn ods_table(rows: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="Runs">{rows}"#
    )
}

const ODS_END: &str = "</table:table></office:spreadsheet></office:body></office:document-content>";

/// Found while fuzzing: calamine read a table that is never closed forever.
#[test]
fn fuzz_an_ods_table_never_closed_is_an_error_not_a_hang() {
    let row = r#"<table:table-row><table:table-cell office:value-type="string"><text:p>Title</text:p></table:table-cell></table:table-row>"#;
    let closed = ods_with_content(&format!("{}{ODS_END}", ods_table(row)));
    let (headers, _) = read_all(&bytes_input("ok.ods", &closed), &opts());
    assert_eq!(headers, ["Title"]);
    let open = ods_with_content(&ods_table(row));
    let err = open_err(&bytes_input("open.ods", &open), &opts());
    assert_eq!(
        err,
        "cannot read open.ods as a workbook (Ods error: Expecting 'table:table' node, found end of xml file); it may be damaged, truncated or of another type than its extension says: open it in Excel or LibreOffice and save a fresh copy"
    );
}

/// Found while fuzzing: empty rows repeated between two values built up to 100 million
/// cells (3 GB) before calamine's cap; the area is now refused before it is built.
#[test]
fn fuzz_ods_repeated_rows_are_refused_before_they_are_built() {
    let value = r#"<table:table-row><table:table-cell table:number-columns-repeated="200" office:value-type="string"><text:p>x</text:p></table:table-cell></table:table-row>"#;
    let empty = r#"<table:table-row table:number-rows-repeated="1000000"><table:table-cell table:number-columns-repeated="200"/></table:table-row>"#;
    let ods = ods_with_content(&format!("{}{ODS_END}", ods_table(&format!("{value}{empty}{value}"))));
    let wide = SourceOptions {
        max_columns: 16_384,
        ..opts()
    };
    assert_eq!(
        open_err(&bytes_input("repeats.ods", &ods), &wide),
        "repeats.ods: its sheets span 200000400 cells (from each sheet's first value to its last), over the 4000000 this tool reads from an .xls or .ods file; delete the stray cells or repeated rows far below or right of the tables (Ctrl+End goes to the last cell), or save it as .xlsx, which is read without this limit"
    );
}

/// The inputs kept in `fuzz/corpus/workbook/regression-*` (the fuzz target's first byte
/// picks the format) read to an answer, as the tests above hold each to its own.
#[test]
fn fuzz_regression_inputs_read_to_an_answer() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/workbook");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.file_name().unwrap().to_string_lossy().starts_with("regression-") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let name = match data[0] {
            b'l' => "fuzz.xls",
            b'o' => "fuzz.ods",
            b'b' => "fuzz.xlsb",
            _ => "fuzz.xlsx",
        };
        let _ = open_source(&bytes_input(name, &data[1..]), &opts());
        seen += 1;
    }
    assert_eq!(seen, 4);
}

/// Found while fuzzing: a `Dimensions` record claiming every row of BIFF8's 32-bit range
/// made calamine reserve room for billions of cells before reading one.
#[test]
fn fuzz_an_xls_claiming_billions_of_cells_reads_the_cells_there() {
    let mut data = std::fs::read(fixture_path("libreoffice.xls")).unwrap();
    let record = data.windows(4).position(|w| w == [0x00, 0x02, 0x0E, 0x00]).unwrap();
    // The last row (the 4 bytes after the first row) becomes u32::MAX.
    data[record + 8..record + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let (headers, rows) = read_all(&bytes_input("claims.xls", &data), &opts());
    assert_eq!(headers, ["Title", "Start", "End", "Labels", "Cases"]);
    assert_eq!(rows.len(), 2);
}

/// Found while fuzzing: a sector chain that loops made calamine grow one buffer until
/// the allocation failed (gigabytes); a chain longer than the file is now an error.
#[test]
fn fuzz_an_xls_whose_sector_chain_loops_is_refused() {
    let mut data =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/libreoffice.xls")).unwrap();
    let u32_at = |data: &[u8], at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
    let sector_size = 1 << u16::from_le_bytes([data[0x1E], data[0x1F]]);
    let (dir_start, first_fat) = (u32_at(&data, 0x30), u32_at(&data, 0x4C));
    // The directory's first sector names itself as the next one.
    let entry = (first_fat + 1) * sector_size + dir_start * 4;
    data[entry..entry + 4].copy_from_slice(&(dir_start as u32).to_le_bytes());
    let err = open_err(&bytes_input("loop.xls", &data), &opts());
    assert!(err.contains("Sector chain loops back to sector"), "{err}");
}

#[test]
fn an_ole_file_named_xlsx_is_explained() {
    let mut data = OLE_MAGIC.to_vec();
    data.resize(2048, 0);
    let err = open_err(&bytes_input("locked.xlsx", &data), &opts());
    assert_eq!(
        err,
        "cannot read locked.xlsx as a workbook (it is an OLE file, as .xls and password-protected workbooks are, not a zip package); it may be damaged, truncated or of another type than its extension says: open it in Excel or LibreOffice and save a fresh copy"
    );
}

#[test]
fn limits_apply_to_workbooks() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_xlsx(&dir, "wide.xlsx", |workbook| {
        let sheet = workbook.add_worksheet();
        for column in 0..4 {
            sheet.write_string(0, column, format!("H{column}")).unwrap();
        }
        sheet.write_string(1, 0, "123456").unwrap();
        sheet.write_string(2, 0, "ok").unwrap();
    });
    let narrow = SourceOptions {
        max_columns: 3,
        ..opts()
    };
    assert_eq!(
        open_err(&input, &narrow),
        format!(
            "{}: row 1 has 4 columns, over the limit of 3; delete the unused columns or raise --max-columns",
            input.display_name()
        )
    );
    let small = SourceOptions {
        max_cell_bytes: 5,
        ..opts()
    };
    let mut source = open_source(&input, &small).unwrap();
    let mut row = SourceRow::default();
    let err = source.next_row(&mut row).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: cell A2 (`H0`) holds 6 bytes, over the limit of 5; shorten it or raise --max-cell-bytes",
            input.display_name()
        )
    );
    assert!(source.next_row(&mut row).unwrap());
    assert_eq!((row.number, row.cell(0).unwrap()), (3, text("ok")));
}

/// Found while fuzzing: calamine sized the range from the cells' bounding box, so one
/// stray value far out asked for billions of cells; streamed, cells far apart cost nothing,
/// and a value right of the headers is under no header.
#[test]
fn cells_far_apart_read_as_they_are_and_a_stray_far_right_is_no_column() {
    let dir = tempfile::tempdir().unwrap();
    let far = write_xlsx(&dir, "far.xlsx", |workbook| {
        let sheet = workbook.add_worksheet();
        sheet.write_string(0, 0, "Title").unwrap();
        sheet.write_string(0, 63, "Labels").unwrap();
        sheet.write_string(1_048_575, 0, "Last row").unwrap();
        sheet.write_string(1_048_575, 16_383, "x").unwrap();
    });
    let (headers, rows) = read_all(&far, &opts());
    assert_eq!(
        (headers.len(), &headers[0][..], &headers[63][..]),
        (64, "Title", "Labels")
    );
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].number, rows[0].cell(0)), (1_048_576, Some(text("Last row"))));
    assert!(rows[0].cells().skip(1).all(|cell| cell == Cell::Empty));
}

/// An .xls read whole: a value far from the others would make calamine's dense range
/// rows × columns cells, so the workbook is refused before it is built.
#[test]
fn an_xls_value_far_out_is_refused_naming_the_limit() {
    let mut data = std::fs::read(fixture_path("libreoffice.xls")).unwrap();
    // The first LabelSst record (0x00FD, 10 bytes): its cell moves to IV65536.
    let record = data.windows(4).position(|w| w == [0xFD, 0x00, 0x0A, 0x00]).unwrap();
    data[record + 4..record + 8].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0x00]);
    assert_eq!(
        open_err(&bytes_input("far.xls", &data), &opts()),
        format!(
            "far.xls: its sheets span {} cells (from each sheet's first value to its last), over the 4000000 this tool reads from an .xls or .ods file; delete the stray cells or repeated rows far below or right of the tables (Ctrl+End goes to the last cell), or save it as .xlsx, which is read without this limit",
            65_536 * 256
        )
    );
}

#[test]
fn rewind_gives_the_same_rows_again() {
    for file in ["libreoffice.xls", "openpyxl-1904-dates.xlsx"] {
        let input = fixture(file);
        let mut source = open_source(&input, &opts()).unwrap();
        let mut row = SourceRow::default();
        // A rewind halfway through, then two whole readings.
        assert!(source.next_row(&mut row).unwrap(), "{file}");
        source.rewind().unwrap();
        let mut drain = || {
            let mut rows = Vec::new();
            while source.next_row(&mut row).unwrap() {
                rows.push(row.clone());
            }
            source.rewind().unwrap();
            rows
        };
        let first = drain();
        assert_eq!(first.len(), 2, "{file}");
        assert_eq!(first[0].number, 2, "{file}");
        assert_eq!(drain(), first, "{file}");
    }
}

#[test]
fn an_empty_sheet_has_no_headers() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_xlsx(&dir, "empty.xlsx", |workbook| {
        workbook.add_worksheet();
    });
    let (headers, rows) = read_all(&input, &opts());
    assert!(headers.is_empty());
    assert!(rows.is_empty());
}

/// `data`, a zip package, with the part `name` rewritten by `edit` (every part stored).
fn rewrite_part(data: Vec<u8>, name: &str, edit: impl Fn(String) -> String) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut archive = zip::ZipArchive::new(Cursor::new(data)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..archive.len() {
        let mut part = archive.by_index(i).unwrap();
        let part_name = part.name().unwrap().into_owned();
        let mut bytes = Vec::new();
        part.read_to_end(&mut bytes).unwrap();
        if part_name == name {
            bytes = edit(String::from_utf8(bytes).unwrap()).into_bytes();
        }
        out.start_file(part_name, stored).unwrap();
        out.write_all(&bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// A shared strings table claiming a trillion strings made calamine reserve room for them
/// all, and the failed allocation aborted the process.
#[test]
fn a_shared_strings_table_claiming_a_trillion_strings_reads_the_ones_there() {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "Title").unwrap();
    sheet.write_string(1, 0, "Only run").unwrap();
    let data = rewrite_part(workbook.save_to_buffer().unwrap(), "xl/sharedStrings.xml", |xml| {
        assert!(xml.contains(r#"uniqueCount="2""#), "{xml}");
        xml.replace(r#"uniqueCount="2""#, r#"uniqueCount="999999999999""#)
    });
    let (headers, rows) = read_all(&bytes_input("claims.xlsx", &data), &opts());
    assert_eq!(headers, ["Title"]);
    assert_eq!(rows, [SourceRow::new(2, &[text("Only run")])]);
}
