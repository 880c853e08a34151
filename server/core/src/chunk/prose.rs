//! Prose front end: sections under Markdown, reStructuredText and AsciiDoc headings.

use super::{Item, Source};
use crate::lang::Language;
use crate::types::ChunkKind;

/// Headings longer than this (chars) are cut in the symbol.
const MAX_TITLE_CHARS: usize = 120;

/// One `Section` item per heading, running to the line before the next heading (trailing
/// blank lines dropped). Lines before the first heading are left to the caller.
pub(super) fn sections(lang: Language, src: &Source) -> Vec<Item> {
    let heads = match lang {
        Language::Markdown => markdown(src),
        Language::Rst => rst(src),
        Language::AsciiDoc => asciidoc(src),
        _ => Vec::new(),
    };
    let n = src.line_count();
    let mut out = Vec::with_capacity(heads.len());
    for (k, (start, title)) in heads.iter().enumerate() {
        let mut end = heads
            .get(k + 1)
            .map_or(n, |(next, _)| next.saturating_sub(1));
        while end > *start && src.is_blank(end) {
            end -= 1;
        }
        if end < *start {
            continue;
        }
        let title = title.trim();
        let symbol = (!title.is_empty()).then(|| title.chars().take(MAX_TITLE_CHARS).collect());
        out.push(Item {
            start: *start,
            end,
            kind: ChunkKind::Section,
            symbol,
            children: Vec::new(),
        });
    }
    out
}

/// Line `l` without a leading byte-order mark.
fn line<'a>(src: &Source<'a>, l: u32) -> &'a str {
    let s = src.line(l);
    if l == 1 {
        s.strip_prefix('\u{feff}').unwrap_or(s)
    } else {
        s
    }
}

/// Strips up to three leading spaces; `None` if the line is indented further (code block).
fn md_indent(s: &str) -> Option<&str> {
    let spaces = s.len() - s.trim_start_matches(' ').len();
    if spaces > 3 || s[spaces..].starts_with('\t') {
        None
    } else {
        Some(&s[spaces..])
    }
}

/// `(fence char, length)` when `t` opens a fenced code block.
fn fence_open(t: &str) -> Option<(char, usize)> {
    let c = t.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = t.len() - t.trim_start_matches(c).len();
    if len < 3 || (c == '`' && t[len..].contains('`')) {
        return None;
    }
    Some((c, len))
}

fn fence_closes(t: &str, c: char, len: usize) -> bool {
    let t = t.trim_end();
    t.len() >= len && t.chars().all(|x| x == c)
}

/// The heading text of an ATX heading (`## Title ##`).
fn atx(t: &str) -> Option<&str> {
    let level = t.len() - t.trim_start_matches('#').len();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &t[level..];
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    let rest = rest.trim();
    // Optional closing sequence: spaces then only '#'.
    let without = rest.trim_end_matches('#');
    if without.is_empty() {
        return Some("");
    }
    if without.len() < rest.len() && without.ends_with([' ', '\t']) {
        return Some(without.trim_end());
    }
    Some(rest)
}

fn setext_underline(t: &str) -> bool {
    let t = t.trim_end();
    !t.is_empty() && (t.chars().all(|c| c == '=') || t.chars().all(|c| c == '-'))
}

/// Could this line be (the last line of) a paragraph, i.e. the text of a setext heading?
fn paragraph_text(t: &str) -> bool {
    let t = t.trim();
    !t.is_empty()
        && !t.starts_with(['>', '<', '|'])
        && !t.starts_with("- ")
        && !t.starts_with("* ")
        && !t.starts_with("+ ")
        && !setext_underline(t)
}

