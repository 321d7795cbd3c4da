//! End-to-end tests of reading: real files of every kind (Excel's CP-1252 CSV, BOM'd
//! CSV, xlsx from rust_xlsxwriter and openpyxl, LibreOffice ods/xls, the samples, stdin)
//! through the real binary in `--dry-run`, asserting the exact request bodies in the
//! plan, the report's rows, the failed-rows file and the messages on stderr.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
use serde_json::{Value, json};

mod xlsb;

const PROJECT: &str = "c47ade67-0543-4582-a4a5-b7de447c94f5";
const OTHER_PROJECT: &str = "5e0f6a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b";
const CASE_A: &str = "9ac271b6-4e89-4c93-8c75-2d625efa0b2d";
const CASE_B: &str = "2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091";
const ASSIGNEE: &str = "cbbc40a5-26e9-4b88-8c27-3626c9fbdaa4";
const ENVIRONMENT: &str = "d2a1f3c4-5b6e-4f70-8a9b-0c1d2e3f4a5b";

const REPORT_HEADER: [&str; 10] = [
    "row",
    "outcome",
    "test_run_id",
    "test_run_human_id",
    "title",
    "human_id",
    "http_status",
    "attempts",
    "error",
    "request_id",
];

/// A scratch directory the binary runs in, so default files land there too.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        Work {
            dir: tempfile::tempdir().expect("a temp dir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn create(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write a test file");
        path
    }

    /// Copies `tests/fixtures/NAME` (or `samples/NAME`) into the work dir.
    fn copy(&self, from: &str, name: &str) -> PathBuf {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(from).join(name);
        let bytes = std::fs::read(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        self.create(name, bytes)
    }

    fn fixture(&self, name: &str) -> PathBuf {
        self.copy("tests/fixtures", name)
    }

    fn sample(&self, name: &str) -> PathBuf {
        self.copy("samples", name)
    }

    /// The binary, in the work dir, with no Testsigma settings from the environment and
    /// a local zone far from UTC, so any use of the machine's `TZ` would show.
    fn command(&self) -> Command {
        let mut cmd = Command::cargo_bin("testsigma-import").expect("the binary");
        cmd.current_dir(self.dir.path())
            .env("XDG_STATE_HOME", self.dir.path().join(".state"))
            .env("CI", "true")
            .env("TZ", "Pacific/Chatham")
            .env_remove("TESTSIGMA_API_KEY")
            .env_remove("TESTSIGMA_PROJECT_ID")
            .env_remove("TESTSIGMA_BASE_URL");
        cmd
    }

    /// `import FILE --dry-run --plan plan.jsonl --report out.report.csv ARGS...`
    fn dry_run(&self, file: &str, args: &[&str]) -> Run {
        self.dry_run_with_stdin(file, args, None)
    }

    fn dry_run_with_stdin(&self, file: &str, args: &[&str], stdin: Option<Vec<u8>>) -> Run {
        // A plan from an earlier run in the same dir must not pass for this one's.
        for stale in ["plan.jsonl", "out.report.csv", "out.failed.csv"] {
            let _ = std::fs::remove_file(self.path(stale));
        }
        let mut cmd = self.command();
        cmd.args([
            "import",
            file,
            "--dry-run",
            "--plan",
            "plan.jsonl",
            "--report",
            "out.report.csv",
        ])
        .args(args);
        if let Some(bytes) = stdin {
            cmd.write_stdin(bytes);
        }
        let output = cmd.output().expect("run the binary");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            dir: self.dir.path().to_path_buf(),
        }
    }
}

/// One finished run of the binary.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    dir: PathBuf,
}

impl Run {
    fn assert_code(&self, want: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(want),
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    fn plan_text(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("plan.jsonl")).ok()
    }

    /// Every plan line as `(row, body)`, after checking the method and that the path
    /// names the body's project.
    fn bodies(&self) -> Vec<(u64, Value)> {
        let text = self
            .plan_text()
            .unwrap_or_else(|| panic!("no plan written\n{}", self.stderr));
        text.lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("plan line {line}: {e}"));
                assert_eq!(v["method"], "POST", "{line}");
                let project = v["body"]["project_id"].as_str().expect("project_id in the body");
                assert_eq!(v["path"], format!("/projects/{project}/test_runs"), "{line}");
                (v["row"].as_u64().expect("row"), v["body"].clone())
            })
            .collect()
    }

    /// The report's rows, after checking its header is the contract's.
    fn report(&self) -> Vec<Vec<String>> {
        read_csv(&self.dir.join("out.report.csv"), &REPORT_HEADER)
    }

    /// Each planned row's number and `start_date`.
    fn starts(&self) -> Vec<(u64, Value)> {
        self.bodies()
            .into_iter()
            .map(|(row, b)| (row, b["start_date"].clone()))
            .collect()
    }

    /// The `invalid:` lines on stderr.
    fn invalid_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with("invalid: ")).collect()
    }
}

