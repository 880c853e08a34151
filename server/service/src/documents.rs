//! Open editor documents as ropes, edited incrementally with LSP-style positions
//! (line + UTF-16 code unit), validated: a bad range is an error, never a panic.

use ropey::Rope;
use serde::{Deserialize, Serialize};

use crate::error::{Result, ServiceError};

/// A position in a document: 0-based line and UTF-16 code unit offset in that line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub line: u32,
    pub character: u32,
}

/// One edit: replace `range` (or the whole text when `None`) with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextChange {
    pub range: Option<(Position, Position)>,
    pub text: String,
}

pub(crate) struct Document {
    pub rope: Rope,
    pub version: i32,
}

impl Document {
    pub fn new(text: &str, version: i32) -> Document {
        Document {
            rope: Rope::from_str(text),
            version,
        }
    }

    /// Applies edits in order. On error the document is left as it was before the failing edit.
    pub fn apply(&mut self, version: i32, changes: Vec<TextChange>) -> Result<()> {
        for c in changes {
            match c.range {
                None => self.rope = Rope::from_str(&c.text),
                Some((start, end)) => {
                    let a = char_index(&self.rope, start)?;
                    let b = char_index(&self.rope, end)?;
                    if b < a {
                        return Err(ServiceError::InvalidInput(format!(
                            "range end {}:{} is before its start {}:{}",
                            end.line, end.character, start.line, start.character
                        )));
                    }
                    self.rope.remove(a..b);
                    self.rope.insert(a, &c.text);
                }
            }
        }
        self.version = version;
        Ok(())
    }
}

/// The char index of an LSP position; errors name the position and the document's extent.
pub fn char_index(rope: &Rope, pos: Position) -> Result<usize> {
    let lines = rope.len_lines();
    let line = pos.line as usize;
    if line >= lines {
        return Err(ServiceError::InvalidInput(format!(
            "position {}:{} is past the end of the document ({lines} lines)",
            pos.line, pos.character
        )));
    }
    let start = rope.line_to_char(line);
    let slice = rope.line(line);
    let mut units = 0usize;
    let want = pos.character as usize;
    for (i, ch) in slice.chars().enumerate() {
        if ch == '\n' || ch == '\r' {
            break;
        }
        if units >= want {
            return Ok(start + i);
        }
        units += ch.len_utf16();
    }
    if units == want {
        let content_len = slice
            .chars()
            .take_while(|c| *c != '\n' && *c != '\r')
            .count();
        return Ok(start + content_len);
    }
    if units > want {
        // Unreachable in practice (the loop returns first); kept total for safety.
        return Ok(start);
    }
    Err(ServiceError::InvalidInput(format!(
        "position {}:{} is past the end of line {} ({units} UTF-16 units)",
        pos.line, pos.character, pos.line
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: u32, character: u32) -> Position {
        Position { line, character }
    }

    #[test]
    fn incremental_edits_with_utf16_positions() {
        let mut d = Document::new("fn a() {}\nlet s = \"😀x\";\n", 1);
        // 😀 is two UTF-16 units: 'x' is at character 11.
        d.apply(
            2,
            vec![TextChange {
                range: Some((p(1, 11), p(1, 12))),
                text: "y".into(),
            }],
        )
        .unwrap();
        assert_eq!(d.rope.to_string(), "fn a() {}\nlet s = \"😀y\";\n");
        d.apply(
            3,
            vec![TextChange {
                range: Some((p(0, 3), p(0, 4))),
                text: "bee".into(),
            }],
        )
        .unwrap();
        assert_eq!(d.rope.line(0).to_string(), "fn bee() {}\n");
        d.apply(
            4,
            vec![TextChange {
                range: Some((p(2, 0), p(2, 0))),
                text: "// end\n".into(),
            }],
        )
        .unwrap();
        assert!(d.rope.to_string().ends_with("// end\n"));
        assert_eq!(d.version, 4);
    }

    #[test]
    fn bad_positions_are_errors_and_leave_the_text() {
        let mut d = Document::new("ab\ncd", 1);
        for (a, b) in [(p(9, 0), p(9, 0)), (p(0, 5), p(0, 6)), (p(1, 1), p(0, 0))] {
            let e = d
                .apply(
                    2,
                    vec![TextChange {
                        range: Some((a, b)),
                        text: "x".into(),
                    }],
                )
                .unwrap_err();
            assert!(e.is_invalid_input(), "{e}");
        }
        assert_eq!(d.rope.to_string(), "ab\ncd");
        assert_eq!(d.version, 1);
        d.apply(
            3,
            vec![TextChange {
                range: None,
                text: "new".into(),
            }],
        )
        .unwrap();
        assert_eq!(d.rope.to_string(), "new");
    }
}
