//! Blocks to a workbook (rust_xlsxwriter): each `##` heading starts a sheet
//! named by it; a table's header row is bold; a paragraph is one row.

use chrono::{Datelike, Timelike};
use rust_xlsxwriter::{DataValidation, DocProperties, ExcelDateTime, Format, Workbook, XlsxError};

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

/// Rows below a header that a Yes/No column checks: more children than any
/// authority returns.
const CHECKED_ROWS: u32 = 5000;

/// The workbook, dated `now` (otherwise it takes the clock, and a preview
/// would differ from the email that goes), titled by its first title and
/// authored by `author`.
pub fn build(
    blocks: &[Block],
    now: chrono::DateTime<chrono::Utc>,
    author: &str,
) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let created = ExcelDateTime::from_ymd(now.year() as u16, now.month() as u8, now.day() as u8)?
        .and_hms(now.hour() as u16, now.minute() as u8, now.second())?;
    let title = blocks
        .iter()
        .find_map(|b| match b {
            Block::Title(spans) | Block::Heading(spans) => Some(clean(&plain(spans))),
            _ => None,
        })
        .unwrap_or_default();
    workbook.set_properties(
        &DocProperties::new()
            .set_creation_datetime(&created)
            .set_title(&title)
            .set_author(author),
    );
    let yes_no = DataValidation::new().allow_list_strings(&["Yes", "No"])?;
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
                        let h = clean(h);
                        s.write_string_with_format(row, col, &h, &bold)?;
                        s.set_column_width(col, (h.chars().count() + 4).clamp(18, 40) as f64)?;
                        if h == crate::config::AUDITED_COLUMN {
                            s.add_data_validation(row + 1, col, row + CHECKED_ROWS, col, &yes_no)?;
                        }
                    }
                    // The header stays in view as people scroll down.
                    s.set_freeze_panes(row + 1, 0)?;
                    row += 1;
                } else {
                    // A table of names and explanations: room for both to be read.
                    s.set_column_width(0, 28)?;
                    s.set_column_width(1, 90)?;
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