/// Every record of a CSV file, its header first.
fn read_records(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader
        .records()
        .map(|r| {
            r.unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .iter()
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// The records of a CSV file below its header, which must be `header`.
fn read_csv(path: &Path, header: &[&str]) -> Vec<Vec<String>> {
    let mut records = read_records(path);
    assert!(!records.is_empty(), "{} is empty", path.display());
    assert_eq!(records[0], header, "{}", path.display());
    records.split_off(1)
}

/// A report row for a planned row: `row,planned,,,title,human_id,,0,,`.
fn planned(row: u32, title: &str, human_id: &str) -> Vec<String> {
    let row = row.to_string();
    [row.as_str(), "planned", "", "", title, human_id, "", "0", "", ""]
        .map(str::to_owned)
        .to_vec()
}

fn cases(values: &[&str]) -> Value {
    json!([{ "field": "id", "operator": "IN", "values": values }])
}

#[test]
fn excel_semicolon_cp1252_csv_reads_with_encoding_and_zone() {
    let w = Work::new();
    w.fixture("excel-semicolon-cp1252.csv");
    let run = w.dry_run(
        "excel-semicolon-cp1252.csv",
        &[
            "--column",
            "title=Titel / Title",
            "--encoding",
            "windows-1252",
            "--timezone",
            "Europe/Berlin",
            "--project-id",
            PROJECT,
        ],
    );
    run.assert_code(0);
    assert_eq!(
        run.bodies(),
        vec![
            (
                2,
                json!({
                    "title": "Régression mensuelle",
                    "description": "Périmètre: paiement; facturation",
                    "status": "ACTIVE",
                    "project_id": PROJECT,
                    "selection_type": "STATIC",
                    "static_selection_filters": cases(&[CASE_A]),
                    // 2024-02-05 (whole day, so 00:00) and 2024-02-09 17:00 in Berlin.
                    "start_date": 1707087600,
                    "end_date": 1707494400,
                    "label_names": ["Régression", "Mensuel"],
                    "environment_ids": [],
                })
            ),
            (
                3,
                json!({
                    "title": "Smoke — build 812",
                    "status": "ACTIVE",
                    "project_id": PROJECT,
                    "selection_type": "STATIC",
                    "static_selection_filters": cases(&[CASE_A, CASE_B]),
                    "start_date": 1707807600,
                    "end_date": 1707822000,
                    "label_names": ["Smoke"],
                    "environment_ids": [],
                })
            ),
        ]
    );
    assert_eq!(
        run.report(),
        [
            planned(2, "Régression mensuelle", ""),
            planned(3, "Smoke — build 812", "")
        ]
    );
    assert!(run.invalid_lines().is_empty(), "{}", run.stderr);
}

#[test]
fn cp1252_csv_without_encoding_is_a_setup_error_naming_the_flag() {
    let w = Work::new();
    w.fixture("excel-semicolon-cp1252.csv");
    let run = w.dry_run(
        "excel-semicolon-cp1252.csv",
        &[
            "--column",
            "title=Titel / Title",
            "--timezone",
            "Europe/Berlin",
            "--project-id",
            PROJECT,
        ],
    );
    run.assert_code(2);
    assert!(run.stderr.contains("--encoding windows-1252"), "{}", run.stderr);
    assert_eq!(run.plan_text().unwrap_or_default(), "");
}

/// A nightly config that reads its exports as windows-1252 reads the failed-rows file with
/// the same settings: the file keeps the input's `;` and carries a UTF-8 byte-order mark,
/// which wins over `encoding`, so accented text comes back as it went out.
#[test]
fn failed_rows_of_a_cp1252_file_import_back_under_the_same_config() {
    let w = Work::new();
    let fixture = std::fs::read(w.fixture("excel-semicolon-cp1252.csv")).expect("the fixture");
    // `Open` is no status, so row 2 (and its accents) goes to the failed-rows file.
    let at = fixture
        .windows(8)
        .position(|bytes| bytes == b";Active;")
        .expect("row 2's status is Active");
    let bytes = [&fixture[..at], b";Open;", &fixture[at + 8..]].concat();
    w.create("runs.csv", &bytes);
    w.create(
        "testsigma-import.toml",
        format!(
            "encoding = \"windows-1252\"\ntimezone = \"Europe/Berlin\"\nproject-id = \"{PROJECT}\"\n[columns]\ntitle = \"Titel / Title\"\n"
        ),
    );
    w.dry_run("runs.csv", &[]).assert_code(3);

    let failed = std::fs::read(w.path("out.failed.csv")).expect("the failed-rows file");
    assert!(failed.starts_with(b"\xEF\xBB\xBF"), "no byte-order mark: {failed:?}");
    let failed = String::from_utf8(failed).expect("UTF-8");
    assert!(failed.contains(";Open;"), "not in the input's delimiter: {failed}");
    w.create("fixed.csv", failed.replace(";Open;", ";Active;"));

    let run = w.dry_run("fixed.csv", &[]);
    run.assert_code(0);
    let bodies = run.bodies();
    assert_eq!(bodies.len(), 1, "{}", run.stderr);
    assert_eq!(bodies[0].1["title"], "Régression mensuelle");
    assert_eq!(bodies[0].1["description"], "Périmètre: paiement; facturation");
    assert_eq!(bodies[0].1["label_names"], json!(["Régression", "Mensuel"]));
    assert_eq!(bodies[0].1["start_date"], 1707087600);
}

#[test]
fn bom_csv_with_quoted_comma_and_newline_and_crlf() {
    // The same table in each encoding whose BOM says what it is; Title is the first
    // header, so a BOM left on it would leave the file without a title column.
    let text = "Title,Description,Labels,Start,End\r\n\
                \"Run, one\",\"line one\nline, two\",\"a, b\",2024-03-17 09:30,2024-03-18\r\n\
                Run 2,,,,\r\n";
    let utf16 = |le: bool| -> Vec<u8> {
        let bom: u16 = 0xFEFF;
        std::iter::once(bom)
            .chain(text.encode_utf16())
            .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
            .collect()
    };
    let encodings: [(&str, Vec<u8>); 3] = [
        ("utf-8", [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat()),
        ("utf-16le", utf16(true)),
        ("utf-16be", utf16(false)),
    ];
    for (encoding, bytes) in encodings {
        let w = Work::new();
        w.create("bom.csv", bytes);
        let run = w.dry_run("bom.csv", &["--project-id", PROJECT]);
        run.assert_code(0);
        assert!(!run.stderr.contains("warning"), "{encoding}: {}", run.stderr);
        assert_eq!(
            run.bodies(),
            vec![
                (
                    2,
                    json!({
                        "title": "Run, one",
                        "description": "line one\nline, two",
                        "status": "ACTIVE",
                        "project_id": PROJECT,
                        "selection_type": "STATIC",
                        "static_selection_filters": [],
                        "start_date": 1710667800,
                        "end_date": 1710806399,
                        "label_names": ["a", "b"],
                        "environment_ids": [],
                    })
                ),
                (
                    3,
                    json!({
                        "title": "Run 2",
                        "status": "ACTIVE",
                        "project_id": PROJECT,
                        "selection_type": "STATIC",
                        "static_selection_filters": [],
                        "label_names": [],
                        "environment_ids": [],
                    })
                ),
            ],
            "{encoding}"
        );
        assert_eq!(
            run.report(),
            [planned(2, "Run, one", ""), planned(3, "Run 2", "")],
            "{encoding}"
        );
    }
}

/// A workbook as people make them: a notes sheet first, a title line above the
/// headers, real date cells (some at midnight with a date-only format), numeric keys.
fn write_runs_workbook(path: &Path) {
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let date_time = Format::new().set_num_format("dd/mm/yyyy hh:mm");
    let day = |y: u16, m: u8, d: u8| ExcelDateTime::from_ymd(y, m, d).expect("a date");
    let at = |y: u16, m: u8, d: u8, h: u16, min: u8| day(y, m, d).and_hms(h, min, 0).expect("a time");

    let mut workbook = Workbook::new();
    let notes = workbook.add_worksheet();
    notes.set_name("Notes").expect("sheet name");
    notes.write_string(0, 0, "Read me first").expect("write");
    notes
        .write_string(1, 0, "The runs are on the next sheet")
        .expect("write");

    let runs = workbook.add_worksheet();
    runs.set_name("Runs").expect("sheet name");
    runs.write_string(0, 0, "Sprint 42 — test runs").expect("write");
    for (column, header) in ["Title", "Human ID", "Start", "End", "Status", "Labels", "Cases"]
        .into_iter()
        .enumerate()
    {
        runs.write_string(1, column as u16, header).expect("write");
    }
    // Row 3.
    runs.write_string(2, 0, "Checkout flow").expect("write");
    runs.write_number(2, 1, 42).expect("write");
    runs.write_datetime_with_format(2, 2, at(2024, 7, 1, 9, 0), &date_time)
        .expect("write");
    runs.write_datetime_with_format(2, 3, day(2024, 7, 3), &date)
        .expect("write");
    runs.write_string(2, 4, "Active").expect("write");
    runs.write_string(2, 5, "web; checkout").expect("write");
    runs.write_string(2, 6, CASE_A).expect("write");
    // Row 4.
    runs.write_string(3, 0, "Search").expect("write");
    runs.write_number(3, 1, 43).expect("write");
    runs.write_datetime_with_format(3, 2, day(2024, 7, 8), &date)
        .expect("write");
    runs.write_datetime_with_format(3, 3, at(2024, 7, 9, 18, 30), &date_time)
        .expect("write");
    // Row 5: a bad status in E5.
    runs.write_string(4, 0, "Bad status").expect("write");
    runs.write_number(4, 1, 44).expect("write");
    runs.write_datetime_with_format(4, 2, day(2024, 7, 10), &date)
        .expect("write");
    runs.write_datetime_with_format(4, 3, day(2024, 7, 12), &date)
        .expect("write");
    runs.write_string(4, 4, "OPEN").expect("write");
    // Row 6: text that is no date in C6.
    runs.write_string(5, 0, "Bad start").expect("write");
    runs.write_number(5, 1, 45).expect("write");
    runs.write_string(5, 2, "next week").expect("write");

    workbook.save(path).expect("save the workbook");
}

#[test]
fn xlsx_second_sheet_header_row_two_date_cells_and_numeric_keys() {
    let w = Work::new();
    write_runs_workbook(&w.path("runs.xlsx"));
    let run = w.dry_run(
        "runs.xlsx",
        &[
            "--sheet",
            "Runs",
            "--header-row",
            "2",
            "--timezone",
            "Europe/Berlin",
            "--project-id",
            PROJECT,
        ],
    );
    run.assert_code(3);
    assert_eq!(
        run.bodies(),
        vec![
            (
                3,
                json!({
                    "title": "Checkout flow",
                    "status": "ACTIVE",
                    "project_id": PROJECT,
                    "human_id": "42",
                    "selection_type": "STATIC",
                    "static_selection_filters": cases(&[CASE_A]),
                    // 2024-07-01 09:00 and the whole of 2024-07-03, in Berlin (UTC+2).
                    "start_date": 1719817200,
                    "end_date": 1720043999,
                    "label_names": ["web", "checkout"],
                    "environment_ids": [],
                })
            ),
            (
                4,
                json!({
                    "title": "Search",
                    "status": "ACTIVE",
                    "project_id": PROJECT,
                    "human_id": "43",
                    "selection_type": "STATIC",
                    "static_selection_filters": [],
                    // From 2024-07-08 00:00 to 2024-07-09 18:30, in Berlin.
                    "start_date": 1720389600,
                    "end_date": 1720542600,
                    "label_names": [],
                    "environment_ids": [],
                })
            ),
        ]
    );
    let invalid = run.invalid_lines();
    assert_eq!(invalid.len(), 2, "{}", run.stderr);
    assert_eq!(
        invalid[0],
        "invalid: row 5, column `Status` (E5): `OPEN`: status must be ACTIVE or CLOSED (map other words in [values.status])"
    );
    assert!(
        invalid[1].starts_with("invalid: row 6, column `Start` (C6): `next week` is not a date"),
        "{}",
        invalid[1]
    );
    let report = run.report();
    assert_eq!(report.len(), 4);
    assert_eq!(report[0], planned(3, "Checkout flow", "42"));
    assert_eq!(report[1], planned(4, "Search", "43"));
    for (line, (row, title, key)) in report[2..]
        .iter()
        .zip([("5", "Bad status", "44"), ("6", "Bad start", "45")])
    {
        assert_eq!(
            (line[0].as_str(), line[1].as_str(), line[4].as_str(), line[5].as_str()),
            (row, "invalid", title, key)
        );
    }
    assert_eq!(
        report[2][8],
        "Status (E5): `OPEN`: status must be ACTIVE or CLOSED (map other words in [values.status])"
    );
    assert!(report[3][8].starts_with("Start (C6): "), "{:?}", report[3]);
}

#[test]
fn openpyxl_1904_workbook_keeps_its_epoch() {
    let w = Work::new();
    w.fixture("openpyxl-1904-dates.xlsx");
    let run = w.dry_run(
        "openpyxl-1904-dates.xlsx",
        &["--sheet", "Runs", "--project-id", PROJECT],
    );
    run.assert_code(0);
    assert_eq!(
        run.bodies(),
        vec![
            (
                2,
                json!({
                    "title": "Checkout flow",
                    "status": "ACTIVE",
                    "project_id": PROJECT,
                    "human_id": "42",
                    "selection_type": "STATIC",
                    "static_selection_filters": [],
                    "start_date": 1719824400,
                    "end_date": 1720029600,
                    "label_names": ["web", "checkout"],
                    "environment_ids": [],
                })
            ),
            (
                3,
                json!({
                    "title": "Search",
                    "status": "ACTIVE",
                    "project_id": PROJECT,
                    "human_id": "43",
                    "selection_type": "STATIC",
                    "static_selection_filters": [],
                    // Midnight date cells count as dates without a time.
                    "start_date": 1720396800,
                    "end_date": 1720569599,
                    "label_names": ["web"],
                    "environment_ids": [],
                })
            ),
        ]
    );
    assert_eq!(
        run.report(),
        [planned(2, "Checkout flow", "42"), planned(3, "Search", "43")]
    );
}

/// calamine 0.38.0 read an XLSB formula cell whose cached result is an error as empty, so
/// row 13 of this public file (only `A13 = #VALUE!`) vanished from the report.
#[test]
fn xlsb_formula_errors_make_their_rows_invalid() {
    let w = Work::new();
    let file = "apachepoi_FormulaEvalTestData.xls.xlsb";
    w.copy("tests/fixtures/corpus", file);
    let run = w.dry_run(
        file,
        &["--project-id", PROJECT, "--sheet", "misc", "--column", "title=string"],
    );
    run.assert_code(3);
    for (row, code) in [(8, "#NUM!"), (13, "#VALUE!")] {
        let line = format!(
            "invalid: row {row}, column `string` (A{row}): `{code}`: the cell holds a spreadsheet error; put any non-empty text (required) there"
        );
        assert!(run.invalid_lines().contains(&line.as_str()), "{}", run.stderr);
    }
    let report = run.report();
    let outcomes: Vec<(&str, &str)> = report.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
    assert!(outcomes.contains(&("13", "invalid")), "{outcomes:?}");
}

#[test]
fn libreoffice_error_cells_are_invalid_in_ods_as_in_xls() {
    for file in ["libreoffice-errors.ods", "libreoffice-errors.xls"] {
        let w = Work::new();
        w.fixture(file);
        let run = w.dry_run(file, &["--project-id", PROJECT]);
        // Every row holds an error cell, so every row is invalid: exit 3.
        run.assert_code(3);
        let problems: Vec<(&str, &str)> = run
            .invalid_lines()
            .into_iter()
            .map(|line| {
                let (at, why) = line.split_once("): ").expect("a cell and a reason");
                (at, why)
            })
            .collect();
        let cells: Vec<&str> = problems.iter().map(|(at, _)| *at).collect();
        assert_eq!(
            cells,
            [
                "invalid: row 2, column `Title` (A2",
                "invalid: row 2, column `Human ID` (B2",
                "invalid: row 3, column `Title` (A3",
                "invalid: row 3, column `Start` (D3",
                "invalid: row 4, column `Human ID` (B4",
            ],
            "{file}: {}",
            run.stderr
        );
        assert!(
            problems
                .iter()
                .all(|(_, why)| why.contains("the cell holds a spreadsheet error")),
            "{file}: {}",
            run.stderr
        );
        let report = run.report();
        let outcomes: Vec<(&str, &str)> = report.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
        assert_eq!(
            outcomes,
            [("2", "invalid"), ("3", "invalid"), ("4", "invalid")],
            "{file}"
        );
    }
}

#[test]
fn libreoffice_ods_and_xls_give_the_same_plan() {
    for file in ["libreoffice.ods", "libreoffice.xls"] {
        let w = Work::new();
        w.fixture(file);
        let run = w.dry_run(file, &["--sheet", "Plan", "--project-id", PROJECT]);
        run.assert_code(0);
        assert_eq!(
            run.bodies(),
            vec![
                (
                    2,
                    json!({
                        "title": "Release candidate",
                        "status": "ACTIVE",
                        "project_id": PROJECT,
                        "selection_type": "STATIC",
                        "static_selection_filters": cases(&[CASE_B]),
                        "start_date": 1725271200,
                        "end_date": 1725638400,
                        "label_names": ["Release", "RC"],
                        "environment_ids": [],
                    })
                ),
                (
                    3,
                    json!({
                        "title": "Accessibility pass",
                        "status": "ACTIVE",
                        "project_id": PROJECT,
                        "selection_type": "STATIC",
                        "static_selection_filters": [],
                        "start_date": 1725840000,
                        "label_names": ["a11y"],
                        "environment_ids": [],
                    })
                ),
            ],
            "{file}"
        );
        assert_eq!(
            run.report(),
            [
                planned(2, "Release candidate", ""),
                planned(3, "Accessibility pass", "")
            ],
            "{file}"
        );
    }
}

#[test]
fn mistakes_csv_reports_every_problem_once() {
    let w = Work::new();
    w.sample("mistakes.csv");
    let run = w.dry_run("mistakes.csv", &[]);
    run.assert_code(3);

    // (row, column, bad value, a word of what would be accepted)
    let want: [(u32, &str, Option<&str>, &str); 10] = [
        (3, "Title", None, "title is required"),
        (4, "Status", Some("OPEN"), "ACTIVE or CLOSED"),
        (5, "Project", Some("project-42"), "UUID"),
        (6, "Test Cases", Some("case 17"), "UUID"),
        (7, "Start Date", Some("2026-02-30"), "not a real date"),
        (8, "Start Date", Some("next Tuesday"), "accepted"),
        (9, "End Date", Some("2026-12-02"), "before the start"),
        (10, "Key", Some("OK-1"), "row 2"),
        (11, "Assignee", Some("bob"), "e-mail"),
        (12, "End Date", Some("12/02/26"), "year in full"),
    ];
    let invalid = run.invalid_lines();
    assert_eq!(invalid.len(), want.len(), "{}", run.stderr);
    for (line, (row, column, value, accepted)) in invalid.iter().zip(want) {
        let prefix = format!("invalid: row {row}, column `{column}`: ");
        assert!(line.starts_with(&prefix), "want {prefix:?}, got {line}");
        if let Some(value) = value {
            assert!(line.contains(&format!("`{value}`")), "{line}");
        }
        assert!(line.contains(accepted), "{line}");
    }

    assert_eq!(
        run.bodies(),
        vec![(
            2,
            json!({
                "title": "Good row",
                "status": "ACTIVE",
                "project_id": PROJECT,
                "human_id": "OK-1",
                "selection_type": "STATIC",
                "static_selection_filters": cases(&[CASE_A]),
                // 2026-12-01 00:00:00 to 2026-12-02 23:59:59 UTC.
                "start_date": 1796083200,
                "end_date": 1796255999,
                "label_names": ["Smoke"],
                "environment_ids": [],
            })
        )]
    );

    let report = run.report();
    let summary: Vec<(&str, &str, &str, &str)> = report
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str(), r[4].as_str(), r[5].as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("2", "planned", "Good row", "OK-1"),
            ("3", "invalid", "", "BAD-1"),
            ("4", "invalid", "Unknown status", "BAD-2"),
            ("5", "invalid", "Bad project", "BAD-3"),
            ("6", "invalid", "Bad test case", "BAD-4"),
            ("7", "invalid", "Impossible date", "BAD-5"),
            ("8", "invalid", "Not a date", "BAD-6"),
            ("9", "invalid", "Ends before it starts", "BAD-7"),
            ("10", "invalid", "Duplicate key", "OK-1"),
            ("11", "invalid", "Bad assignee", "BAD-9"),
            ("12", "invalid", "Two-digit year", "BAD-10"),
        ]
    );
    for (line, (_, column, _, _)) in report[1..].iter().zip(want) {
        assert!(line[8].starts_with(&format!("{column}: ")), "{line:?}");
        assert_eq!((line[2].as_str(), line[3].as_str(), line[6].as_str()), ("", "", ""));
    }

    // The failed-rows file: the original header and cells, plus the error, ready to fix
    // and import again.
    let original = read_records(&w.path("mistakes.csv"));
    let mut header = original[0].clone();
    let failed = read_records(&w.path("out.failed.csv"));
    header.push("error".to_owned());
    assert_eq!(failed[0], header);
    let failed = &failed[1..];
    assert_eq!(failed.len(), 10);
    for ((got, source), (line, _)) in failed.iter().zip(&original[2..]).zip(report[1..].iter().zip(want)) {
        assert_eq!(got[..source.len()], source[..]);
        assert_eq!(got[source.len()], line[8]);
    }
}

#[test]
fn sample_test_runs_plan_and_stdin_gives_the_same_plan() {
    let w = Work::new();
    w.sample("test-runs.csv");
    let run = w.dry_run("test-runs.csv", &[]);
    run.assert_code(0);
    let bodies = run.bodies();
    let rows: Vec<u64> = bodies.iter().map(|(row, _)| *row).collect();
    assert_eq!(rows, (2..=13).collect::<Vec<u64>>());

    // Every date form of the sample, and the day order learnt from its columns.
    let dates: Vec<(u64, Value, Value)> = bodies
        .iter()
        .map(|(row, b)| (*row, b["start_date"].clone(), b["end_date"].clone()))
        .collect();
    let want = [
        (2, 1796083200, 1796428799), // 2026-12-01 .. 2026-12-04 (whole days)
        (3, 1796115600, 1796126400), // 2026-12-01 09:00 .. 12:00
        (4, 1797323400, 1797638399), // 15/12/2026 08:30 .. 18/12/2026
        (5, 1796169600, 1797033599), // 02/12/2026 (dmy, from the column) .. Dec 11 2026
        (6, 1795816800, 1795831200), // Z
        (7, 1796292000, 1796947199), // 3 Dec 2026 10:00 .. 10 Dec 2026
        (8, 1796292000, 1796947199),
        (9, 1796626800, 1796659200),  // +01:00
        (10, 1796112000, 1796198399), // Unix seconds
        (11, 1796709600, 1796860799), // RFC 2822 .. 2026-12-09
        (12, 1797206400, 1797465599),
        (13, 1797811200, 1798070399), // 21/12/2026 .. 23/12/2026
    ]
    .map(|(row, start, end)| (row, json!(start), json!(end)));
    assert_eq!(dates, want);

    assert_eq!(
        bodies[2].1,
        json!({
            "title": "Payments sign-off",
            "description": "Scope: card, SEPA and invoice payments.\nBlockers go to #payments, not here.",
            "status": "ACTIVE",
            "project_id": PROJECT,
            "human_id": "PAY-2026-12",
            "selection_type": "STATIC",
            "static_selection_filters": cases(&[CASE_B, CASE_A]),
            "start_date": 1797323400,
            "end_date": 1797638399,
            "label_names": ["Payments", "Release"],
            "environment_ids": [],
        })
    );
    assert_eq!(
        bodies[1].1,
        json!({
            "title": "Smoke — build 812",
            "status": "ACTIVE",
            "project_id": PROJECT,
            "human_id": "BUILD-812",
            "selection_type": "STATIC",
            "static_selection_filters": cases(&[CASE_A]),
            "start_date": 1796115600,
            "end_date": 1796126400,
            "label_names": ["Smoke"],
            "environment_ids": [ENVIRONMENT],
        })
    );
    assert_eq!(
        bodies[0].1,
        json!({
            "title": "Regression — patient portal",
            "description": "Executing regression test cases",
            "status": "ACTIVE",
            "project_id": PROJECT,
            "human_id": "PORTAL-R1",
            "selection_type": "STATIC",
            "static_selection_filters": cases(&[CASE_A, CASE_B]),
            "start_date": 1796083200,
            "end_date": 1796428799,
            "assignee_id": ASSIGNEE,
            "label_names": ["Regression", "Portal"],
            "environment_ids": [],
        })
    );
    let statuses: Vec<&str> = bodies.iter().map(|(_, b)| b["status"].as_str().unwrap_or("")).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "CLOSED").count(), 1);
    assert_eq!(statuses.iter().filter(|s| **s == "ACTIVE").count(), 11);

    // Offline, an e-mail assignee is shown as unresolved, outside the body.
    let plan = run.plan_text().unwrap_or_default();
    let row4: Value = serde_json::from_str(plan.lines().nth(2).unwrap_or("")).expect("plan line");
    assert_eq!(row4["unresolved"], json!({ "assignee_id": "ada@example.com" }));

    let report = run.report();
    assert_eq!(report.len(), 12);
    assert!(report.iter().all(|r| r[1] == "planned"), "{report:?}");

    let bytes = std::fs::read(w.path("test-runs.csv")).expect("the sample");
    let piped = w.dry_run_with_stdin("-", &[], Some(bytes));
    piped.assert_code(0);
    assert_eq!(piped.plan_text(), Some(plan));
    assert_eq!(piped.report(), report);
}

