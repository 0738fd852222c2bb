//! Lays a `Report` out as an A4 PDF with `pdf-writer`: a title block, the sections, and on every
//! page a footer with the document id, the generation time, a confidentiality line and the page
//! number. Text is real text (Helvetica, WinAnsi encoding), so it can be selected and searched.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use super::content::Report;

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
const FOOTER: f32 = 40.0;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

#[derive(Clone, Copy)]
enum Face {
    Regular,
    Bold,
}

struct Line {
    face: Face,
    size: f32,
    x: f32,
    y: f32,
    text: String,
}

/// The PDF and how many pages it has.
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub pages: usize,
}

/// Roughly how wide `text` is in Helvetica at `size` (for wrapping; errs on the wide side).
fn width(text: &str, size: f32, face: Face) -> f32 {
    let em: f32 = text
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '\'' | '.' | ',' | ':' | ';' | '|' | '!' => 0.28,
            ' ' | 'f' | 't' | 'r' | 'I' | '(' | ')' | '-' | '/' => 0.36,
            'm' | 'w' | 'M' | 'W' | '@' => 0.9,
            c if c.is_ascii_uppercase() || c.is_ascii_digit() => 0.68,
            _ => 0.56,
        })
        .sum();
    let bold = match face {
        Face::Regular => 1.0,
        Face::Bold => 1.06,
    };
    em * size * bold
}

/// Breaks `text` into lines at most `max` wide, at spaces where it can.
fn wrap(text: &str, size: f32, face: Face, max: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if width(&candidate, size, face) <= max {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // A word longer than a line is cut.
            let mut rest = String::new();
            for c in word.chars() {
                rest.push(c);
                if width(&rest, size, face) > max && rest.chars().count() > 1 {
                    let last = rest.pop().expect("two characters");
                    lines.push(std::mem::take(&mut rest));
                    rest.push(last);
                }
            }
            line = rest;
        }
        lines.push(line);
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

/// The bytes of `text` in WinAnsiEncoding; characters it has no code for become `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '\u{20ac}' => 0x80,
            '\u{2026}' => 0x85,
            '\u{2018}' => 0x91,
            '\u{2019}' => 0x92,
            '\u{201c}' => 0x93,
            '\u{201d}' => 0x94,
            '\u{2022}' => 0x95,
            '\u{2013}' => 0x96,
            '\u{2014}' => 0x97,
            '\t' => b' ',
            _ => b'?',
        })
        .collect()
}

/// Places lines top to bottom, starting a new page when one is full.
struct Layout {
    pages: Vec<Vec<Line>>,
    y: f32,
}

impl Layout {
    fn new() -> Layout {
        Layout {
            pages: vec![Vec::new()],
            y: HEIGHT - MARGIN,
        }
    }

    fn gap(&mut self, points: f32) {
        self.y -= points;
    }

    fn text(&mut self, text: &str, face: Face, size: f32, indent: f32) {
        let leading = size * 1.35;
        for line in wrap(text, size, face, WIDTH - 2.0 * MARGIN - indent) {
            if self.y - leading < MARGIN + FOOTER {
                self.pages.push(Vec::new());
                self.y = HEIGHT - MARGIN;
            }
            self.y -= leading;
            self.pages.last_mut().expect("a page").push(Line {
                face,
                size,
                x: MARGIN + indent,
                y: self.y,
                text: line,
            });
        }
    }

    /// Starts a section on a new page when fewer than `lines` lines fit.
    fn keep(&mut self, points: f32) {
        if self.y - points < MARGIN + FOOTER {
            self.pages.push(Vec::new());
            self.y = HEIGHT - MARGIN;
        }
    }
}

