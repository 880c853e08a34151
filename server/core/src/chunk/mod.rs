//! Syntax-aware chunking.
//!
//! A file becomes a list of [`ChunkDraft`]s: sorted, non-overlapping, 1-based inclusive line
//! ranges whose `content` is exactly those lines of the file (the slice of the text from the
//! first byte of `start_line` to the end of `end_line`, without the final line break, so CRLF
//! files keep their `\r\n` inside a chunk).
//!
//! How a file is cut:
//!
//! * **Code** (Rust, Python, JavaScript, TypeScript, TSX, Go, Java, C, C++) is parsed with
//!   tree-sitter ([`code`]). Functions, classes, structs, enums, interfaces, traits, impls,
//!   modules/namespaces and *sizeable* constants / type aliases (at least `min_lines` lines,
//!   and at least 2) become items. The comments, attributes and decorators directly above an
//!   item (no blank line in between) belong to it. Everything between items (imports,
//!   statements, small constants, module docs) is glue and becomes `Block` chunks. The
//!   `{...}` body of a multi-line Rust macro invocation (`cfg_rt! { impl ... }`) is parsed
//!   again on its own, so the items inside are found too (unless it does not parse as items).
//! * **Containers** (classes, impls, traits, interfaces, modules, namespaces) that fit in
//!   `max_lines` are one chunk. A bigger container is opened: each member item becomes its own
//!   chunk (`Method` with a qualified symbol: `Type::method` for Rust and C++, `Class.method`
//!   elsewhere), and the container's remaining lines (signature, fields, closing brace) become
//!   header chunks with the container's kind and symbol.
//! * **Prose**: Markdown splits at ATX and setext headings (not inside fenced code or front
//!   matter), RST at underlined / overlined titles, AsciiDoc at `=` (or `#`) headings. Each
//!   section is a `Section` chunk whose symbol is the heading text; text before the first
//!   heading is a `Section` without symbol.
//! * **Text**, unknown languages, files tree-sitter cannot parse in time, files too big to
//!   parse and error-heavy parses (ERROR nodes covering half the lines or more) become line
//!   windows of kind `Block`.
//!
//! Size rules, applied in this order:
//!
//! 1. **Split**: a range longer than `max_lines` lines (or larger than [`MAX_CHUNK_BYTES`]) is
//!    cut into consecutive, *non-overlapping* windows of nearly equal size (never a tiny tail);
//!    every window keeps the item's symbol **and** kind. Windows that would exceed the byte cap
//!    are cut further by bytes, at line boundaries. Blank lines at the edges of a window, of a
//!    glue range and of a prose section are dropped; a range of blank lines yields no chunk.
//! 2. **Merge** (what `min_lines` means): walking the chunks in order, a chunk shorter than
//!    `min_lines` absorbs the chunks after it until it reaches `min_lines` lines (so glue such
//!    as imports joins the item that follows it, and runs of one-liners become groups of
//!    about `min_lines` lines); a chunk that is still short afterwards (a closing brace, a
//!    last tiny function) joins the chunk before it. Merging never crosses scopes (top level
//!    vs. the members of an opened container, so a split class's last method never swallows
//!    the next top-level function) and never makes a chunk exceed `max_lines` or the byte
//!    cap. The merged chunk keeps the symbol and kind of its largest *named* member (the
//!    first one on ties); with no named member it has no symbol and keeps the common kind,
//!    or `Block` if the kinds differ.
//! 3. **Byte cap**: a single line longer than [`MAX_CHUNK_BYTES`] (minified code) cannot be
//!    split by lines; its chunk's content is truncated at a char boundary to that cap.
//!
//! `chunk_file` never panics: empty or whitespace-only text yields no chunks, and any internal
//! failure falls back to plain line windows.

mod code;
mod prose;
mod refs;

pub use refs::{occurrences, Occurrence};
#[cfg(test)]
mod tests;

use crate::lang::Language;
use crate::types::{ChunkDraft, ChunkKind};

/// Upper bound for a chunk's `content`, in bytes.
pub const MAX_CHUNK_BYTES: usize = 16 * 1024;

/// Limits that shape chunks.
#[derive(Debug, Clone, Copy)]
pub struct ChunkOptions {
    /// Items longer than this are split into windows.
    pub max_lines: u32,
    /// Adjacent small items are merged until they reach this many lines.
    pub min_lines: u32,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions {
            max_lines: 80,
            min_lines: 4,
        }
    }
}