#[test]
fn ambiguous_day_month_needs_date_order() {
    let w = Work::new();
    w.create("runs.csv", "Title,Start\nA,03/04/2024\nB,05/06/2024\n");
    let run = w.dry_run("runs.csv", &["--project-id", PROJECT]);
    run.assert_code(3);
    assert!(run.stderr.contains("--date-order"), "{}", run.stderr);
    let invalid = run.invalid_lines();
    for row in [2, 3] {
        let line = invalid
            .iter()
            .find(|l| l.starts_with(&format!("invalid: row {row}, column `Start`: ")))
            .unwrap_or_else(|| panic!("no line for row {row}:\n{}", run.stderr));
        assert!(line.contains("--date-order dmy"), "{line}");
    }
    assert_eq!(run.plan_text().unwrap_or_default(), "");

    let run = w.dry_run("runs.csv", &["--project-id", PROJECT, "--date-order", "dmy"]);
    run.assert_code(0);
    let starts = run.starts();
    // 2024-04-03 and 2024-06-05, 00:00 UTC.
    assert_eq!(starts, [(2, json!(1712102400)), (3, json!(1717545600))]);
}

/// ISO 8601 basic date-times, as some tools export them: with `Z` or an offset they are
/// that instant, without one they are read in `--timezone`; they need no `--date-order`.
#[test]
fn iso_basic_dates_become_unix_times_in_the_plan() {
    let w = Work::new();
    w.create(
        "runs.csv",
        "Title,Start,Due\n\
         A,20240317T093000Z,20240317T1130+0100\n\
         B,20240317T0930,20240318T093000.500Z\n\
         C,20240317,20240317\n",
    );
    let run = w.dry_run("runs.csv", &["--project-id", PROJECT, "--timezone", "Europe/Berlin"]);
    run.assert_code(0);
    let dates: Vec<(u64, Value, Value)> = run
        .bodies()
        .into_iter()
        .map(|(row, b)| (row, b["start_date"].clone(), b["end_date"].clone()))
        .collect();
    assert_eq!(
        dates,
        [
            // 2024-03-17 09:30 UTC; 11:30 at +01:00 is 10:30 UTC.
            (2, json!(1_710_667_800), json!(1_710_671_400)),
            // 09:30 in Berlin (CET) is 08:30 UTC; the half second is floored away.
            (3, json!(1_710_664_200), json!(1_710_754_200)),
            // The basic date alone: that day in Berlin, 00:00:00 to 23:59:59.
            (4, json!(1_710_630_000), json!(1_710_716_399)),
        ]
    );
    assert!(run.invalid_lines().is_empty(), "{}", run.stderr);

    // An impossible basic date is named like any other, and the mixed form is refused.
    w.create(
        "bad.csv",
        "Title,Start\nA,20240230T0930\nB,20240317T09:30:00Z\nC,20240317T093000Z\n",
    );
    let run = w.dry_run("bad.csv", &["--project-id", PROJECT]);
    run.assert_code(3);
    let invalid = run.invalid_lines();
    assert_eq!(invalid.len(), 2, "{}", run.stderr);
    assert!(
        invalid[0].starts_with(
            "invalid: row 2, column `Start`: `20240230T0930` is not a real date: February 2024 has days 1 to 29, not 30"
        ),
        "{}",
        invalid[0]
    );
    assert!(
        invalid[1].starts_with("invalid: row 3, column `Start`: `20240317T09:30:00Z` is not a date I can read")
            && invalid[1].contains("`20240317T093000`"),
        "{}",
        invalid[1]
    );
    assert_eq!(run.starts(), [(4, json!(1_710_667_800))]);
}

