//! Headers → fields: the contract's column table, its aliases, and the user's own
//! mapping (`--mapping`, `[columns]`, `--column FIELD=HEADER`). Pure.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A field of the create-test-run request that a column can feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Title,
    Description,
    Status,
    ProjectId,
    HumanId,
    SelectionType,
    TestCaseIds,
    StartDate,
    EndDate,
    AssigneeId,
    LabelNames,
    EnvironmentIds,
}

impl Field {
    pub const ALL: [Field; 12] = [
        Field::Title,
        Field::Description,
        Field::Status,
        Field::ProjectId,
        Field::HumanId,
        Field::SelectionType,
        Field::TestCaseIds,
        Field::StartDate,
        Field::EndDate,
        Field::AssigneeId,
        Field::LabelNames,
        Field::EnvironmentIds,
    ];

    /// The field's name, as used in `--column`, `[columns]` and `[defaults]`.
    pub fn name(self) -> &'static str {
        self.aliases()[0]
    }

    /// Headers that map to this field without configuration, the default first. An
    /// earlier alias wins when a sheet has two columns for one field.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::Title => &["title", "name", "run name", "test run"],
            Field::Description => &["description", "details"],
            Field::Status => &["status"],
            Field::ProjectId => &["project_id", "project"],
            Field::HumanId => &["human_id", "key", "run key"],
            Field::SelectionType => &["selection_type"],
            Field::TestCaseIds => &["test_case_ids", "test cases", "case ids", "cases"],
            Field::StartDate => &["start_date", "start", "starts"],
            Field::EndDate => &["end_date", "end", "due", "due date"],
            Field::AssigneeId => &["assignee_id", "assignee", "owner"],
            Field::LabelNames => &["label_names", "labels", "tags"],
            Field::EnvironmentIds => &["environment_ids", "environments"],
        }
    }

    /// What a cell of this field takes, for messages and the template's notes.
    pub fn accepts(self) -> &'static str {
        match self {
            Field::Title => "any non-empty text (required)",
            Field::Description => "any text",
            Field::Status => "ACTIVE or CLOSED (any case; default ACTIVE)",
            Field::ProjectId => "a project UUID (default: --project-id)",
            Field::HumanId => "your own run key, unique in the file; also the re-run identity",
            Field::SelectionType => "STATIC (the default)",
            Field::TestCaseIds => "test case UUIDs separated by , ; | or new lines",
            Field::StartDate => "a date or date-time, e.g. 2024-03-17 or 17/03/2024 09:30",
            Field::EndDate => "a date or date-time not before the start; a date alone means 23:59:59",
            Field::AssigneeId => "a user UUID or the user's e-mail address",
            Field::LabelNames => "label names separated by , ; | or new lines",
            Field::EnvironmentIds => "environment UUIDs separated by , ; | or new lines",
        }
    }

    pub fn is_list(self) -> bool {
        matches!(self, Field::TestCaseIds | Field::LabelNames | Field::EnvironmentIds)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Field {
    type Err = MappingError;

    /// A field by its name or any alias, with the header matching rules.
    fn from_str(s: &str) -> Result<Field, MappingError> {
        let wanted = normalise_header(s);
        Field::ALL
            .into_iter()
            .find(|f| f.aliases().iter().any(|a| normalise_header(a) == wanted))
            .ok_or_else(|| MappingError::UnknownField { field: s.to_string() })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error(
        "`{field}` is not a field; fields are: title, description, status, project_id, human_id, selection_type, test_case_ids, start_date, end_date, assignee_id, label_names, environment_ids"
    )]
    UnknownField { field: String },
    #[error("--column `{spec}` should be FIELD=HEADER, e.g. --column \"title=Run Name\"")]
    BadColumnSpec { spec: String },
    #[error(
        "{source_name} maps {field} to the header `{header}`, but the sheet has no such header; its headers are: {found}"
    )]
    MappedHeaderMissing {
        source_name: String,
        field: Field,
        header: String,
        found: String,
    },
    #[error(
        "{source_name} maps {field} to the header `{header}`, but columns {columns} all have that header, and nothing tells which one is meant; rename all but one of them"
    )]
    MappedHeaderAmbiguous {
        source_name: String,
        field: Field,
        header: String,
        columns: String,
    },
    #[error(
        "no column for the required field `title`: expected a header such as Title, Name, Run Name or Test Run, or map one with --column \"title=YOUR HEADER\"; the headers found are: {found}"
    )]
    NoTitle { found: String },
}

