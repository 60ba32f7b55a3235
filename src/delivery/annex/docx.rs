//! Blocks to a Word document (docx-rs).

use std::io::Cursor;

use docx_rs::{
    AlignmentType, BreakType, Docx, HeightRule, Paragraph, Run, Shading, Style, StyleType, Table,
    TableCell, TableRow, WidthType,
};

use super::clean;
use super::markup::{Block, Span};

/// Usable width of an A4 page with docx-rs's default margins, in twentieths of a point.
const TEXT_WIDTH: usize = 9_000;

/// Minimum height of a box left for a written answer, in twentieths of a point.
const ANSWER_BOX_HEIGHT: f32 = 1_800.0;

fn styled() -> Docx {
    let heading = |id: &str, name: &str, size: usize, level: usize| {
        Style::new(id, StyleType::Paragraph)
            .name(name)
            .size(size)
            .bold()
            .outline_lvl(level)
    };
    Docx::new()
        .default_size(22)
        .add_style(heading("Title", "Title", 36, 0))
        .add_style(heading("Heading1", "heading 1", 28, 1))
        .add_style(heading("Heading2", "heading 2", 24, 2))
}

fn runs(paragraph: Paragraph, spans: &[Span]) -> Paragraph {
    spans.iter().fold(paragraph, |p, s| {
        // Spaces between runs matter ("Label: value"); docx-rs keeps them.
        let mut run = Run::new().add_text(clean_keep_edges(&s.text));
        if s.bold {
            run = run.bold();
        }
        if s.italic {
            run = run.italic();
        }
        p.add_run(run)
    })
}

/// `clean`, but keeping one leading or trailing space where the text had one.
fn clean_keep_edges(text: &str) -> String {
    let core = clean(text);
    let lead = if text.starts_with(char::is_whitespace) && !core.is_empty() {
        " "
    } else {
        ""
    };
    let trail = if text.ends_with(char::is_whitespace) {
        " "
    } else {
        ""
    };
    if core.is_empty() {
        return trail.to_string();
    }
    format!("{lead}{core}{trail}")
}

fn cell(text: &str, width: usize, header: bool) -> TableCell {
    let mut run = Run::new().add_text(clean(text));
    if header {
        run = run.bold();
    }
    let cell = TableCell::new()
        .width(width, WidthType::Dxa)
        .add_paragraph(Paragraph::new().align(AlignmentType::Left).add_run(run));
    if header {
        cell.shading(Shading::new().fill("D9D9D9"))
    } else {
        cell
    }
}

fn table(header: &[String], rows: &[Vec<String>]) -> Table {
    let columns = header.len().max(1);
    let width = TEXT_WIDTH / columns;
    let header_row = TableRow::new(header.iter().map(|h| cell(h, width, true)).collect());
    let body = rows.iter().map(|cells| {
        TableRow::new(cells.iter().map(|c| cell(c, width, false)).collect())
            .row_height(400.0)
            .height_rule(HeightRule::AtLeast)
    });
    Table::new(std::iter::once(header_row).chain(body).collect()).set_grid(vec![width; columns])
}

fn answer_box() -> Table {
    let cell = TableCell::new()
        .width(TEXT_WIDTH, WidthType::Dxa)
        .add_paragraph(Paragraph::new());
    let row = TableRow::new(vec![cell])
        .row_height(ANSWER_BOX_HEIGHT)
        .height_rule(HeightRule::AtLeast);
    Table::new(vec![row]).set_grid(vec![TEXT_WIDTH])
}

/// The document's bytes. `now` dates it (docx-rs would say 1 January 1970).
pub fn build(blocks: &[Block], now: &str) -> Result<Vec<u8>, String> {
    let mut doc = styled();
    for block in blocks {
        doc = match block {
            Block::Title(s) => doc.add_paragraph(runs(Paragraph::new().style("Title"), s)),
            Block::Heading(s) => doc.add_paragraph(runs(Paragraph::new().style("Heading1"), s)),
            Block::Question(s) => doc.add_paragraph(runs(Paragraph::new().style("Heading2"), s)),
            Block::Para(s) => doc.add_paragraph(runs(Paragraph::new(), s)),
            Block::Table { header, rows } => doc
                .add_table(table(header, rows))
                .add_paragraph(Paragraph::new()),
            Block::AnswerBox => doc.add_table(answer_box()).add_paragraph(Paragraph::new()),
            Block::PageBreak => {
                doc.add_paragraph(Paragraph::new().add_run(Run::new().add_break(BreakType::Page)))
            }
        };
    }
    let mut bytes = Cursor::new(Vec::new());
    doc.created_at(now)
        .updated_at(now)
        .build()
        .pack(&mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(bytes.into_inner())
}