/// Splits `text` (the whole file) into chunks. Never panics; any input yields valid chunks
/// whose line ranges lie inside the file.
pub fn chunk_file(lang: Language, text: &str, opts: &ChunkOptions) -> Vec<ChunkDraft> {
    chunk_file_with_definitions(lang, text, opts).0
}

/// A named definition (function, class, method, ...) and its lines, whether or not it got a
/// chunk of its own (small neighbours are merged; a class that fits keeps its methods inside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub symbol: String,
    pub kind: ChunkKind,
    pub start_line: u32,
    pub end_line: u32,
}

/// The chunks of a file and every definition in it.
pub fn chunk_file_with_definitions(
    lang: Language,
    text: &str,
    opts: &ChunkOptions,
) -> (Vec<ChunkDraft>, Vec<Definition>) {
    if text.trim().is_empty() {
        return (Vec::new(), Vec::new());
    }
    let lim = Limits::new(opts);
    match std::panic::catch_unwind(|| chunk_impl(lang, text, lim)) {
        Ok(out) => out,
        // A bug must cost structure, not the file: fall back to plain windows.
        Err(_) => {
            let src = Source::new(text);
            (finish(&src, lim, Vec::new(), ChunkKind::Block), Vec::new())
        }
    }
}

fn chunk_impl(lang: Language, text: &str, lim: Limits) -> (Vec<ChunkDraft>, Vec<Definition>) {
    let src = Source::new(text);
    let (items, gap_kind) = match lang {
        Language::Markdown | Language::Rst | Language::AsciiDoc => {
            (prose::sections(lang, &src), ChunkKind::Section)
        }
        Language::Text => (Vec::new(), ChunkKind::Block),
        _ => (
            code::items(lang, &src, lim).unwrap_or_default(),
            ChunkKind::Block,
        ),
    };
    let mut defs = Vec::new();
    collect_definitions(&items, &mut defs);
    (finish(&src, lim, items, gap_kind), defs)
}

fn collect_definitions(items: &[Item], out: &mut Vec<Definition>) {
    for it in items {
        if let Some(s) = it
            .symbol
            .as_ref()
            .filter(|_| !matches!(it.kind, ChunkKind::Section | ChunkKind::Block))
        {
            out.push(Definition {
                symbol: s.clone(),
                kind: it.kind,
                start_line: it.start,
                end_line: it.end,
            });
        }
        collect_definitions(&it.children, out);
    }
}

/// Turns items into final chunks: opens / splits, fills gaps, merges, materialises content.
fn finish(src: &Source, lim: Limits, items: Vec<Item>, gap_kind: ChunkKind) -> Vec<ChunkDraft> {
    let mut em = Emitter {
        src,
        lim,
        out: Vec::new(),
        next_scope: 1,
    };
    em.emit_seq(items, 1, src.line_count(), gap_kind, None, 0);
    let pieces = merge_small(src, lim, em.out);
    pieces
        .into_iter()
        .map(|p| ChunkDraft {
            content: src.content(p.start, p.end),
            symbol: p.symbol,
            kind: p.kind,
            start_line: p.start,
            end_line: p.end,
        })
        .collect()
}

/// Normalised [`ChunkOptions`]: `max ≥ 1`, `min ≤ max`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max: u32,
    pub min: u32,
}

impl Limits {
    fn new(o: &ChunkOptions) -> Self {
        let max = o.max_lines.max(1);
        Limits {
            max,
            min: o.min_lines.min(max),
        }
    }
}

