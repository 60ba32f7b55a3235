//! Blocks to a Word document, written as WordprocessingML in schema order.
//!
//! The parts every document shares (styles, settings, fonts, theme, content
//! types and relationships) are compressed once into a prepared archive and
//! copied as they are; each document writes only its body and properties.

use std::io::{Cursor, Write};
use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Timelike, Utc};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::markup::{Block, Span};
use super::{clean, fit};

/// A4 (11,906 by 16,838 twentieths of a point) with 2.54 cm margins.
const PAGE_WIDTH: u32 = 11_906;
const PAGE_HEIGHT: u32 = 16_838;
const MARGIN: u32 = 1_440;
/// The width between the margins, which every table fills and none exceeds.
const TEXT_WIDTH: u32 = PAGE_WIDTH - 2 * MARGIN;

/// Minimum height of a box left for a written answer.
const ANSWER_BOX_HEIGHT: u32 = 1_800;
/// Minimum height of a table row left to fill in by hand.
const ROW_HEIGHT: u32 = 400;

const W: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";

/// The shared parts, by their names in the package.
const SHARED_PARTS: [(&str, &str); 8] = [
    (
        "[Content_Types].xml",
        include_str!("word/content_types.xml"),
    ),
    ("_rels/.rels", include_str!("word/rels.xml")),
    (
        "word/_rels/document.xml.rels",
        include_str!("word/document.xml.rels"),
    ),
    ("word/styles.xml", include_str!("word/styles.xml")),
    ("word/settings.xml", include_str!("word/settings.xml")),
    ("word/fontTable.xml", include_str!("word/fontTable.xml")),
    ("word/theme/theme1.xml", include_str!("word/theme1.xml")),
    ("docProps/app.xml", include_str!("word/app.xml")),
];

/// The shared parts compressed once, as a small archive to copy from.
static SHARED: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    // A fixed time keeps every document's bytes a function of its content.
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, text) in SHARED_PARTS {
        zip.start_file(name, options).expect("an in-memory archive");
        zip.write_all(text.as_bytes())
            .expect("an in-memory archive");
    }
    zip.finish().expect("an in-memory archive").into_inner()
});

/// The document's bytes, dated `now`, titled by its first title and
/// authored by `author`.
pub fn build(
    blocks: &[Block],
    now: DateTime<Utc>,
    author: &str,
) -> zip::result::ZipResult<Vec<u8>> {
    let title = blocks
        .iter()
        .find_map(|b| match b {
            Block::Title(spans) => Some(clean(&super::markup::plain(spans))),
            _ => None,
        })
        .unwrap_or_default();
    let mut zip = ZipWriter::new(Cursor::new(Vec::with_capacity(16 * 1024)));
    let mut shared = ZipArchive::new(Cursor::new(SHARED.as_slice()))?;
    for i in 0..shared.len() {
        zip.raw_copy_file(shared.by_index_raw(i)?)?;
    }
    let time = zip::DateTime::from_date_and_time(
        now.year().clamp(1980, 2107) as u16,
        now.month() as u8,
        now.day() as u8,
        now.hour() as u8,
        now.minute() as u8,
        now.second().min(59) as u8,
    )
    .unwrap_or_default();
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(time);
    zip.start_file("docProps/core.xml", options)?;
    zip.write_all(core(&title, author, now).as_bytes())?;
    zip.start_file("word/document.xml", options)?;
    zip.write_all(document(blocks).as_bytes())?;
    Ok(zip.finish()?.into_inner())
}

fn core(title: &str, author: &str, now: DateTime<Utc>) -> String {
    let at = now.format("%Y-%m-%dT%H:%M:%SZ");
    let (title, author) = (escape(title), escape(&clean(author)));
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
         <cp:coreProperties xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\" \
         xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:dcterms=\"http://purl.org/dc/terms/\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
         <dc:title>{title}</dc:title><dc:creator>{author}</dc:creator>\
         <cp:lastModifiedBy>{author}</cp:lastModifiedBy><dc:language>en-GB</dc:language>\
         <dcterms:created xsi:type=\"dcterms:W3CDTF\">{at}</dcterms:created>\
         <dcterms:modified xsi:type=\"dcterms:W3CDTF\">{at}</dcterms:modified></cp:coreProperties>"
    )
}

/// `word/document.xml` for the blocks.
fn document(blocks: &[Block]) -> String {
    let mut xml = String::with_capacity(8 * 1024);
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n");
    xml.push_str(&format!("<w:document xmlns:w=\"{W}\"><w:body>"));
    for block in blocks {
        match block {
            Block::Title(s) => paragraph(&mut xml, Some("Title"), s),
            Block::Heading(s) => paragraph(&mut xml, Some("Heading1"), s),
            Block::Question(s) => paragraph(&mut xml, Some("Heading2"), s),
            Block::Para(s) => paragraph(&mut xml, None, s),
            Block::Table { header, rows } => {
                table(&mut xml, header, rows);
                xml.push_str("<w:p/>");
            }
            Block::AnswerBox => {
                answer_box(&mut xml);
                xml.push_str("<w:p/>");
            }
            Block::PageBreak => xml.push_str("<w:p><w:r><w:br w:type=\"page\"/></w:r></w:p>"),
        }
    }
    xml.push_str(&format!(
        "<w:sectPr><w:pgSz w:w=\"{PAGE_WIDTH}\" w:h=\"{PAGE_HEIGHT}\"/>\
         <w:pgMar w:top=\"{MARGIN}\" w:right=\"{MARGIN}\" w:bottom=\"{MARGIN}\" w:left=\"{MARGIN}\" \
         w:header=\"708\" w:footer=\"708\" w:gutter=\"0\"/></w:sectPr></w:body></w:document>"
    ));
    xml
}