/// An undecided column does not hide what the order would not change: a value that reads
/// the same either way stands, and one that is no date in either order gets its own error.
#[test]
fn an_undecided_column_still_reads_values_that_need_no_order_and_names_real_errors() {
    let w = Work::new();
    w.create(
        "runs.csv",
        "Title,Start\nA,03/04/2024\nB,05/05/2024\nC,2024-05-06\nD,31/31/2024\nE,24/03/04\n",
    );
    let run = w.dry_run("runs.csv", &["--project-id", PROJECT]);
    run.assert_code(3);
    let invalid = run.invalid_lines();
    let line = |row: usize| {
        invalid
            .iter()
            .find(|l| l.starts_with(&format!("invalid: row {row}, column `Start`: ")))
            .map(|l| l.to_string())
    };
    assert!(line(2).is_some_and(|l| l.contains("--date-order")), "{invalid:#?}");
    assert_eq!(line(3), None, "05/05/2024 is the same day either way: {invalid:#?}");
    assert_eq!(line(4), None, "{invalid:#?}");
    for row in [5, 6] {
        let line = line(row).unwrap_or_else(|| panic!("no line for row {row}: {invalid:#?}"));
        assert!(!line.contains("--date-order"), "the order would not fix it: {line}");
    }

    // An order the column proved is not credited to a flag nobody gave.
    w.create("proved.csv", "Title,Start\nA,03/17/2024\nB,31/31/2024\n");
    let run = w.dry_run("proved.csv", &["--project-id", PROJECT]);
    run.assert_code(3);
    assert_eq!(
        run.invalid_lines(),
        [
            "invalid: row 3, column `Start`: `31/31/2024` is not a real date: there is no month 31 (read as month/day/year like the column's other values)"
        ]
    );
}

