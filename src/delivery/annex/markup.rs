//! The documents' layout language: the Markdown a document template renders
//! to, read (with pulldown-cmark) into the few blocks a form needs.
//!
//! `#` is the title, `##` a heading (in a workbook, a new sheet), `###` a
//! question; a paragraph may use `**bold**` and `*italic*`; a pipe table is
//! a table; an empty fenced block (```` ``` ````) is a box to write in; `---`
//! is a page break; list items become paragraphs with a bullet.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// A piece of text with its emphasis.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Span {
    pub text: String,
    pub bold: bool,
    pub italic: bool,
}

/// One block of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Title(Vec<Span>),
    Heading(Vec<Span>),
    Question(Vec<Span>),
    Para(Vec<Span>),
    Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    AnswerBox,
    PageBreak,
}

/// The plain text of some spans.
pub fn plain(spans: &[Span]) -> String {
    spans.iter().map(|s| s.text.as_str()).collect()
}

/// Reads rendered Markdown into blocks.
pub fn parse(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut spans: Vec<Span> = Vec::new();
    let (mut bold, mut italic) = (0u32, 0u32);
    let mut table: Option<(Vec<String>, Vec<Vec<String>>)> = None;
    let mut row: Vec<String> = Vec::new();
    let mut in_head = false;
    let mut bullet = false;
    // The parser splits text at escapes; one run per change of emphasis.
    let push_text = |spans: &mut Vec<Span>, text: &str, bold: u32, italic: u32| {
        let (bold, italic) = (bold > 0, italic > 0);
        match spans.last_mut() {
            Some(last) if last.bold == bold && last.italic == italic => last.text.push_str(text),
            _ => spans.push(Span {
                text: text.to_string(),
                bold,
                italic,
            }),
        }
    };
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Strong) => bold += 1,
            Event::End(TagEnd::Strong) => bold = bold.saturating_sub(1),
            Event::Start(Tag::Emphasis) => italic += 1,
            Event::End(TagEnd::Emphasis) => italic = italic.saturating_sub(1),
            Event::Start(Tag::Item) => bullet = true,
            Event::Text(t) | Event::Code(t) => {
                if bullet {
                    push_text(&mut spans, "\u{2022} ", 0, 0);
                    bullet = false;
                }
                push_text(&mut spans, &t, bold, italic);
            }
            Event::SoftBreak | Event::HardBreak => push_text(&mut spans, " ", bold, italic),
            Event::End(TagEnd::Heading(level)) => {
                let text = std::mem::take(&mut spans);
                blocks.push(match level {
                    HeadingLevel::H1 => Block::Title(text),
                    HeadingLevel::H2 => Block::Heading(text),
                    _ => Block::Question(text),
                });
            }
            Event::End(TagEnd::Paragraph | TagEnd::Item)
                if table.is_none() && !spans.is_empty() =>
            {
                blocks.push(Block::Para(std::mem::take(&mut spans)));
            }
            Event::Start(Tag::CodeBlock(_)) => blocks.push(Block::AnswerBox),
            Event::Rule => blocks.push(Block::PageBreak),
            Event::Start(Tag::Table(_)) => table = Some((Vec::new(), Vec::new())),
            Event::Start(Tag::TableHead) => in_head = true,
            Event::End(TagEnd::TableCell) => row.push(plain(&std::mem::take(&mut spans))),
            Event::End(TagEnd::TableHead) => {
                in_head = false;
                if let Some((header, _)) = &mut table {
                    *header = std::mem::take(&mut row);
                }
            }
            Event::End(TagEnd::TableRow) if !in_head => {
                if let Some((_, rows)) = &mut table {
                    rows.push(std::mem::take(&mut row));
                }
            }
            Event::End(TagEnd::Table) => {
                if let Some((header, rows)) = table.take() {
                    blocks.push(Block::Table { header, rows });
                }
            }
            _ => {}
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_construct_becomes_its_block() {
        let blocks = parse(
            "# Title\n\n## Part\n\n### 1. Question?\n\n**Label:** value *note*\n\n\
             | A | B |\n|---|---|\n| 1 | 2 |\n|  |  |\n\n```\n```\n\n---\n\n- one\n- two\n",
        );
        assert_eq!(
            plain(match &blocks[0] {
                Block::Title(s) => s,
                _ => panic!(),
            }),
            "Title"
        );
        assert!(matches!(&blocks[1], Block::Heading(_)));
        assert!(matches!(&blocks[2], Block::Question(_)));
        let Block::Para(spans) = &blocks[3] else {
            panic!("{blocks:?}")
        };
        assert!(spans[0].bold && spans[0].text == "Label:");
        assert!(spans.iter().any(|s| s.italic && s.text == "note"));
        assert_eq!(
            blocks[4],
            Block::Table {
                header: vec!["A".into(), "B".into()],
                rows: vec![
                    vec!["1".into(), "2".into()],
                    vec![String::new(), String::new()]
                ],
            }
        );
        assert_eq!(blocks[5], Block::AnswerBox);
        assert_eq!(blocks[6], Block::PageBreak);
        assert_eq!(
            plain(match &blocks[7] {
                Block::Para(s) => s,
                _ => panic!(),
            }),
            "\u{2022} one"
        );
    }

    #[test]
    fn escaped_record_text_stays_literal() {
        let value = crate::delivery::compose::templates::markdown_escape("**A** | <b> # x");
        let blocks = parse(&format!(
            "| K | V |\n|---|---|\n| k | {value} |\n\n{value}\n"
        ));
        let Block::Table { rows, .. } = &blocks[0] else {
            panic!()
        };
        assert_eq!(rows[0][1], "**A** | <b> # x");
        let Block::Para(spans) = &blocks[1] else {
            panic!()
        };
        assert_eq!(plain(spans), "**A** | <b> # x");
        assert!(spans.iter().all(|s| !s.bold));
    }
}