fn paragraph(xml: &mut String, style: Option<&str>, spans: &[Span]) {
    xml.push_str("<w:p>");
    if let Some(style) = style {
        xml.push_str(&format!("<w:pPr><w:pStyle w:val=\"{style}\"/></w:pPr>"));
    }
    for span in spans {
        run(xml, &fit(&span.text), span.bold, span.italic);
    }
    xml.push_str("</w:p>");
}

fn run(xml: &mut String, text: &str, bold: bool, italic: bool) {
    if text.is_empty() {
        return;
    }
    xml.push_str("<w:r>");
    if bold || italic {
        xml.push_str("<w:rPr>");
        if bold {
            xml.push_str("<w:b/><w:bCs/>");
        }
        if italic {
            xml.push_str("<w:i/><w:iCs/>");
        }
        xml.push_str("</w:rPr>");
    }
    // Spaces are kept: between runs ("Label: value"), and in tick boxes and
    // signature lines.
    xml.push_str("<w:t xml:space=\"preserve\">");
    xml.push_str(&escape(text));
    xml.push_str("</w:t></w:r>");
}

fn table_start(xml: &mut String, widths: &[u32]) {
    xml.push_str(&format!(
        "<w:tbl><w:tblPr><w:tblStyle w:val=\"TableGrid\"/><w:tblW w:w=\"{TEXT_WIDTH}\" w:type=\"dxa\"/>\
         <w:tblLayout w:type=\"fixed\"/><w:tblLook w:val=\"04A0\" w:firstRow=\"1\" w:lastRow=\"0\" \
         w:firstColumn=\"0\" w:lastColumn=\"0\" w:noHBand=\"1\" w:noVBand=\"1\"/></w:tblPr><w:tblGrid>"
    ));
    for w in widths {
        xml.push_str(&format!("<w:gridCol w:w=\"{w}\"/>"));
    }
    xml.push_str("</w:tblGrid>");
}

/// Column widths that fill the text width exactly.
fn widths(columns: usize) -> Vec<u32> {
    let columns = columns.max(1) as u32;
    let each = TEXT_WIDTH / columns;
    let mut widths = vec![each; columns as usize];
    widths[0] += TEXT_WIDTH - each * columns;
    widths
}

fn cell(xml: &mut String, width: u32, text: &str, header: bool) {
    xml.push_str(&format!(
        "<w:tc><w:tcPr><w:tcW w:w=\"{width}\" w:type=\"dxa\"/>"
    ));
    if header {
        xml.push_str("<w:shd w:val=\"clear\" w:color=\"auto\" w:fill=\"D9D9D9\"/>");
    }
    xml.push_str("</w:tcPr><w:p><w:pPr><w:pStyle w:val=\"TableText\"/></w:pPr>");
    run(xml, &clean(text), header, false);
    xml.push_str("</w:p></w:tc>");
}

fn table(xml: &mut String, header: &[String], rows: &[Vec<String>]) {
    let widths = widths(header.len());
    table_start(xml, &widths);
    // The header row repeats on each page and is never split.
    xml.push_str("<w:tr><w:trPr><w:cantSplit/><w:tblHeader/></w:trPr>");
    for (w, h) in widths.iter().zip(header) {
        cell(xml, *w, h, true);
    }
    xml.push_str("</w:tr>");
    for cells in rows {
        xml.push_str(&format!(
            "<w:tr><w:trPr><w:cantSplit/><w:trHeight w:val=\"{ROW_HEIGHT}\" w:hRule=\"atLeast\"/></w:trPr>"
        ));
        // Every row has the header's cells, however many the source gave.
        for (i, w) in widths.iter().enumerate() {
            cell(xml, *w, cells.get(i).map_or("", String::as_str), false);
        }
        xml.push_str("</w:tr>");
    }
    xml.push_str("</w:tbl>");
}

fn answer_box(xml: &mut String) {
    table_start(xml, &[TEXT_WIDTH]);
    xml.push_str(&format!(
        "<w:tr><w:trPr><w:trHeight w:val=\"{ANSWER_BOX_HEIGHT}\" w:hRule=\"atLeast\"/></w:trPr>\
         <w:tc><w:tcPr><w:tcW w:w=\"{TEXT_WIDTH}\" w:type=\"dxa\"/></w:tcPr><w:p/></w:tc></w:tr></w:tbl>"
    ));
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_fill_the_text_width_exactly() {
        for n in 1..=7 {
            assert_eq!(widths(n).iter().sum::<u32>(), TEXT_WIDTH, "{n} columns");
        }
    }

    #[test]
    fn the_shared_parts_are_prepared_once_and_readable() {
        let mut archive = ZipArchive::new(Cursor::new(SHARED.as_slice())).unwrap();
        assert_eq!(archive.len(), SHARED_PARTS.len());
        assert!(archive.by_name("word/styles.xml").is_ok());
    }
}
