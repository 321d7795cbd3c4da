//! The read stage as `import` and `check` run it: any bytes as CSV, headers mapped,
//! date orders inferred over a first pass, every row validated on the second. A project
//! id default lets rows without that column validate.
#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use testsigma_import::{ReadSettings, RowEvent, open_read_stage};
use testsigma_import::Field;
use testsigma_import::{Input, SourceOptions};
use testsigma_import::RowRules;

fuzz_target!(|data: &[u8]| {
    let read = ReadSettings {
        input: Input::Bytes {
            name: "fuzz.csv".to_owned(),
            data: Arc::new(data.to_vec()),
        },
        source: SourceOptions::default(),
        columns: BTreeMap::new(),
        rules: RowRules {
            defaults: BTreeMap::from([(Field::ProjectId, "c47ade67-0543-4582-a4a5-b7de447c94f5".to_owned())]),
            ..RowRules::default()
        },
        key: None,
        quiet: true,
    };
    let Ok(mut stage) = open_read_stage(&read, &|_| {}) else {
        return;
    };
    let _ = stage.validator.column_problems();
    let mut last = 0;
    let _ = stage.for_each_row(|event| {
        let row = match event {
            RowEvent::Valid { report, planned, .. } => {
                let _ = testsigma_import::plan_line(&planned);
                report.row
            }
            RowEvent::Invalid { report, problems, .. } => {
                assert!(!problems.is_empty(), "row {} is invalid without a problem", report.row);
                report.row
            }
        };
        assert!(row > last, "row {row} reported after row {last}");
        last = row;
        Ok(())
    });
});
