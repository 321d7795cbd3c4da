//! End-to-end tests of the names users see: test cases by their human ids (`TC-12`) and
//! assignees by full name, resolved over HTTP against the sandbox before the first create.

use serde_json::{Value, json};
use testsigma_import::sandbox::{SandboxOptions, TestCase, builtin_test_case_id, builtin_users};

use crate::common::*;

fn grace_id() -> String {
    builtin_users()
        .into_iter()
        .find(|u| u.first_name == "Grace")
        .expect("grace is a built-in user")
        .id
}

fn case(n: u32) -> String {
    builtin_test_case_id(PROJECT, n)
}

#[test]
fn human_ids_uuids_and_a_name_assignee_create_exactly_the_bodies_expected() {
    let rig = Rig::new(SandboxOptions::default());
    let csv = format!(
        "title,test cases,assignee,status\n\
         Smoke,TC-12;tc-3,Grace Hopper,In Progress\n\
         Mixed,\"{};TC-5;TC-12\",ada@example.com,done\n\
         Same case twice,\"TC-7;{}\",,\n",
        case(1).to_uppercase(),
        case(7)
    );
    rig.write("runs.csv", csv);
    rig.write(
        "map.toml",
        "[values.status]\n\"In Progress\" = \"ACTIVE\"\nDone = \"closed\"\n",
    );
    let mut cmd = rig.import("runs.csv", Some("k"));
    cmd.args(["--project-id", PROJECT, "--no-state", "--mapping", "map.toml"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
    let runs = runs_by_title(&rig.sandbox);
    let body = |title: &str| runs[title][0].body.clone();
    let filter = |ids: Vec<String>| json!([{"field": "id", "operator": "IN", "values": ids}]);
    let expected = |title: &str, ids: Vec<String>, assignee: Option<String>| {
        let status = if title == "Mixed" { "CLOSED" } else { "ACTIVE" };
        let mut body = json!({
            "title": title, "status": status, "project_id": PROJECT, "selection_type": "STATIC",
            "static_selection_filters": filter(ids), "label_names": [], "environment_ids": [],
        });
        if let Some(a) = assignee {
            body["assignee_id"] = Value::String(a);
        }
        body
    };
    assert_eq!(
        body("Smoke"),
        expected("Smoke", vec![case(12), case(3)], Some(grace_id()))
    );
    assert_eq!(
        body("Mixed"),
        expected("Mixed", vec![case(1), case(5), case(12)], Some(ada_id()))
    );
    assert_eq!(
        body("Same case twice"),
        expected("Same case twice", vec![case(7)], None)
    );
    // Three distinct ids in a project of 30 cases: one page of its list.
    let stats = rig.sandbox.stats();
    assert_eq!((stats.test_case_lists, stats.test_case_gets), (1, 0), "{stats}");
}

#[test]
fn a_status_word_no_table_maps_is_invalid_and_names_the_table() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", "title,status\nSmoke,In Progress\n");
    rig.write("testsigma-import.toml", "[values.status]\nDone = \"CLOSED\"\n");
    let mut cmd = bare_command(rig.dir.path(), None);
    cmd.args(["import", "runs.csv", "--dry-run", "--project-id", PROJECT]);
    let out = run(cmd);
    assert_eq!(out.code, 3, "{}", out.streams());
    assert!(
        out.stderr.contains("or a word [values.status] maps (done)"),
        "{}",
        out.stderr
    );
    rig.write("testsigma-import.toml", "[values.status]\nDone = \"FINISHED\"\n");
    let mut cmd = bare_command(rig.dir.path(), None);
    cmd.args(["import", "runs.csv", "--dry-run", "--project-id", PROJECT]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{}", out.streams());
    assert!(
        out.stderr.contains("a word must map to ACTIVE or CLOSED"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unknown_human_id_and_an_unknown_name_send_nothing() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write(
        "runs.csv",
        "title,test cases,assignee\nGood,TC-1,\nBad case,TC-999,\nBad name,TC-2,Jane Nobody\n",
    );
    let mut cmd = rig.import("runs.csv", Some("k"));
    cmd.args(["--project-id", PROJECT, "--no-state"]);
    let out = run(cmd);
    assert_eq!(out.code, 3, "{}", out.streams());
    assert!(rig.sandbox.runs().is_empty());
    assert_eq!(rig.sandbox.stats().posts_received, 0);
    assert!(
        out.stderr
            .contains("the project has no test case TC-999; nearest known: TC-9, TC-19, TC-29"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("no user has this name"), "{}", out.stderr);
    let outcomes: Vec<String> = rig
        .outcomes("runs.report.csv")
        .iter()
        .map(|(_, o)| format!("{o:?}"))
        .collect();
    assert_eq!(outcomes, ["NotSent", "Invalid", "Invalid"]);
}

#[test]
fn a_dry_run_lists_human_ids_unresolved_and_check_resolves_them() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", "title,test cases\nSmoke,TC-4;TC-31\n");
    let mut cmd = bare_command(rig.dir.path(), None);
    cmd.args([
        "import",
        "runs.csv",
        "--dry-run",
        "--project-id",
        PROJECT,
        "--plan",
        "plan.jsonl",
    ]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
    let plan = rig.plan("plan.jsonl");
    assert_eq!(plan[0]["unresolved"], json!({"test_case_ids": ["TC-4", "TC-31"]}));
    let mut cmd = bare_command(rig.dir.path(), Some("k"));
    cmd.args([
        "check",
        "runs.csv",
        "--project-id",
        PROJECT,
        "--base-url",
        &rig.sandbox.base_url(),
    ]);
    let out = run(cmd);
    assert_eq!(out.code, 3, "{}", out.streams());
    let all = out.streams();
    assert!(all.contains(&format!("test case TC-4: {}", case(4))), "{all}");
    assert!(
        all.contains("invalid: test case `TC-31` (row 2): the project has no test case TC-31"),
        "{all}"
    );
}

/// The requests spent resolving 40 distinct human ids, in a project of `size` cases.
fn requests_for_40_ids(size: u32, ids: impl Iterator<Item = u32>) -> (u64, u64) {
    let cases = (1..=size)
        .map(|n| TestCase {
            id: uuid::Uuid::from_u128(u128::from(n)).to_string(),
            human_id: format!("TC-{n}"),
            title: format!("case {n}"),
            project_id: PROJECT.to_owned(),
        })
        .collect();
    let rig = Rig::new(SandboxOptions {
        test_cases: Some(cases),
        ..SandboxOptions::default()
    });
    let mut csv = String::from("title,test cases\n");
    for (row, id) in ids.enumerate() {
        csv.push_str(&format!("Run {row},TC-{id}\n"));
    }
    rig.write("runs.csv", csv);
    let mut cmd = rig.import("runs.csv", Some("k"));
    cmd.args(["--project-id", PROJECT, "--no-state", "--no-lookup"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
    let stats = rig.sandbox.stats();
    (stats.test_case_lists, stats.test_case_gets)
}

#[test]
fn forty_human_ids_cost_few_requests_in_small_and_large_projects() {
    let small = requests_for_40_ids(60, 1..=40);
    let large_first = requests_for_40_ids(5_000, 1..=40);
    let large_spread = requests_for_40_ids(5_000, (1..=40).map(|n| n * 125));
    eprintln!("40 ids: 60 cases {small:?}; 5000 cases, first 40 {large_first:?}; spread {large_spread:?}");
    assert_eq!(small, (1, 0));
    assert_eq!(large_first, (1, 0));
    let (lists, gets) = large_spread;
    assert!(lists + gets <= 80, "{large_spread:?}");
}

#[test]
fn a_start_date_column_that_proves_month_first_settles_the_end_dates() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write(
        "us.csv",
        "title,start date,end date\nA,12/31/2025,1/2/2026\nB,3/4/2025,3/5/2025\nC,1/2/2025,1/3/2025\n",
    );
    let mut cmd = bare_command(rig.dir.path(), None);
    cmd.args([
        "import",
        "us.csv",
        "--dry-run",
        "--project-id",
        PROJECT,
        "--plan",
        "plan.jsonl",
    ]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
    let all = out.streams();
    assert_eq!(
        all.matches("note: `end date` proves no date order on its own").count(),
        1,
        "{all}"
    );
    assert!(
        all.contains("it is read month first (mm/dd), as `start date` proves (`12/31/2025`, row 2)"),
        "{all}"
    );
    let ends: Vec<i64> = rig
        .plan("plan.jsonl")
        .iter()
        .map(|l| l["body"]["end_date"].as_i64().unwrap())
        .collect();
    assert_eq!(ends, [1767398399, 1741219199, 1735948799]);
}

/// A workbook as another tool exports it: a cover sheet, a merged title over the table,
/// headers on row 3, labels merged over three rows, US dates proved by the start column.
fn legacy_export() -> Vec<u8> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut workbook = Workbook::new();
    let cover = workbook.add_worksheet().set_name("Cover").unwrap();
    cover.write_string(0, 0, "Exported from LegacyTM 7.2").unwrap();
    cover.write_string(2, 0, "Owner: QA").unwrap();
    let runs = workbook.add_worksheet().set_name("Runs").unwrap();
    runs.merge_range(0, 0, 0, 4, "Test runs — Q4 2025", &Format::new())
        .unwrap();
    for (column, header) in ["Title", "Labels", "Start Date", "End Date", "Test Cases"]
        .iter()
        .enumerate()
    {
        runs.write_string(2, column as u16, *header).unwrap();
    }
    runs.merge_range(3, 1, 5, 1, "smoke, nightly", &Format::new()).unwrap();
    let rows = [
        ("Checkout", "12/31/2025", "1/2/2026", case(1)),
        ("Login", "3/4/2025", "3/5/2025", "TC-2".to_owned()),
        ("Search", "1/2/2025", "1/3/2025", case(3)),
    ];
    for (i, (title, start, end, cases)) in rows.iter().enumerate() {
        let row = 3 + i as u32;
        runs.write_string(row, 0, *title).unwrap();
        runs.write_string(row, 2, *start).unwrap();
        runs.write_string(row, 3, *end).unwrap();
        runs.write_string(row, 4, cases).unwrap();
    }
    workbook.save_to_buffer().unwrap()
}

#[test]
fn a_legacy_export_finds_its_sheet_and_headers_and_spreads_merged_labels() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("legacy.xlsx", legacy_export());
    let mut cmd = bare_command(rig.dir.path(), None);
    cmd.args([
        "import",
        "legacy.xlsx",
        "--dry-run",
        "--project-id",
        PROJECT,
        "--plan",
        "plan.jsonl",
    ]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
    let all = out.streams();
    for said in [
        "note: reading sheet `Runs`, headers on row 3 (the first with a title header)",
        "note: merged cells: each merged value is given to every row it spans (2 cells filled)",
        "note: `End Date` proves no date order on its own: it is read month first (mm/dd), as `Start Date` proves (`12/31/2025`, row 4)",
    ] {
        assert_eq!(all.matches(said).count(), 1, "{said}\n{all}");
    }
    let plan = rig.plan("plan.jsonl");
    let rows: Vec<i64> = plan.iter().map(|l| l["row"].as_i64().unwrap()).collect();
    assert_eq!(rows, [4, 5, 6]);
    let body = |title: &str, start: i64, end: i64, case_id: &str| {
        json!({
            "title": title, "status": "ACTIVE", "project_id": PROJECT, "selection_type": "STATIC",
            "static_selection_filters": [{"field": "id", "operator": "IN", "values": [case_id]}],
            "start_date": start, "end_date": end,
            "label_names": ["smoke", "nightly"], "environment_ids": [],
        })
    };
    let bodies: Vec<Value> = plan.iter().map(|l| l["body"].clone()).collect();
    assert_eq!(
        bodies,
        [
            body("Checkout", 1767139200, 1767398399, &case(1)),
            body("Login", 1741046400, 1741219199, "TC-2"),
            body("Search", 1735776000, 1735948799, &case(3)),
        ]
    );
    assert_eq!(plan[1]["unresolved"], json!({"test_case_ids": ["TC-2"]}));
}

/// The failed-rows file of a workbook whose headers were found on row 3 has them on row 3
/// too, so it reads back with its rows where they were.
#[test]
fn a_found_header_row_is_kept_in_the_failed_rows_file() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("legacy.xlsx", legacy_export());
    // Read day first, `12/31/2025` on row 4 is no date.
    let args = ["--dry-run", "--project-id", PROJECT, "--date-order", "dmy"];
    let mut cmd = bare_command(rig.dir.path(), None);
    cmd.args(["import", "legacy.xlsx"]).args(args);
    let out = run(cmd);
    assert_eq!(out.code, 3, "{}", out.streams());
    let failed = rig.read("legacy.failed.csv");
    let lines: Vec<&str> = failed.lines().collect();
    assert_eq!(lines.len(), 4, "{failed}");
    assert_eq!(lines[..2], ["\u{feff}", ""], "{failed}");
    assert!(lines[2].starts_with("\"Title\",\"Labels\","), "{failed}");
    assert!(lines[3].starts_with("Checkout,"), "{failed}");

    // Read back with the header row found, its row is numbered as in the workbook.
    let mut cmd = bare_command(rig.dir.path(), None);
    cmd.args(["import", "legacy.failed.csv", "--header-row", "3"])
        .args(args);
    let out = run(cmd);
    assert_eq!(out.code, 3, "{}", out.streams());
    let rows: Vec<usize> = rig
        .outcomes("legacy.failed.report.csv")
        .iter()
        .map(|(row, _)| *row)
        .collect();
    assert_eq!(rows, [4], "{}", out.streams());
}

#[test]
fn a_second_run_of_human_ids_finds_the_runs_unchanged() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write(
        "runs.csv",
        "title,test cases,assignee\nSmoke,TC-1;TC-2,Grace Hopper\nLogin,tc-3,\n",
    );
    for round in 0..2 {
        let mut cmd = rig.import("runs.csv", Some("k"));
        cmd.args(["--project-id", PROJECT, "--state", "ledger.jsonl"]);
        let out = run(cmd);
        assert_eq!(out.code, 0, "round {round}: {}", out.streams());
        let outcomes: Vec<String> = rig
            .outcomes("runs.report.csv")
            .iter()
            .map(|(_, o)| format!("{o:?}"))
            .collect();
        let want = if round == 0 {
            ["Created", "Created"]
        } else {
            ["AlreadyImported", "AlreadyImported"]
        };
        assert_eq!(outcomes, want, "round {round}: {}", out.streams());
    }
    assert_eq!(rig.sandbox.runs().len(), 2);
}

#[test]
fn a_workbook_without_a_title_header_lists_the_sheets_and_rows_looked_at() {
    use rust_xlsxwriter::Workbook;
    let mut workbook = Workbook::new();
    let cover = workbook.add_worksheet().set_name("Cover").unwrap();
    cover.write_string(0, 0, "Exported from LegacyTM 7.2").unwrap();
    let data = workbook.add_worksheet().set_name("Data").unwrap();
    data.write_string(1, 0, "Run").unwrap();
    data.write_string(2, 0, "Smoke").unwrap();
    let rig = Rig::new(SandboxOptions::default());
    rig.write("book.xlsx", workbook.save_to_buffer().unwrap());
    let mut cmd = bare_command(rig.dir.path(), None);
    cmd.args(["import", "book.xlsx", "--dry-run", "--project-id", PROJECT]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{}", out.streams());
    let said = "looked at sheet `Cover`: row 1 `Exported from LegacyTM 7.2`; sheet `Data`: row 2 `Run`, row 3 `Smoke`";
    assert!(out.stderr.contains(said), "{}", out.stderr);
    // The title's header given: found on sheet Data, row 2.
    let mut cmd = bare_command(rig.dir.path(), None);
    cmd.args([
        "import",
        "book.xlsx",
        "--dry-run",
        "--project-id",
        PROJECT,
        "--column",
        "title=Run",
    ]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
    assert!(
        out.stdout.contains("reading sheet `Data`, headers on row 2")
            || out.stderr.contains("reading sheet `Data`, headers on row 2"),
        "{}",
        out.streams()
    );
}