/// The file's text with a line index. Lines follow [`str::lines`]: split at `\n`, a `\r`
/// before it is not part of the line, and a final line break does not start a new line.
pub(crate) struct Source<'a> {
    pub text: &'a str,
    /// Byte offset where each line starts.
    starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str) -> Self {
        let bytes = text.as_bytes();
        let mut starts = Vec::with_capacity(bytes.len() / 32 + 1);
        starts.push(0);
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'\n' && i + 1 < bytes.len() {
                starts.push(i + 1);
            }
        }
        Source { text, starts }
    }

    pub fn line_count(&self) -> u32 {
        u32::try_from(self.starts.len()).unwrap_or(u32::MAX)
    }

    /// Byte range of 1-based line `l` without its line break; empty outside the file.
    fn span(&self, l: u32) -> (usize, usize) {
        let i = l as usize;
        if i == 0 || i > self.starts.len() {
            return (0, 0);
        }
        let start = self.starts[i - 1];
        let mut end = if i < self.starts.len() {
            self.starts[i] - 1
        } else {
            self.text.len()
        };
        let b = self.text.as_bytes();
        if end > start && b.get(end) == Some(&b'\n') && b[end - 1] == b'\r' {
            end -= 1;
        } else if end == self.text.len() && end > start && b[end - 1] == b'\n' {
            // Last line ends with "\n" (or "\r\n"): drop the break.
            end -= 1;
            if end > start && b[end - 1] == b'\r' {
                end -= 1;
            }
        }
        (start, end)
    }

    /// 1-based line `l` without its line break.
    pub fn line(&self, l: u32) -> &'a str {
        let (s, e) = self.span(l);
        self.text.get(s..e).unwrap_or("")
    }

    pub fn is_blank(&self, l: u32) -> bool {
        self.line(l).trim().is_empty()
    }

    /// Bytes of lines `s..=e` (line breaks between them included).
    fn range_bytes(&self, s: u32, e: u32) -> usize {
        let (a, _) = self.span(s);
        let (_, b) = self.span(e);
        b.saturating_sub(a)
    }

    /// Text of lines `s..=e`, capped at [`MAX_CHUNK_BYTES`] on a char boundary.
    fn content(&self, s: u32, e: u32) -> String {
        let (a, _) = self.span(s);
        let (_, b) = self.span(e);
        let mut b = b.max(a);
        if b - a > MAX_CHUNK_BYTES {
            b = a + MAX_CHUNK_BYTES;
            while b > a && !self.text.is_char_boundary(b) {
                b -= 1;
            }
        }
        self.text.get(a..b).unwrap_or("").to_string()
    }
}

/// A syntactic unit found by a language front end, in 1-based inclusive lines.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub start: u32,
    pub end: u32,
    pub kind: ChunkKind,
    pub symbol: Option<String>,
    /// Member items of a container; used only when the container is too big to keep whole.
    pub children: Vec<Item>,
}

impl Item {
    fn len(&self) -> u32 {
        self.end - self.start + 1
    }
}

/// A chunk range before merging.
#[derive(Debug, Clone)]
struct Piece {
    start: u32,
    end: u32,
    kind: ChunkKind,
    symbol: Option<String>,
    /// Lines of the member that gave `symbol` (0 when there is none).
    sym_len: u32,
    /// 0 for top level; a fresh id per opened container.
    scope: u32,
}

impl Piece {
    fn len(&self) -> u32 {
        self.end - self.start + 1
    }
}

struct Emitter<'s, 'a> {
    src: &'s Source<'a>,
    lim: Limits,
    out: Vec<Piece>,
    next_scope: u32,
}

impl Emitter<'_, '_> {
    fn fits(&self, s: u32, e: u32) -> bool {
        e - s < self.lim.max && self.src.range_bytes(s, e) <= MAX_CHUNK_BYTES
    }

    /// Emits `items` inside lines `lo..=hi`; lines no item covers become gap chunks of
    /// `gap_kind` / `gap_symbol`.
    fn emit_seq(
        &mut self,
        items: Vec<Item>,
        lo: u32,
        hi: u32,
        gap_kind: ChunkKind,
        gap_symbol: Option<&str>,
        scope: u32,
    ) {
        if lo > hi {
            return;
        }
        let mut cursor = lo;
        for it in normalize(items, lo, hi) {
            if it.start > cursor {
                self.emit_gap(cursor, it.start - 1, gap_kind, gap_symbol, scope);
            }
            cursor = it.end + 1;
            self.emit_item(it, scope);
        }
        if cursor <= hi {
            self.emit_gap(cursor, hi, gap_kind, gap_symbol, scope);
        }
    }

    fn emit_gap(&mut self, lo: u32, hi: u32, kind: ChunkKind, symbol: Option<&str>, scope: u32) {
        if let Some((lo, hi)) = self.trim(lo, hi) {
            self.split(lo, hi, kind, symbol, scope);
        }
    }

    fn emit_item(&mut self, it: Item, scope: u32) {
        if self.fits(it.start, it.end) {
            let sym_len = if it.symbol.is_some() { it.len() } else { 0 };
            self.out.push(Piece {
                start: it.start,
                end: it.end,
                kind: it.kind,
                symbol: it.symbol,
                sym_len,
                scope,
            });
        } else if !it.children.is_empty() {
            let inner = self.next_scope;
            self.next_scope += 1;
            self.emit_seq(
                it.children,
                it.start,
                it.end,
                it.kind,
                it.symbol.as_deref(),
                inner,
            );
        } else {
            self.split(it.start, it.end, it.kind, it.symbol.as_deref(), scope);
        }
    }