fn markdown(src: &Source) -> Vec<(u32, String)> {
    let n = src.line_count();
    let mut heads = Vec::new();
    let mut l = 1;
    // YAML / TOML front matter.
    let first = line(src, 1).trim_end();
    if first == "---" || first == "+++" {
        if let Some(close) = (2..=n).find(|&k| {
            let t = src.line(k).trim_end();
            t == first || (first == "---" && t == "...")
        }) {
            l = close + 1;
        }
    }
    let mut fence: Option<(char, usize)> = None;
    let mut prev_text: Option<&str> = None;
    while l <= n {
        let raw = line(src, l);
        let indented = md_indent(raw);
        let mut this_text = None;
        if let Some((c, len)) = fence {
            if indented.is_some_and(|t| fence_closes(t, c, len)) {
                fence = None;
            }
        } else if let Some(t) = indented {
            if let Some(f) = fence_open(t) {
                fence = Some(f);
            } else if let Some(title) = atx(t) {
                heads.push((l, title.to_string()));
            } else if setext_underline(t) && prev_text.is_some() {
                heads.push((l - 1, prev_text.unwrap_or_default().trim().to_string()));
            } else if paragraph_text(t) {
                this_text = Some(t);
            }
        } else if prev_text.is_some() {
            // Indented lines continue a paragraph.
            this_text = Some(raw);
        }
        prev_text = this_text;
        l += 1;
    }
    heads
}

fn rst_adornment(s: &str) -> Option<(char, usize)> {
    let t = s.trim_end();
    let c = t.chars().next()?;
    if !c.is_ascii_punctuation() || t.len() < 2 || !t.chars().all(|x| x == c) {
        return None;
    }
    Some((c, t.len()))
}

fn rst(src: &Source) -> Vec<(u32, String)> {
    let n = src.line_count();
    let mut heads = Vec::new();
    let mut l = 1;
    while l <= n {
        let cur = line(src, l);
        let next = if l < n { line(src, l + 1) } else { "" };
        // Overline, title, underline.
        if let Some((c, _)) = rst_adornment(cur) {
            if l + 2 <= n && !next.trim().is_empty() && rst_adornment(next).is_none() {
                if let Some((c2, _)) = rst_adornment(line(src, l + 2)) {
                    if c2 == c {
                        heads.push((l, next.trim().to_string()));
                        l += 3;
                        continue;
                    }
                }
            }
            l += 1;
            continue;
        }
        // Title, underline.
        if !cur.trim().is_empty() && !cur.starts_with(char::is_whitespace) {
            if let Some((_, len)) = rst_adornment(next) {
                let width = cur.trim_end().chars().count();
                if len >= width || len >= 4 {
                    heads.push((l, cur.trim().to_string()));
                    l += 2;
                    continue;
                }
            }
        }
        l += 1;
    }
    heads
}

/// Delimiter lines of AsciiDoc blocks whose content is verbatim (listing, literal,
/// passthrough, comment) and Markdown-style fences.
fn adoc_delimiter(t: &str) -> bool {
    if t.starts_with("```") {
        return true;
    }
    let Some(c) = t.chars().next() else {
        return false;
    };
    matches!(c, '-' | '.' | '+' | '/') && t.len() >= 4 && t.chars().all(|x| x == c)
}

fn asciidoc(src: &Source) -> Vec<(u32, String)> {
    let n = src.line_count();
    let mut heads = Vec::new();
    let mut block: Option<&str> = None;
    for l in 1..=n {
        let t = line(src, l).trim_end();
        if let Some(d) = block {
            let closes = if d.starts_with("```") {
                t == "```"
            } else {
                t == d
            };
            if closes {
                block = None;
            }
            continue;
        }
        if adoc_delimiter(t) {
            block = Some(t);
            continue;
        }
        let Some(c) = t.chars().next().filter(|c| *c == '=' || *c == '#') else {
            continue;
        };
        let level = t.len() - t.trim_start_matches(c).len();
        let rest = &t[level..];
        if level > 6 || !rest.starts_with(' ') || rest.trim().is_empty() {
            continue;
        }
        // Symmetric closing markers (`== Title ==`).
        let title = rest.trim().trim_end_matches(c).trim_end();
        let title = if title.is_empty() { rest.trim() } else { title };
        heads.push((l, title.to_string()));
    }
    heads
}