#[test]
fn a_late_slash_date_still_learns_its_columns_order_from_every_row() {
    let w = Work::new();
    // Delimited text is read a second time only once a value needs dd/mm vs mm/dd: here
    // row 5, and the value that settles the order comes after it, on row 6.
    let head = "Title,Start\nA,2024-03-17\nB,2024-03-18T09:30:00Z\nC,17.03.2024\nD,03/04/2024\nE,25/04/2024\n";
    w.create("runs.csv", head);
    let run = w.dry_run("runs.csv", &["--project-id", PROJECT]);
    run.assert_code(0);
    let starts = run.starts();
    assert_eq!(
        starts,
        [
            (2, json!(1_710_633_600)),
            (3, json!(1_710_754_200)),
            (4, json!(1_710_633_600)),
            // 2024-04-03 and 2024-04-25: day first, as row 6 proves.
            (5, json!(1_712_102_400)),
            (6, json!(1_714_003_200)),
        ]
    );

    // A later row proving the other order too: the column settles nothing. Its message is
    // told once, and the rows whose dates need no order are still planned.
    w.create("both.csv", format!("{head}F,04/26/2024\n"));
    let run = w.dry_run("both.csv", &["--project-id", PROJECT]);
    run.assert_code(3);
    let column_lines: Vec<&str> = run
        .invalid_lines()
        .into_iter()
        .filter(|l| !l.starts_with("invalid: row "))
        .collect();
    assert_eq!(column_lines.len(), 1, "{}", run.stderr);
    assert!(
        column_lines[0].contains("Start") && column_lines[0].contains("--date-order"),
        "{}",
        column_lines[0]
    );
    let planned: Vec<u64> = run.bodies().into_iter().map(|(row, _)| row).collect();
    assert_eq!(planned, [2, 3, 4]);
    // Row 6 settles the order day-first for a dry run that reads the column only up to
    // its first proof; row 7 overturns that, and the file is read again: each row is still
    // told once, and the report and plan are those of the second reading alone.
    for row in [5, 6, 7] {
        let told = run
            .invalid_lines()
            .iter()
            .filter(|l| l.starts_with(&format!("invalid: row {row}, column `Start`")))
            .count();
        assert_eq!(told, 1, "row {row}:\n{}", run.stderr);
    }
    assert_eq!(run.invalid_lines().len(), 4, "{}", run.stderr);
    let outcomes: Vec<String> = run.report().iter().map(|r| format!("{} {}", r[0], r[1])).collect();
    assert_eq!(
        outcomes,
        [
            "2 planned",
            "3 planned",
            "4 planned",
            "5 invalid",
            "6 invalid",
            "7 invalid"
        ]
    );
}

