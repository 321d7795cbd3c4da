//! `.xlsb` workbooks, which no writer here makes: each is built in the test record by
//! record, as [MS-XLSB] lays them out (a record is its type and its size, each a 7-bit
//! varint, then its payload), and zipped with the parts calamine needs.

use std::io::Write;

use super::{PROJECT, Work, far_cells_planned};

/// A record: type and size as 7-bit varints, then the payload.
fn record(kind: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for mut n in [kind, payload.len() as u32] {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out.extend_from_slice(payload);
    out
}

/// An XLWideString: a count of UTF-16 units, then the units.
fn wide(text: &str) -> Vec<u8> {
    let units: Vec<u16> = text.encode_utf16().collect();
    let mut out = (units.len() as u32).to_le_bytes().to_vec();
    units.iter().for_each(|u| out.extend_from_slice(&u.to_le_bytes()));
    out
}

/// One sheet, `Sheet1`, holding `cells` (zero-based row, column, text) in row order.
fn xlsb(cells: &[(u32, u32, &str)]) -> Vec<u8> {
    let (last_row, last_column) = cells.iter().fold((0, 0), |(r, c), cell| (r.max(cell.0), c.max(cell.1)));
    let mut workbook = record(131, &[]); // BrtBeginBook
    workbook.extend(record(143, &[])); // BrtBeginBundleShs
    let mut sheet_entry = [0u32.to_le_bytes(), 1u32.to_le_bytes()].concat(); // visible, tab id 1
    sheet_entry.extend(wide("rId1"));
    sheet_entry.extend(wide("Sheet1"));
    workbook.extend(record(156, &sheet_entry)); // BrtBundleSh
    workbook.extend(record(144, &[])); // BrtEndBundleShs
    workbook.extend(record(132, &[])); // BrtEndBook

    let mut sheet = record(129, &[]); // BrtBeginSheet
    let dimension: Vec<u8> = [0, last_row, 0, last_column]
        .iter()
        .flat_map(|n| n.to_le_bytes())
        .collect();
    sheet.extend(record(148, &dimension)); // BrtWsDim
    sheet.extend(record(145, &[])); // BrtBeginSheetData
    let mut current = None;
    for &(row, column, text) in cells {
        if current != Some(row) {
            current = Some(row);
            let mut header = row.to_le_bytes().to_vec(); // rw
            header.extend(0u32.to_le_bytes()); // ixfe
            header.extend(300u16.to_le_bytes()); // miyRw
            header.extend([0, 0, 0]); // flags
            header.extend(0u32.to_le_bytes()); // ccolspan
            sheet.extend(record(0, &header)); // BrtRowHdr
        }
        let mut cell = column.to_le_bytes().to_vec();
        cell.extend(0u32.to_le_bytes()); // style
        cell.extend(wide(text));
        sheet.extend(record(6, &cell)); // BrtCellSt
    }
    sheet.extend(record(146, &[])); // BrtEndSheetData
    sheet.extend(record(130, &[])); // BrtEndSheet

    const RELATIONSHIPS: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
    const OFFICE: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    let parts: [(&str, Vec<u8>); 5] = [
        (
            "[Content_Types].xml",
            br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Override PartName="/xl/workbook.bin" ContentType="application/vnd.ms-excel.sheet.binary.macroEnabled.main"/><Override PartName="/xl/worksheets/sheet1.bin" ContentType="application/vnd.ms-excel.worksheet"/></Types>"#
                .to_vec(),
        ),
        (
            "_rels/.rels",
            format!(r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{RELATIONSHIPS}"><Relationship Id="rId1" Type="{OFFICE}/officeDocument" Target="xl/workbook.bin"/></Relationships>"#).into_bytes(),
        ),
        ("xl/workbook.bin", workbook),
        (
            "xl/_rels/workbook.bin.rels",
            format!(r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{RELATIONSHIPS}"><Relationship Id="rId1" Type="{OFFICE}/worksheet" Target="worksheets/sheet1.bin"/></Relationships>"#).into_bytes(),
        ),
        ("xl/worksheets/sheet1.bin", sheet),
    ];
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in parts {
        zip.start_file(name, stored).unwrap();
        zip.write_all(&data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Cells far apart in an `.xlsb` (A1, BL1, row 1,048,576 and its last column, XFD) are read
/// with their own values and row numbers: the sheet is streamed, so the box they span,
/// declared in the sheet's dimension record, costs nothing. The dimension claims more
/// columns than `--max-columns`, so the width is the header row's and the value in XFD,
/// under no header, is dropped (docs/DESIGN.md, "Reading").
#[test]
fn xlsb_cells_far_apart_plan_with_their_row_numbers() {
    let w = Work::new();
    w.create(
        "far.xlsb",
        xlsb(&[
            (0, 0, "Title"),
            (0, 63, "Labels"),
            (1, 0, "First run"),
            (1_048_575, 0, "Last run"),
            (1_048_575, 63, "far;away"),
            (1_048_575, 16_383, "past the headers"),
        ]),
    );
    let run = w.dry_run("far.xlsb", &["--project-id", PROJECT]);
    far_cells_planned(&run);
}