/// Header text reduced to what matching compares: lower case, without spaces, `_`, `-` or `.`.
pub fn normalise_header(header: &str) -> String {
    header
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.') && !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Parses `FIELD=HEADER`.
pub fn parse_column_spec(spec: &str) -> Result<(Field, String), MappingError> {
    let (field, header) = spec
        .split_once('=')
        .ok_or_else(|| MappingError::BadColumnSpec { spec: spec.to_string() })?;
    if header.trim().is_empty() {
        return Err(MappingError::BadColumnSpec { spec: spec.to_string() });
    }
    Ok((field.trim().parse()?, header.trim().to_string()))
}

/// An explicit mapping of a field to a header, and where it came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplicitColumn {
    pub header: String,
    pub source_name: String,
}

/// Which column feeds each field, and what the sheet had that feeds nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMap {
    columns: BTreeMap<Field, usize>,
    /// The same, indexed by `Field as usize`: looked up for every field of every row.
    by_field: [Option<usize>; Field::ALL.len()],
    /// Headers that match no field, with their 0-based column: warned about once, ignored.
    pub unknown: Vec<(usize, String)>,
    /// Columns that also matched a field another column already feeds.
    pub shadowed: Vec<(usize, String, Field)>,
}

impl ColumnMap {
    /// A map with no columns: every field comes from the defaults.
    pub fn empty() -> ColumnMap {
        ColumnMap::new(BTreeMap::new(), Vec::new(), Vec::new())
    }

    fn new(
        columns: BTreeMap<Field, usize>,
        unknown: Vec<(usize, String)>,
        shadowed: Vec<(usize, String, Field)>,
    ) -> Self {
        let mut by_field = [None; Field::ALL.len()];
        for (field, column) in &columns {
            by_field[*field as usize] = Some(*column);
        }
        ColumnMap {
            columns,
            by_field,
            unknown,
            shadowed,
        }
    }

    pub fn column(&self, field: Field) -> Option<usize> {
        self.by_field[field as usize]
    }

    pub fn fields(&self) -> impl Iterator<Item = (Field, usize)> + '_ {
        self.columns.iter().map(|(f, c)| (*f, *c))
    }

    /// Warnings for the user, one line each.
    pub fn warnings(&self, headers: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for (column, header) in &self.unknown {
            let letters = crate::read::row::column_letters(*column);
            // The failed-rows file adds this column; feeding that file back must be quiet.
            if matches!(normalise_header(header).as_str(), "error" | "importerror") {
                continue;
            }
            if header.trim().is_empty() {
                out.push(format!("column {letters} has no header: ignored"));
            } else {
                out.push(format!(
                    "column {letters} `{header}` matches no field: ignored (map it with --column FIELD=\"{header}\")"
                ));
            }
        }
        for (column, header, field) in &self.shadowed {
            let used_column = self.column(*field);
            let used = used_column
                .and_then(|c| headers.get(c))
                .map(String::as_str)
                .unwrap_or("");
            let letters = crate::read::row::column_letters(*column);
            if used.trim() == header.trim() {
                // --column names a header, and this one names two columns.
                let used_letters = used_column.map(crate::read::row::column_letters).unwrap_or_default();
                out.push(format!(
                    "column {letters} `{header}` has the same header as column {used_letters}, from which {field} is read: ignored (to read {field} from column {letters}, rename one of the two headers)"
                ));
            } else {
                out.push(format!(
                    "column {letters} `{header}` also matches {field}, which is read from `{used}`: ignored (choose with --column {field}=HEADER)"
                ));
            }
        }
        out
    }
}