/// A row with a value past the last header is invalid on its own (its columns have
/// probably shifted), but it is still the user's row: its title and human_id are in the
/// report, its cells in the failed-rows file, and its human_id counts for uniqueness.
#[test]
fn a_shifted_row_keeps_its_cells_and_its_human_id() {
    let w = Work::new();
    w.create(
        "shift.csv",
        "Title,Human ID\nhello,K1,extra\nok,K1\nfine,K2\nagain,K2,x\n",
    );
    let run = w.dry_run("shift.csv", &["--project-id", PROJECT]);
    run.assert_code(3);
    let report = run.report();
    assert_eq!(report.len(), 4);
    assert_eq!(report[0][..6], ["2", "invalid", "", "", "hello", "K1"]);
    assert!(
        report[0][8].contains("column 3 holds `extra` past the last of the 2 headers"),
        "{:?}",
        report[0]
    );
    assert_eq!(report[1][..6], ["3", "invalid", "", "", "ok", "K1"]);
    assert!(report[1][8].contains("row 2 has the same human_id"), "{:?}", report[1]);
    assert_eq!(report[2][..2], ["4", "planned"]);
    // A shifted row keeps its one problem, even when its id was seen before.
    assert_eq!(report[3][..6], ["5", "invalid", "", "", "again", "K2"]);
    assert!(!report[3][8].contains("same human_id"), "{:?}", report[3]);
    let failed = read_records(&run.dir.join("out.failed.csv"));
    assert_eq!(
        failed[0],
        ["Title", "Human ID", "error"],
        "the BOM is the csv reader's to drop"
    );
    assert_eq!(failed[1][..2], ["hello", "K1"]);
    assert!(failed[1][2].contains("`extra`"), "{failed:?}");
    assert_eq!(failed[2][..2], ["ok", "K1"]);
    assert_eq!(run.invalid_lines().len(), 3, "{}", run.stderr);
}

#[test]
fn a_named_pipe_is_read_once_into_memory() {
    // A pipe can be read only once; the date column here needs its order learned, which
    // takes a second reading.
    let w = Work::new();
    let fifo = w.path("piped.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", fifo.display());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            std::fs::write(&fifo, "Title,Start\nA,03/04/2024\nB,25/04/2024\n").expect("write into the pipe")
        })
    };
    let out = w
        .command()
        .args(["import", "piped.csv", "--dry-run", "--project-id", PROJECT])
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .expect("run the binary");
    if !writer.is_finished() {
        // The binary never opened the pipe: let the writer go, and fail below.
        drop(std::fs::File::open(&fifo));
    }
    writer.join().expect("the writer finishes");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // The report is named after the pipe, as after a file.
    let report = read_csv(&w.path("piped.report.csv"), &REPORT_HEADER);
    let outcomes: Vec<&str> = report.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(outcomes, ["planned", "planned"], "{stderr}");
}

/// What a setup-error case's input file holds.
enum Contents {
    Bytes(&'static [u8]),
    /// Sheets `Notes` and `Runs`, each with a title column and one run.
    TwoSheets,
}

struct SetupCase {
    what: &'static str,
    file: &'static str,
    contents: Contents,
    args: &'static [&'static str],
    /// Each must appear in the `error:` line.
    wanted: &'static [&'static str],
}

#[test]
fn setup_errors_exit_2_and_say_what_is_wrong() {
    let cases = [
        SetupCase {
            what: "empty file",
            file: "empty.csv",
            contents: Contents::Bytes(b""),
            args: &[],
            wanted: &["empty.csv", "empty"],
        },
        SetupCase {
            what: "only a BOM and blank lines",
            file: "blank.csv",
            contents: Contents::Bytes(b"\xEF\xBB\xBF\r\n\r\n"),
            args: &[],
            wanted: &["blank.csv", "empty"],
        },
        SetupCase {
            what: "no title column",
            file: "untitled.csv",
            contents: Contents::Bytes(b"Heading,Status,Owner\nA,ACTIVE,\n"),
            args: &[],
            wanted: &["title", "`Heading`, `Status`, `Owner`"],
        },
        SetupCase {
            what: "no such sheet",
            file: "book.xlsx",
            contents: Contents::TwoSheets,
            args: &["--sheet", "Plan"],
            wanted: &["--sheet Plan", "`Notes`, `Runs`"],
        },
        SetupCase {
            what: "unknown zone",
            file: "ok.csv",
            contents: Contents::Bytes(b"Title\nA\n"),
            args: &["--timezone", "Mars/Olympus"],
            wanted: &["--timezone", "Mars/Olympus", "Europe/Berlin"],
        },
    ];
    for case in cases {
        let what = case.what;
        let w = Work::new();
        match case.contents {
            Contents::Bytes(bytes) => {
                w.create(case.file, bytes);
            }
            Contents::TwoSheets => {
                let mut workbook = Workbook::new();
                for name in ["Notes", "Runs"] {
                    let sheet = workbook.add_worksheet();
                    sheet.set_name(name).expect("sheet name");
                    sheet.write_string(0, 0, "Title").expect("write");
                    sheet.write_string(1, 0, "A run").expect("write");
                }
                workbook.save(w.path(case.file)).expect("save");
            }
        }
        let args = [&["--project-id", PROJECT][..], case.args].concat();
        let run = w.dry_run(case.file, &args);
        assert_eq!(run.code, Some(2), "{what}: {}", run.stderr);
        let error = run
            .stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("{what}: no error line:\n{}", run.stderr));
        for word in case.wanted {
            assert!(error.contains(word), "{what}: want {word:?} in {error}");
        }
        assert!(run.invalid_lines().is_empty(), "{what}: {}", run.stderr);
        assert_eq!(run.plan_text().unwrap_or_default(), "", "{what}");
    }
}

