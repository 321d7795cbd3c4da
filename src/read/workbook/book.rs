//! A workbook opened with calamine, and the sheet and header row to read in it: the sheet
//! named, or the first visible one with a title header in its first 20 rows.

use std::io::{Read, Seek, SeekFrom};

use calamine::{Data, DataRef, Dimensions, Ods, Reader, SheetType, SheetVisible, Sheets, Xls, XlsOptions, Xlsb, Xlsx};

use super::Kind;
use crate::read::SourceError;

/// The signature of an OLE compound file: a legacy .xls, or an encrypted OOXML package.
pub(super) const OLE_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// The most cells an .xls or .ods workbook's sheets may span together, from each sheet's
/// first value to its last. calamine reads these formats whole, every sheet when the file
/// is opened, each as a dense range of 32-byte values over that area: 4 million cells is
/// about 130 MB, a full .xls sheet (65,536 rows) 61 columns wide. .xlsx and .xlsb stream
/// and have no such limit.
pub(crate) const MAX_CELLS: usize = 4_000_000;

/// Turns calamine's errors into the tool's, knowing what the file was taken for.
pub(super) struct Blame {
    kind: Kind,
    /// The file starts as an OLE compound file does.
    ole: bool,
    name: String,
}

impl Blame {
    pub(super) fn error(&self, err: calamine::Error) -> SourceError {
        workbook_error(err, self.kind, self.ole, &self.name)
    }
}

/// Opens the workbook (an .xls or .ods is read whole here, within [`MAX_CELLS`]).
pub(super) fn open<RS: Read + Seek>(mut rs: RS, kind: Kind, name: &str) -> Result<(Sheets<RS>, Blame), SourceError> {
    let mut magic = [0u8; 8];
    let ole = rs.read_exact(&mut magic).is_ok() && magic == OLE_MAGIC;
    rs.seek(SeekFrom::Start(0)).map_err(|source| SourceError::Open {
        name: name.to_owned(),
        source,
    })?;
    let blame = Blame {
        kind,
        ole,
        name: name.to_owned(),
    };
    let failed = |err: calamine::Error| blame.error(err);
    let book = match kind {
        Kind::Xlsx => Sheets::Xlsx(Xlsx::new(rs).map_err(|e| failed(e.into()))?),
        Kind::Xlsb => Sheets::Xlsb(Xlsb::new(rs).map_err(|e| failed(e.into()))?),
        Kind::Xls => {
            let mut options = XlsOptions::default();
            options.max_cells = Some(MAX_CELLS);
            Sheets::Xls(Xls::new_with_options(rs, options).map_err(|e| failed(e.into()))?)
        }
        Kind::Ods => Sheets::Ods(Ods::with_max_cells(rs, MAX_CELLS).map_err(|e| failed(e.into()))?),
    };
    Ok((book, blame))
}

/// Where the table is: the sheet, the header row (1-based) when it was looked for and
/// found, and what the run says about it.
#[derive(Debug, Default)]
pub(super) struct Table {
    pub(super) sheet: String,
    pub(super) header_row: Option<usize>,
    pub(super) notes: Vec<String>,
}

/// What to look for: the sheet named (`--sheet`), and whether to look for the header row.
pub(super) struct Wanted<'a> {
    pub(super) sheet: Option<&'a str>,
    pub(super) find_table: bool,
    /// Headers mapped to the title, looked for beside the title's aliases.
    pub(super) titles: &'a [String],
}

/// The sheet to read and its header row, as [`Wanted`].
pub(super) fn locate<RS: Read + Seek>(
    book: &mut Sheets<RS>,
    wanted: &Wanted<'_>,
    name: &str,
) -> Result<Table, SourceError> {
    let mut table = Table::default();
    let found = match wanted.find_table && wanted.sheet.is_none() {
        true => find_table(book, &mut table, wanted.titles, name)?,
        false => None,
    };
    table.sheet = match found {
        Some(sheet) => sheet,
        None => pick_sheet(book.sheets_metadata(), wanted.sheet, name)?,
    };
    // The sheet is named: only its header row is looked for (row 1 when none is found,
    // so the mapping's error lists what row 1 holds).
    if wanted.find_table && wanted.sheet.is_some() {
        let sheet = table.sheet.clone();
        table.header_row = title_header_row(&top_texts(book, &sheet), wanted.titles);
        if let Some(row) = table.header_row.filter(|row| *row > 1) {
            table.notes.push(format!(
                "reading sheet `{sheet}` from row {row} (the first with a title header)"
            ));
        }
    }
    Ok(table)
}