    /// Drops blank lines at both ends; `None` when only blank lines remain.
    fn trim(&self, mut lo: u32, mut hi: u32) -> Option<(u32, u32)> {
        while lo <= hi && self.src.is_blank(lo) {
            lo += 1;
        }
        while hi > lo && self.src.is_blank(hi) {
            hi -= 1;
        }
        (lo <= hi).then_some((lo, hi))
    }

    /// Cuts `lo..=hi` into windows of equal length (±1) ≤ max lines, then by the byte cap.
    fn split(&mut self, lo: u32, hi: u32, kind: ChunkKind, symbol: Option<&str>, scope: u32) {
        let len = hi - lo + 1;
        let parts = len.div_ceil(self.lim.max);
        let (base, extra) = (len / parts, len % parts);
        let mut a = lo;
        for k in 0..parts {
            let size = base + u32::from(k < extra);
            let b = a + size - 1;
            self.split_bytes(a, b, kind, symbol, scope);
            a = b + 1;
        }
    }

    fn split_bytes(&mut self, lo: u32, hi: u32, kind: ChunkKind, symbol: Option<&str>, scope: u32) {
        let mut start = lo;
        let mut acc = 0usize;
        for l in lo..=hi {
            let lb = self.src.range_bytes(l, l) + 1;
            if l > start && acc + lb > MAX_CHUNK_BYTES {
                self.push_window(start, l - 1, kind, symbol, scope);
                start = l;
                acc = 0;
            }
            acc += lb;
        }
        self.push_window(start, hi, kind, symbol, scope);
    }

    fn push_window(&mut self, lo: u32, hi: u32, kind: ChunkKind, symbol: Option<&str>, scope: u32) {
        if let Some((lo, hi)) = self.trim(lo, hi) {
            self.out.push(Piece {
                start: lo,
                end: hi,
                kind,
                symbol: symbol.map(str::to_string),
                sym_len: if symbol.is_some() { hi - lo + 1 } else { 0 },
                scope,
            });
        }
    }
}

/// Clamps items to `lo..=hi`, sorts them and folds overlapping ones together (several items
/// on one line, e.g. minified code): the longer one keeps its identity, children are pooled.
fn normalize(items: Vec<Item>, lo: u32, hi: u32) -> Vec<Item> {
    let mut items: Vec<Item> = items
        .into_iter()
        .filter_map(|mut it| {
            it.start = it.start.max(lo);
            it.end = it.end.min(hi);
            (it.start <= it.end).then_some(it)
        })
        .collect();
    items.sort_by_key(|it| it.start);
    let mut out: Vec<Item> = Vec::with_capacity(items.len());
    for mut it in items {
        if let Some(last) = out.last_mut() {
            if it.start <= last.end {
                if it.len() > last.len() {
                    last.kind = it.kind;
                    last.symbol = it.symbol.take();
                }
                last.end = last.end.max(it.end);
                last.children.append(&mut it.children);
                continue;
            }
        }
        out.push(it);
    }
    out
}

/// Rule 2 of the module docs: folds chunks shorter than `min` lines into neighbours.
fn merge_small(src: &Source, lim: Limits, pieces: Vec<Piece>) -> Vec<Piece> {
    let can_merge = |a: &Piece, b: &Piece| {
        a.scope == b.scope
            && b.start > a.end
            && b.end - a.start < lim.max
            && src.range_bytes(a.start, b.end) <= MAX_CHUNK_BYTES
    };
    // Pass 1: a small chunk grows forward until it reaches `min` lines.
    let mut grown: Vec<Piece> = Vec::with_capacity(pieces.len());
    for p in pieces {
        if let Some(last) = grown.last_mut() {
            if last.len() < lim.min && can_merge(last, &p) {
                absorb(last, p);
                continue;
            }
        }
        grown.push(p);
    }
    // Pass 2: what is still small could not grow forward; it joins the chunk before it.
    let mut out: Vec<Piece> = Vec::with_capacity(grown.len());
    for p in grown {
        if let Some(last) = out.last_mut() {
            if p.len() < lim.min && can_merge(last, &p) {
                absorb(last, p);
                continue;
            }
        }
        out.push(p);
    }
    out
}

/// Appends `b` to `a`: the largest named member (first on ties) gives symbol and kind.
fn absorb(a: &mut Piece, b: Piece) {
    if b.symbol.is_some() && (a.symbol.is_none() || b.sym_len > a.sym_len) {
        a.symbol = b.symbol;
        a.kind = b.kind;
        a.sym_len = b.sym_len;
    } else if a.symbol.is_none() && a.kind != b.kind {
        a.kind = ChunkKind::Block;
    }
    a.end = b.end;
}