#[test]
fn mapping_file_columns_and_defaults_and_column_flag_wins() {
    let w = Work::new();
    w.create(
        "mapping.toml",
        format!(
            "[columns]\n\
             title = \"Run Name\"\n\
             label_names = \"Etiketten\"\n\
             start_date = \"Beginn\"\n\
             [defaults]\n\
             status = \"CLOSED\"\n\
             project_id = \"{PROJECT}\"\n"
        ),
    );
    w.create(
        "runs.csv",
        "Run Name,Other Title,Etiketten,Beginn,Status\n\
         From mapping,From flag,\"a;b\",2024-03-17,\n\
         Second,Second flag,,2024-03-18 10:00,active\n",
    );
    let body = |title: &str, project: &str, status: &str, start: i64, labels: &[&str]| {
        json!({
            "title": title,
            "status": status,
            "project_id": project,
            "selection_type": "STATIC",
            "static_selection_filters": [],
            "start_date": start,
            "label_names": labels,
            "environment_ids": [],
        })
    };

    let run = w.dry_run("runs.csv", &["--mapping", "mapping.toml"]);
    run.assert_code(0);
    assert_eq!(
        run.bodies(),
        vec![
            (2, body("From mapping", PROJECT, "CLOSED", 1710633600, &["a", "b"])),
            (3, body("Second", PROJECT, "ACTIVE", 1710756000, &[])),
        ]
    );
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("warning")).collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(warnings[0].contains("`Other Title`"), "{}", warnings[0]);

    // `--column` and `--project-id` win over the mapping file.
    let run = w.dry_run(
        "runs.csv",
        &[
            "--mapping",
            "mapping.toml",
            "--column",
            "title=Other Title",
            "--project-id",
            OTHER_PROJECT,
        ],
    );
    run.assert_code(0);
    assert_eq!(
        run.bodies(),
        vec![
            (2, body("From flag", OTHER_PROJECT, "CLOSED", 1710633600, &["a", "b"])),
            (3, body("Second flag", OTHER_PROJECT, "ACTIVE", 1710756000, &[])),
        ]
    );

    // A mapped header the sheet lacks is a setup error that lists the headers.
    let run = w.dry_run("runs.csv", &["--mapping", "mapping.toml", "--column", "title=Nope"]);
    run.assert_code(2);
    assert!(
        run.stderr
            .contains("`Run Name`, `Other Title`, `Etiketten`, `Beginn`, `Status`"),
        "{}",
        run.stderr
    );
}

#[test]

fn failed_rows_of_a_workbook_import_back_to_the_same_dates() {
    let w = Work::new();
    write_runs_workbook(&w.path("runs.xlsx"));
    let zone = ["--timezone", "Europe/Berlin", "--project-id", PROJECT];
    let run = w.dry_run(
        "runs.xlsx",
        &[&["--sheet", "Runs", "--header-row", "2"][..], &zone].concat(),
    );
    run.assert_code(3);

    // Fix the two bad cells in the failed-rows file, as its message asks, and import it.
    let mut records = read_records(&w.path("out.failed.csv"));
    assert_eq!(records.len(), 3, "{records:?}");
    for record in &mut records[1..] {
        for cell in record.iter_mut() {
            match cell.as_str() {
                "OPEN" => *cell = "ACTIVE".to_owned(),
                "next week" => *cell = "2024-07-15".to_owned(),
                _ => {}
            }
        }
    }
    let mut fixed = csv::Writer::from_path(w.path("fixed.csv")).expect("fixed.csv");
    for record in &records {
        fixed.write_record(record).expect("write fixed.csv");
    }
    fixed.flush().expect("flush fixed.csv");
    drop(fixed);

    let run = w.dry_run("fixed.csv", &zone);
    run.assert_code(0);
    let body = |title: &str, key: &str, start: i64, end: Option<i64>| {
        let mut body = json!({
            "title": title,
            "status": "ACTIVE",
            "project_id": PROJECT,
            "human_id": key,
            "selection_type": "STATIC",
            "static_selection_filters": [],
            "start_date": start,
            "label_names": [],
            "environment_ids": [],
        });
        if let Some(end) = end {
            body["end_date"] = json!(end);
        }
        body
    };
    assert_eq!(
        run.bodies(),
        vec![
            // As in the workbook: 2024-07-10 00:00 to the end of 2024-07-12, in Berlin.
            (2, body("Bad status", "44", 1720562400, Some(1720821599))),
            (3, body("Bad start", "45", 1720994400, None)),
        ]
    );
}

/// `--plan -` writes the requests to standard output (the tool writes nothing else
/// there), for a pipe into `jq`; no file named `-` is made.
#[test]
fn plan_dash_writes_the_requests_to_standard_output() {
    let w = Work::new();
    w.create("runs.csv", format!("Title,Project\nA,{PROJECT}\nB,{PROJECT}\n"));
    let output = w
        .command()
        .args(["import", "runs.csv", "--dry-run", "--plan", "-"])
        .output()
        .expect("run the binary");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let titles: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let plan: Value = serde_json::from_str(line).expect("a plan line is JSON");
            plan["body"]["title"].as_str().unwrap_or("").to_owned()
        })
        .collect();
    assert_eq!(titles, ["A", "B"]);
    assert!(!w.path("-").exists());
}

/// A row whose values run past the last header is invalid, once, in the reader's own words
/// (file, row, column), and the rows around it go on.
#[test]
fn a_row_with_values_past_the_last_header_is_named_once() {
    let w = Work::new();
    w.create(
        "shifted.csv",
        "Title,Start\na,2024-01-01\nb,2024-01-01,5Z\nc,2024-01-02\n",
    );
    let run = w.dry_run("shifted.csv", &["--project-id", PROJECT]);
    run.assert_code(3);
    assert_eq!(
        run.invalid_lines(),
        [
            "invalid: shifted.csv: row 3, column 3 holds `5Z` past the last of the 2 headers, so the columns have probably shifted; quote values that contain the delimiter `,`, or pass the right --delimiter"
        ]
    );
    assert_eq!(run.bodies().iter().map(|(row, _)| *row).collect::<Vec<_>>(), [2, 4]);
}

/// The failed-rows file keeps the header where the input had it (blank lines stand in for the
/// rows above), so the same `--header-row` reads it back.
#[test]
fn failed_rows_keep_the_header_row() {
    let w = Work::new();
    w.create(
        "h.csv",
        format!("exported by tool v1\nTitle,Project,Status\nok,{PROJECT},ACTIVE\nbad,{PROJECT},OPEN\n"),
    );
    w.dry_run("h.csv", &["--header-row", "2"]).assert_code(3);
    let failed = std::fs::read_to_string(w.path("out.failed.csv")).expect("the failed-rows file");
    assert!(
        failed.starts_with("\u{feff}\n\"Title\",\"Project\",\"Status\",\"error\"\n"),
        "{failed:?}"
    );
    w.create("fixed.csv", failed.replace(",OPEN,", ",ACTIVE,"));
    let run = w.dry_run("fixed.csv", &["--header-row", "2"]);
    run.assert_code(0);
    let bodies = run.bodies();
    assert_eq!(bodies.len(), 1, "{}", run.stderr);
    assert_eq!((bodies[0].0, &bodies[0].1["title"]), (3, &json!("bad")));
}

/// A TSV whose header holds commas keeps its tabs in the failed-rows file: the headers are
/// quoted, so the delimiter sniffed from that line is the tab again.
#[test]
fn failed_rows_of_a_tsv_with_commas_in_a_header_read_back_as_tsv() {
    let w = Work::new();
    w.create(
        "t.tsv",
        format!(
            "Title\tProject\tStatus\tLabels (a, b, c, d, e)\nok\t{PROJECT}\tACTIVE\ta\nbad\t{PROJECT}\tOPEN\tb, c\n"
        ),
    );
    w.dry_run("t.tsv", &["--column", "label_names=Labels (a, b, c, d, e)"])
        .assert_code(3);
    let failed = std::fs::read_to_string(w.path("out.failed.csv")).expect("the failed-rows file");
    w.create("fixed.csv", failed.replace("\tOPEN\t", "\tACTIVE\t"));
    let run = w.dry_run("fixed.csv", &["--column", "label_names=Labels (a, b, c, d, e)"]);
    run.assert_code(0);
    let bodies = run.bodies();
    assert_eq!(bodies.len(), 1, "{}", run.stderr);
    assert_eq!(bodies[0].1["label_names"], json!(["b", "c"]));
}

