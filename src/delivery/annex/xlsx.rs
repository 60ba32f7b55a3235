//! Blocks to a workbook (rust_xlsxwriter): each `##` heading starts a sheet
//! named by it; a table's header row is bold; a paragraph is one row.

use chrono::{Datelike, Timelike};
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook, XlsxError};

use super::clean;
use super::markup::{Block, plain};

/// Sheet names may not hold these, and stop at 31 characters.
fn sheet_name(text: &str) -> String {
    clean(text)
        .chars()
        .filter(|c| !matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\'))
        .take(31)
        .collect()
}

/// The workbook, dated `now` (otherwise it takes the clock, and a preview
/// would differ from the email that goes).
pub fn build(blocks: &[Block], now: chrono::DateTime<chrono::Utc>) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let created = ExcelDateTime::from_ymd(now.year() as u16, now.month() as u8, now.day() as u8)?
        .and_hms(now.hour() as u16, now.minute() as u8, now.second())?;
    workbook.set_properties(&DocProperties::new().set_creation_datetime(&created));
    let bold = Format::new().set_bold().set_text_wrap();
    let wrap = Format::new().set_text_wrap();
    let mut sheets = 0usize;
    let mut row = 0u32;
    for block in blocks {
        if let Block::Heading(spans) = block {
            workbook
                .add_worksheet()
                .set_name(sheet_name(&plain(spans)))?;
            sheets += 1;
            row = 0;
            continue;
        }
        if sheets == 0 {
            workbook.add_worksheet();
            sheets = 1;
        }
        let s = workbook.worksheet_from_index(sheets - 1)?;
        match block {
            Block::Title(spans) | Block::Question(spans) | Block::Para(spans) => {
                let format = if spans.iter().all(|x| x.bold) {
                    &bold
                } else {
                    &wrap
                };
                s.write_string_with_format(row, 0, clean(&plain(spans)), format)?;
                s.set_column_width(0, 28)?;
                row += 1;
            }
            Block::Table { header, rows } => {
                if header.iter().any(|h| !h.trim().is_empty()) {
                    for (col, h) in (0u16..).zip(header) {
                        s.write_string_with_format(row, col, clean(h), &bold)?;
                        s.set_column_width(col, 18)?;
                    }
                    row += 1;
                }
                for cells in rows {
                    for (col, c) in (0u16..).zip(cells) {
                        s.write_string_with_format(row, col, clean(c), &wrap)?;
                    }
                    row += 1;
                }
            }
            Block::AnswerBox | Block::PageBreak | Block::Heading(_) => {}
        }
    }
    if sheets == 0 {
        workbook.add_worksheet();
    }
    workbook.save_to_buffer()
}