/// The report as a PDF, generated at `generated_at` (shown on every page).
pub fn render(report: &Report, generated_at: &str) -> Rendered {
    let mut layout = Layout::new();
    layout.text("Incident Report", Face::Bold, 20.0, 0.0);
    if !report.company_name.is_empty() {
        layout.text(&report.company_name, Face::Regular, 12.0, 0.0);
    }
    layout.text(
        &format!("Generated {generated_at}"),
        Face::Regular,
        10.0,
        0.0,
    );
    layout.gap(8.0);
    for section in &report.parts {
        layout.keep(60.0);
        layout.gap(10.0);
        layout.text(&section.title, Face::Bold, 14.0, 0.0);
        layout.gap(4.0);
        for block in &section.blocks {
            if let Some(label) = &block.label {
                layout.keep(30.0);
                layout.text(label, Face::Bold, 10.0, 0.0);
            }
            layout.text(&block.text, Face::Regular, 10.0, 12.0);
            layout.gap(4.0);
        }
    }
    let footer = format!(
        "Document {} - generated {generated_at} - Confidential: contains personal information about an NDIS participant",
        report.incident_id
    );
    write_pdf(&layout.pages, &footer, report)
}

fn write_pdf(pages: &[Vec<Line>], footer: &str, report: &Report) -> Rendered {
    let mut pdf = Pdf::new();
    let mut next = 1;
    let mut new_ref = || {
        let r = Ref::new(next);
        next += 1;
        r
    };
    let catalog = new_ref();
    let tree = new_ref();
    let regular = new_ref();
    let bold = new_ref();
    let info = new_ref();
    let page_refs: Vec<(Ref, Ref)> = pages.iter().map(|_| (new_ref(), new_ref())).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_refs.iter().map(|(page, _)| *page))
        .count(pages.len() as i32);
    for (font, name) in [(regular, "Helvetica"), (bold, "Helvetica-Bold")] {
        pdf.type1_font(font)
            .base_font(Name(name.as_bytes()))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    let title = format!("Incident report {}", report.incident_id);
    pdf.document_info(info)
        .title(TextStr(&title))
        .producer(TextStr("SupportSignal"));
    let total = pages.len();
    for (number, (lines, (page_id, content_id))) in pages.iter().zip(&page_refs).enumerate() {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT));
        page.parent(tree);
        page.contents(*content_id);
        let mut resources = page.resources();
        resources.fonts().pair(REGULAR, regular).pair(BOLD, bold);
        resources.finish();
        page.finish();

        let mut content = Content::new();
        for line in lines {
            show(&mut content, line);
        }
        let footer_lines = wrap(footer, 7.0, Face::Regular, WIDTH - 2.0 * MARGIN - 60.0);
        for (i, text) in footer_lines.iter().enumerate() {
            show(
                &mut content,
                &Line {
                    face: Face::Regular,
                    size: 7.0,
                    x: MARGIN,
                    y: MARGIN - 10.0 - 9.0 * i as f32,
                    text: text.clone(),
                },
            );
        }
        let page_label = format!("Page {} of {total}", number + 1);
        show(
            &mut content,
            &Line {
                face: Face::Regular,
                size: 8.0,
                x: WIDTH - MARGIN - width(&page_label, 8.0, Face::Regular),
                y: MARGIN - 10.0,
                text: page_label,
            },
        );
        pdf.stream(*content_id, &content.finish());
    }
    Rendered {
        bytes: pdf.finish(),
        pages: total,
    }
}

fn show(content: &mut Content, line: &Line) {
    let font = match line.face {
        Face::Regular => REGULAR,
        Face::Bold => BOLD,
    };
    content
        .begin_text()
        .set_font(font, line.size)
        .next_line(line.x, line.y)
        .show(Str(&win_ansi(&line.text)))
        .end_text();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wrap_within_the_page_and_keep_every_word() {
        let text =
            "The participant became distressed when the television was turned off ".repeat(8);
        let lines = wrap(&text, 10.0, Face::Regular, 200.0);
        assert!(lines.len() > 5);
        assert!(lines.iter().all(|l| width(l, 10.0, Face::Regular) <= 200.0));
        assert_eq!(
            lines.join(" ").split_whitespace().collect::<Vec<_>>(),
            text.split_whitespace().collect::<Vec<_>>()
        );
        let long = "x".repeat(300);
        let cut = wrap(&long, 10.0, Face::Regular, 100.0);
        assert_eq!(cut.concat(), long);
    }

    #[test]
    fn text_is_encoded_for_win_ansi() {
        assert_eq!(
            win_ansi("café – “ok” €"),
            b"caf\xe9 \x96 \x93ok\x94 \x80".to_vec()
        );
        assert_eq!(win_ansi("日本"), b"??".to_vec());
    }
}