/// Old Mac exports end lines with a lone CR: a mistake on spreadsheet row 4 is row 4 there
/// too, blank lines counted, as with LF and CRLF.
#[test]
fn cr_only_files_number_rows_like_lf_and_crlf() {
    for ending in ["\n", "\r\n", "\r"] {
        let w = Work::new();
        let lines = ["Title,Status", "Checkout,ACTIVE", "", "Search,WRONG", "Cart,ACTIVE"];
        w.create("mac.csv", lines.join(ending));
        let run = w.dry_run("mac.csv", &["--project-id", PROJECT]);
        run.assert_code(3);
        let invalid = run.invalid_lines();
        assert_eq!(invalid.len(), 1, "{ending:?}: {}", run.stderr);
        assert_eq!(
            invalid[0],
            "invalid: row 4, column `Status`: `WRONG`: status must be ACTIVE or CLOSED (map other words in [values.status])",
            "{ending:?}"
        );
        let rows: Vec<u64> = run.bodies().into_iter().map(|(row, _)| row).collect();
        assert_eq!(rows, [2, 5], "{ending:?}");
    }
}

/// A NUL byte past the first kilobyte stops the run naming its cell, as one at the top does;
/// it is never planned into a request.
#[test]
fn a_nul_byte_anywhere_stops_the_run_naming_the_cell() {
    let w = Work::new();
    let mut data = String::from("Title,Status\n");
    for i in 0..100 {
        data.push_str(&format!("Run {i},ACTIVE\n"));
    }
    data.push_str("Bad\0,ACTIVE\nLast,ACTIVE\n");
    w.create("nul.csv", &data);
    let run = w.dry_run("nul.csv", &["--project-id", PROJECT]);
    run.assert_code(2);
    assert!(
        run.stderr
            .contains("nul.csv: row 102, column 1 (`Title`) holds a NUL byte"),
        "{}",
        run.stderr
    );
    let planned = run.plan_text().unwrap_or_default();
    assert!(!planned.contains("Bad") && !planned.contains("Last"), "{planned}");
}

/// `--encoding` takes the names other tools use, not only WHATWG labels: `CP949` is how
/// Windows and Python name the Korean code page that WHATWG calls `euc-kr`.
#[test]
fn encoding_aliases_read_like_their_whatwg_labels() {
    let w = Work::new();
    // `Title,Status` then `가나,ACTIVE` in EUC-KR.
    w.create("korean.csv", b"Title,Status\n\xB0\xA1\xB3\xAA,ACTIVE\n");
    for label in ["euc-kr", "CP949", "ms949"] {
        let run = w.dry_run("korean.csv", &["--project-id", PROJECT, "--encoding", label]);
        run.assert_code(0);
        let titles: Vec<Value> = run
            .bodies()
            .into_iter()
            .map(|(_, body)| body["title"].clone())
            .collect();
        assert_eq!(titles, [json!("가나")], "{label}");
    }
}

/// Cells far apart (A1, BL1, and row 1,048,576, Excel's last) are read with their own
/// values and row numbers; the sheet is streamed, so the gap between them costs nothing.
#[test]
fn workbook_cells_far_apart_plan_with_their_row_numbers() {
    let w = Work::new();
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "Title").unwrap();
    sheet.write_string(0, 63, "Labels").unwrap();
    sheet.write_string(1, 0, "First run").unwrap();
    sheet.write_string(1_048_575, 0, "Last run").unwrap();
    sheet.write_string(1_048_575, 63, "far;away").unwrap();
    workbook.save(w.path("far.xlsx")).unwrap();
    let run = w.dry_run("far.xlsx", &["--project-id", PROJECT]);
    far_cells_planned(&run);
}

/// What both far-cells workbooks (`.xlsx` here, `.xlsb` in [`xlsb`]) plan: the first run on
/// row 2, the last on row 1,048,576 with its labels from column BL.
fn far_cells_planned(run: &Run) {
    run.assert_code(0);
    let bodies: Vec<(u64, Value, Value)> = run
        .bodies()
        .into_iter()
        .map(|(row, body)| (row, body["title"].clone(), body["label_names"].clone()))
        .collect();
    assert_eq!(
        bodies,
        [
            (2, json!("First run"), json!([])),
            (1_048_576, json!("Last run"), json!(["far", "away"]))
        ]
    );
    assert_eq!(
        run.report(),
        [planned(2, "First run", ""), planned(1_048_576, "Last run", "")]
    );
}

/// A sheet of 200,000 rows is read in full, twice (once for the date column's order, once
/// to validate): every row planned, with its own row number, title and numeric key.
#[test]
fn a_sheet_of_200000_rows_dry_runs_every_row() {
    const ROWS: u32 = 200_000;
    let w = Work::new();
    let mut workbook = Workbook::new();
    let date = Format::new().set_num_format("dd/mm/yyyy");
    let sheet = workbook.add_worksheet();
    for (column, header) in ["Title", "Human ID", "Start Date"].into_iter().enumerate() {
        sheet.write_string(0, column as u16, header).unwrap();
    }
    for row in 1..=ROWS {
        let day = ExcelDateTime::from_ymd(2024, 1 + (row % 12) as u8, 1 + (row % 28) as u8).unwrap();
        sheet.write_string(row, 0, format!("Run {row}")).unwrap();
        sheet.write_number(row, 1, f64::from(row)).unwrap();
        sheet.write_datetime_with_format(row, 2, &day, &date).unwrap();
    }
    workbook.save(w.path("big.xlsx")).unwrap();
    let output = w
        .command()
        .args(["import", "big.xlsx", "--dry-run", "--no-state", "--quiet"])
        .args(["--report", "out.report.csv", "--project-id", PROJECT])
        .output()
        .expect("run the binary");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = read_csv(&w.path("out.report.csv"), &REPORT_HEADER);
    assert_eq!(report.len(), ROWS as usize);
    for (row, line) in (1..=ROWS).zip(&report) {
        let key = row.to_string();
        assert_eq!(*line, planned(row + 1, &format!("Run {row}"), &key), "row {}", row + 1);
    }
}

/// A sheet whose rows come out of order (no spreadsheet writes one) stops the run naming
/// the rows, rather than being held back to be sorted.
#[test]
fn workbook_rows_out_of_order_stop_the_run_naming_them() {
    use std::io::{Read, Write};
    let w = Work::new();
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "Title").unwrap();
    sheet.write_string(1, 0, "Moved run").unwrap();
    sheet.write_string(2, 0, "Third run").unwrap();
    let data = workbook.save_to_buffer().unwrap();
    // Row 2 becomes row 9, ahead of row 3.
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(data)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..archive.len() {
        let mut part = archive.by_index(i).unwrap();
        let name = part.name().unwrap().into_owned();
        let mut text = Vec::new();
        part.read_to_end(&mut text).unwrap();
        if name == "xl/worksheets/sheet1.xml" {
            let xml = String::from_utf8(text).unwrap();
            assert!(xml.contains(r#"<row r="2""#) && xml.contains(r#"r="A2""#), "{xml}");
            text = xml
                .replace(r#"<row r="2""#, r#"<row r="9""#)
                .replace(r#"r="A2""#, r#"r="A9""#)
                .into_bytes();
        }
        out.start_file(name, stored).unwrap();
        out.write_all(&text).unwrap();
    }
    w.create("shuffled.xlsx", out.finish().unwrap().into_inner());
    let run = w.dry_run("shuffled.xlsx", &["--project-id", PROJECT]);
    run.assert_code(2);
    assert!(
        run.stderr
            .contains("shuffled.xlsx: sheet `Sheet1` has a cell of row 3 after row 9: its rows are out of order"),
        "{}",
        run.stderr
    );
}