/// Maps a sheet's headers to fields. Explicit mappings win; then aliases, earlier alias first.
pub(crate) fn map_headers(
    headers: &[String],
    explicit: &BTreeMap<Field, ExplicitColumn>,
) -> Result<ColumnMap, MappingError> {
    let normalised: Vec<String> = headers.iter().map(|h| normalise_header(h)).collect();
    let mut columns = BTreeMap::new();
    let mut taken = vec![false; headers.len()];
    for (field, wanted) in explicit {
        let column = explicit_column(headers, &normalised, *field, wanted)?;
        columns.insert(*field, column);
        taken[column] = true;
    }
    let shadowed = map_aliases(headers, &normalised, &mut columns, &mut taken);
    if !columns.contains_key(&Field::Title) {
        return Err(MappingError::NoTitle {
            found: found_headers(headers),
        });
    }
    let unknown = headers
        .iter()
        .enumerate()
        .filter(|(column, _)| !taken[*column])
        .map(|(column, header)| (column, header.clone()))
        .collect();
    Ok(ColumnMap::new(columns, unknown, shadowed))
}

/// The one column a mapping names for `field`: the header written exactly, else as
/// matching compares headers.
fn explicit_column(
    headers: &[String],
    normalised: &[String],
    field: Field,
    wanted: &ExplicitColumn,
) -> Result<usize, MappingError> {
    let exact: Vec<usize> = (0..headers.len())
        .filter(|&c| headers[c].trim() == wanted.header.trim())
        .collect();
    let candidates = if exact.is_empty() {
        let loose = normalise_header(&wanted.header);
        (0..headers.len()).filter(|&c| normalised[c] == loose).collect()
    } else {
        exact
    };
    match candidates.as_slice() {
        [] => Err(MappingError::MappedHeaderMissing {
            source_name: wanted.source_name.clone(),
            field,
            header: wanted.header.clone(),
            found: found_headers(headers),
        }),
        [column] => Ok(*column),
        several => Err(MappingError::MappedHeaderAmbiguous {
            source_name: wanted.source_name.clone(),
            field,
            header: wanted.header.clone(),
            columns: several
                .iter()
                .map(|&c| crate::read::row::column_letters(c))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Maps each column not `taken` whose header is a field's alias to that field, in the
/// fields' order; returns the columns that matched a field another column already feeds.
fn map_aliases(
    headers: &[String],
    normalised: &[String],
    columns: &mut BTreeMap<Field, usize>,
    taken: &mut [bool],
) -> Vec<(usize, String, Field)> {
    let mut shadowed = Vec::new();
    for field in Field::ALL {
        for alias in field.aliases() {
            let alias = normalise_header(alias);
            for (column, header) in normalised.iter().enumerate() {
                if taken[column] || *header != alias {
                    continue;
                }
                taken[column] = true;
                match columns.entry(field) {
                    std::collections::btree_map::Entry::Occupied(_) => {
                        shadowed.push((column, headers[column].clone(), field))
                    }
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        slot.insert(column);
                    }
                }
            }
        }
    }
    shadowed
}

/// The headers found, for messages: each in backticks, or `(none)`.
fn found_headers(headers: &[String]) -> String {
    if headers.iter().all(|h| h.trim().is_empty()) {
        "(none)".to_string()
    } else {
        headers
            .iter()
            .filter(|h| !h.trim().is_empty())
            .map(|h| format!("`{h}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn headers_match_loosely() {
        for (header, field) in [
            ("Start Date", Field::StartDate),
            ("start_date", Field::StartDate),
            ("StartDate", Field::StartDate),
            ("START-DATE", Field::StartDate),
            ("Due Date", Field::EndDate),
            ("Run Name", Field::Title),
            ("Test.Cases", Field::TestCaseIds),
            ("Tags", Field::LabelNames),
            ("Owner", Field::AssigneeId),
            ("Run Key", Field::HumanId),
            ("Project", Field::ProjectId),
            ("environments", Field::EnvironmentIds),
        ] {
            // A title column is required, and would shadow a second title alias.
            let (list, column) = if field == Field::Title {
                (vec![header], 0)
            } else {
                (vec!["Title", header], 1)
            };
            let map = map_headers(&headers(&list), &BTreeMap::new()).unwrap();
            assert_eq!(map.column(field), Some(column), "{header}");
        }
    }

    #[test]
    fn unknown_headers_are_warned_once_and_ignored() {
        let h = headers(&["Title", "Priority", ""]);
        let map = map_headers(&h, &BTreeMap::new()).unwrap();
        assert_eq!(map.unknown, vec![(1, "Priority".to_string()), (2, String::new())]);
        let warnings = map.warnings(&h);
        assert_eq!(warnings.len(), 2);
        assert!(
            warnings[0].contains("column B `Priority` matches no field"),
            "{warnings:?}"
        );
        assert!(warnings[1].contains("column C has no header"), "{warnings:?}");
    }

    #[test]
    fn earlier_alias_wins_and_the_other_is_reported() {
        let h = headers(&["Name", "Title"]);
        let map = map_headers(&h, &BTreeMap::new()).unwrap();
        assert_eq!(map.column(Field::Title), Some(1));
        assert_eq!(map.shadowed, vec![(0, "Name".to_string(), Field::Title)]);
    }

    #[test]
    fn explicit_mapping_wins_and_must_exist() {
        let h = headers(&["Titel / Title", "Name"]);
        let mut explicit = BTreeMap::new();
        explicit.insert(
            Field::Title,
            ExplicitColumn {
                header: "Titel / Title".into(),
                source_name: "--column".into(),
            },
        );
        let map = map_headers(&h, &explicit).unwrap();
        assert_eq!(map.column(Field::Title), Some(0));
        assert_eq!(map.shadowed, vec![(1, "Name".to_string(), Field::Title)]);

        explicit.insert(
            Field::LabelNames,
            ExplicitColumn {
                header: "Tags".into(),
                source_name: "--column".into(),
            },
        );
        let err = map_headers(&h, &explicit).unwrap_err().to_string();
        assert!(
            err.contains("label_names") && err.contains("`Tags`") && err.contains("`Titel / Title`"),
            "{err}"
        );
    }

    /// Two columns with one header: `--column` cannot pick one of them, so naming that
    /// header is an error, and the warning about the second does not advise it.
    #[test]
    fn a_header_two_columns_share_cannot_be_chosen_by_name() {
        let h = headers(&["Title", "Title", "Foo", "Foo"]);
        let map = map_headers(&h, &BTreeMap::new()).unwrap();
        assert_eq!(map.column(Field::Title), Some(0));
        let warnings = map.warnings(&h);
        assert!(
            warnings.contains(
                &"column B `Title` has the same header as column A, from which title is read: ignored (to read title from column B, rename one of the two headers)"
                    .to_string()
            ),
            "{warnings:?}"
        );
        for (field, header, columns) in [
            (Field::Description, "Title", "A, B"),
            (Field::Title, "Foo", "C, D"),
            (Field::Title, "FOO", "C, D"),
        ] {
            let explicit = BTreeMap::from([(
                field,
                ExplicitColumn {
                    header: header.into(),
                    source_name: "--column".into(),
                },
            )]);
            let err = map_headers(&h, &explicit).unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "--column maps {field} to the header `{header}`, but columns {columns} all have that header, and nothing tells which one is meant; rename all but one of them"
                )
            );
        }
        // Written exactly, a header is one column even if another matches it loosely.
        let h = headers(&["Title", "Foo", "foo"]);
        let explicit = BTreeMap::from([(
            Field::Description,
            ExplicitColumn {
                header: "foo".into(),
                source_name: "--column".into(),
            },
        )]);
        assert_eq!(map_headers(&h, &explicit).unwrap().column(Field::Description), Some(2));
    }

    #[test]
    fn a_missing_title_lists_the_headers_found() {
        let err = map_headers(&headers(&["Summary", "Start"]), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("`Summary`, `Start`") && err.contains("--column"), "{err}");
    }

    #[test]
    fn column_specs() {
        assert_eq!(
            parse_column_spec("title=Run Name").unwrap(),
            (Field::Title, "Run Name".to_string())
        );
        assert_eq!(
            parse_column_spec("Start Date = Begins").unwrap(),
            (Field::StartDate, "Begins".to_string())
        );
        assert!(matches!(
            parse_column_spec("title"),
            Err(MappingError::BadColumnSpec { .. })
        ));
        assert!(matches!(
            parse_column_spec("title="),
            Err(MappingError::BadColumnSpec { .. })
        ));
        assert!(matches!(
            parse_column_spec("priority=P"),
            Err(MappingError::UnknownField { .. })
        ));
    }
}