/// The sheet's merged regions: an .xlsx file's (calamine reads them for no other format),
/// found by a pass over the sheet, since they follow its cells.
pub(super) fn merged<RS: Read + Seek>(book: &mut Sheets<RS>, sheet: &str) -> Vec<Dimensions> {
    match book {
        Sheets::Xlsx(xlsx) => xlsx.merge_cells_by_sheet_name(sheet).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Rows looked at for a title header, from the top of each sheet.
const HEADER_SEARCH_ROWS: usize = 20;

/// The first visible worksheet with a title header (an alias, or one of `titles`) in one
/// of its first 20 rows, and that row. When none has one but some has text there: an error
/// listing the sheets and the rows looked at. `None` when no sheet has any text: the first
/// visible sheet is read as without the search (an empty sheet is a quiet night).
fn find_table<RS: Read + Seek>(
    book: &mut Sheets<RS>,
    table: &mut Table,
    titles: &[String],
    name: &str,
) -> Result<Option<String>, SourceError> {
    let visible: Vec<String> = book
        .sheets_metadata()
        .iter()
        .filter(|s| s.typ == SheetType::WorkSheet && s.visible == SheetVisible::Visible)
        .map(|s| s.name.clone())
        .collect();
    let mut looked = Vec::new();
    let mut any_text = false;
    for (index, sheet) in visible.iter().enumerate() {
        let texts = top_texts(book, sheet);
        any_text |= !texts.is_empty();
        match title_header_row(&texts, titles) {
            Some(row) => {
                // Only a move away from sheet one, row 1 is news.
                if index > 0 || row > 1 {
                    table.notes.push(format!(
                        "reading sheet `{sheet}`, headers on row {row} (the first with a title header)"
                    ));
                }
                table.header_row = Some(row);
                return Ok(Some(sheet.clone()));
            }
            None => looked.push(rows_looked_at(sheet, &texts)),
        }
    }
    if !any_text {
        return Ok(None);
    }
    Err(SourceError::NoTitleHeader {
        name: name.to_owned(),
        looked: looked.join("; "),
    })
}

/// `` sheet `Cover`: row 1 `Exported from LegacyTM 7.2`, row 3 `Owner: QA` ``: each row's
/// first text, for up to five rows.
fn rows_looked_at(sheet: &str, texts: &[(usize, String)]) -> String {
    let mut rows: Vec<(usize, &str)> = Vec::new();
    for (row, text) in texts {
        if !rows.iter().any(|(r, _)| r == row) {
            rows.push((*row, text.as_str()));
        }
    }
    rows.sort_unstable();
    if rows.is_empty() {
        return format!("sheet `{sheet}` (no text)");
    }
    let shown: Vec<String> = rows
        .iter()
        .take(5)
        .map(|(row, text)| {
            let text: String = text.chars().take(40).collect();
            format!("row {} `{text}`", row + 1)
        })
        .collect();
    let more = if rows.len() > 5 {
        format!(", {} more rows", rows.len() - 5)
    } else {
        String::new()
    };
    format!("sheet `{sheet}`: {}{more}", shown.join(", "))
}

/// The text cells of a sheet's first 20 rows, as (0-based row, text). An xlsx or xlsb
/// sheet is read only that far, so a huge sheet costs nothing here (and its size is
/// checked, as always, when it is read).
fn top_texts<RS: Read + Seek>(book: &mut Sheets<RS>, sheet: &str) -> Vec<(usize, String)> {
    let mut texts = Vec::new();
    let mut take = |row: u32, text: Option<&str>| {
        if let Some(text) = text {
            texts.push((row as usize, text.to_owned()));
        }
        (row as usize) < HEADER_SEARCH_ROWS
    };
    let text_of = |d: &DataRef<'_>| match d {
        DataRef::String(s) => Some(s.clone()),
        DataRef::SharedString(s) => Some((*s).to_owned()),
        _ => None,
    };
    match book {
        Sheets::Xlsx(xlsx) => {
            if let Ok(mut cells) = xlsx.worksheet_cells_reader(sheet) {
                while let Ok(Some(cell)) = cells.next_cell() {
                    if !take(cell.get_position().0, text_of(cell.get_value()).as_deref()) {
                        break;
                    }
                }
            }
        }
        Sheets::Xlsb(xlsb) => {
            if let Ok(mut cells) = xlsb.worksheet_cells_reader(sheet) {
                while let Ok(Some(cell)) = cells.next_cell() {
                    if !take(cell.get_position().0, text_of(cell.get_value()).as_deref()) {
                        break;
                    }
                }
            }
        }
        _ => {
            if let Ok(range) = book.worksheet_range(sheet) {
                for cell in range.used_cells() {
                    let (row, _, data) = cell;
                    let row = row + range.start().map_or(0, |s| s.0 as usize);
                    if let Data::String(s) = data
                        && row < HEADER_SEARCH_ROWS
                    {
                        texts.push((row, s.clone()));
                    }
                }
            }
        }
    }
    texts
}

/// The 1-based sheet row, of the first 20, with a cell that is a title header: an alias of
/// the title, or one of `mapped`.
fn title_header_row(texts: &[(usize, String)], mapped: &[String]) -> Option<usize> {
    let titles: Vec<String> = crate::read::mapping::Field::Title
        .aliases()
        .iter()
        .copied()
        .chain(mapped.iter().map(String::as_str))
        .map(crate::read::mapping::normalise_header)
        .collect();
    texts
        .iter()
        .filter(|(row, text)| {
            *row < HEADER_SEARCH_ROWS && titles.contains(&crate::read::mapping::normalise_header(text))
        })
        .map(|(row, _)| row + 1)
        .min()
}

fn workbook_error(err: calamine::Error, kind: Kind, ole: bool, name: &str) -> SourceError {
    let name = name.to_owned();
    match err {
        calamine::Error::Xlsx(calamine::XlsxError::Password)
        | calamine::Error::Xlsb(calamine::XlsbError::Password)
        | calamine::Error::Xls(calamine::XlsError::Password)
        | calamine::Error::Ods(calamine::OdsError::Password) => SourceError::Encrypted { name },
        calamine::Error::Ods(calamine::OdsError::CellLimitExceeded { requested, max })
        | calamine::Error::Xls(calamine::XlsError::CellLimitExceeded { requested, max }) => SourceError::TooManyCells {
            name,
            cells: requested,
            limit: max,
        },
        _ if ole && kind != Kind::Xls => SourceError::Workbook {
            name,
            detail: "it is an OLE file, as .xls and password-protected workbooks are, not a zip package".to_owned(),
        },
        err => SourceError::Workbook {
            name,
            detail: err.to_string(),
        },
    }
}

/// `--sheet` matches exactly, else case-insensitively when that is unambiguous.
/// Without it: the first visible worksheet, as Excel would open it.
fn pick_sheet(sheets: &[calamine::Sheet], wanted: Option<&str>, name: &str) -> Result<String, SourceError> {
    if let Some(wanted) = wanted {
        if let Some(sheet) = sheets.iter().find(|s| s.name == wanted) {
            return Ok(sheet.name.clone());
        }
        let folded = wanted.trim().to_lowercase();
        let mut matches = sheets.iter().filter(|s| s.name.trim().to_lowercase() == folded);
        if let (Some(sheet), None) = (matches.next(), matches.next()) {
            return Ok(sheet.name.clone());
        }
        let available = sheets
            .iter()
            .map(|s| format!("`{}`", s.name))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(SourceError::SheetNotFound {
            name: name.to_owned(),
            wanted: wanted.to_owned(),
            available: if available.is_empty() {
                "none".to_owned()
            } else {
                available
            },
        });
    }
    let worksheet = |s: &&calamine::Sheet| s.typ == SheetType::WorkSheet;
    sheets
        .iter()
        .filter(worksheet)
        .find(|s| s.visible == SheetVisible::Visible)
        .or_else(|| sheets.iter().find(worksheet))
        .or_else(|| sheets.first())
        .map(|s| s.name.clone())
        .ok_or_else(|| SourceError::NoSheets { name: name.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_row_is_the_first_of_twenty_with_a_title_header() {
        let texts = |cells: &[(usize, &str)]| cells.iter().map(|(r, t)| (*r, t.to_string())).collect::<Vec<_>>();
        for (cells, want) in [
            (
                texts(&[(0, "Exported from LegacyTM"), (2, "Run Name"), (2, "Labels")]),
                Some(3),
            ),
            (texts(&[(0, "title"), (5, "Title")]), Some(1)),
            (texts(&[(0, "Owner: QA"), (3, "Notes")]), None),
            (texts(&[(20, "Title")]), None),
        ] {
            assert_eq!(title_header_row(&cells, &[]), want, "{cells:?}");
        }
    }
}
