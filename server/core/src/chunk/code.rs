//! Tree-sitter front end: finds the items (functions, classes, ...) of a source file.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use tree_sitter::{Node, ParseOptions, ParseState, Parser, Range, Tree};

use super::{Item, Limits, Source};
use crate::lang::Language;
use crate::types::ChunkKind;

/// Files larger than this are not parsed (line windows instead).
pub(super) const MAX_PARSE_BYTES: usize = 16 * 1024 * 1024;
/// Files whose lines average more bytes than this are treated as minified (line windows).
const MINIFIED_AVG_LINE_BYTES: usize = 4096;
/// A parse running longer than this is cancelled (line windows instead).
const PARSE_BUDGET: Duration = Duration::from_secs(5);
/// Containers / preprocessor blocks nested deeper than this are not opened.
const MAX_DEPTH: u32 = 48;
/// Symbols longer than this (bytes) are cut.
const MAX_SYMBOL_BYTES: usize = 160;

thread_local! {
    /// One parser per thread: creating one per file would allocate its stacks every time.
    static PARSER: RefCell<Option<Parser>> = const { RefCell::new(None) };
}

pub(super) fn grammar(lang: Language) -> Option<tree_sitter::Language> {
    Some(match lang {
        Language::Rust => tree_sitter_rust::LANGUAGE.into(),
        Language::Python => tree_sitter_python::LANGUAGE.into(),
        Language::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
        Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
        Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
        Language::Go => tree_sitter_go::LANGUAGE.into(),
        Language::Java => tree_sitter_java::LANGUAGE.into(),
        Language::C => tree_sitter_c::LANGUAGE.into(),
        Language::Cpp => tree_sitter_cpp::LANGUAGE.into(),
        Language::Markdown | Language::Rst | Language::AsciiDoc | Language::Text => return None,
    })
}

/// The items of a source file, or `None` when the file should be cut into plain windows
/// (no grammar, too big, minified, parse cancelled, or mostly syntax errors).
pub(super) fn items(lang: Language, src: &Source, lim: Limits) -> Option<Vec<Item>> {
    let grammar = grammar(lang)?;
    let len = src.text.len();
    if len > MAX_PARSE_BYTES {
        return None;
    }
    // Minified bundles / generated data: items would all share a few lines, and the one
    // surviving symbol would misdescribe the whole line. Plain windows are more honest.
    if len / src.line_count().max(1) as usize > MINIFIED_AVG_LINE_BYTES {
        return None;
    }
    let tree = parse(&grammar, src.text, &[])?;
    let root = tree.root_node();
    if error_heavy(root) {
        return None;
    }
    let cx = Cx {
        lang,
        src,
        lim,
        grammar,
    };
    let mut out = Vec::new();
    cx.collect(root, &Scope::TOP, 0, &mut out);
    Some(out)
}

/// Parses `text` (only `ranges` of it, or all of it when empty) with this thread's parser.
pub(super) fn parse(grammar: &tree_sitter::Language, text: &str, ranges: &[Range]) -> Option<Tree> {
    PARSER.with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        let parser = slot.get_or_insert_with(Parser::new);
        parser.set_language(grammar).ok()?;
        parser.set_included_ranges(ranges).ok()?;
        let started = Instant::now();
        let mut too_slow = |_: &ParseState| started.elapsed() > PARSE_BUDGET;
        let bytes = text.as_bytes();
        let mut read = |i: usize, _| bytes.get(i..).unwrap_or(&[]);
        let tree = parser.parse_with_options(
            &mut read,
            None,
            Some(ParseOptions::new().progress_callback(&mut too_slow)),
        );
        if tree.is_none() {
            // A cancelled parse would otherwise be resumed by the next call.
            parser.reset();
        }
        tree
    })
}

/// ERROR nodes cover half the lines or more: the tree describes the file badly.
fn error_heavy(root: Node) -> bool {
    let lines = last_line(root) - first_line(root) + 1;
    root.has_error() && u64::from(error_lines(root)) * 2 >= u64::from(lines)
}

/// Lines covered by ERROR nodes (outermost ones) plus one per MISSING node.
fn error_lines(root: Node) -> u32 {
    let mut total = 0u32;
    let mut cur = root.walk();
    loop {
        let n = cur.node();
        let descend = if n.is_error() {
            total = total.saturating_add(last_line(n) - first_line(n) + 1);
            false
        } else if n.is_missing() {
            total = total.saturating_add(1);
            false
        } else {
            n.has_error()
        };
        if descend && cur.goto_first_child() {
            continue;
        }
        loop {
            if cur.goto_next_sibling() {
                break;
            }
            if !cur.goto_parent() {
                return total;
            }
        }
    }
}

fn first_line(n: Node) -> u32 {
    u32::try_from(n.start_position().row)
        .unwrap_or(u32::MAX - 1)
        .saturating_add(1)
}

/// 1-based line of the node's last character (a node ending with its line break ends on the
/// line before the end position).
fn last_line(n: Node) -> u32 {
    let s = n.start_position();
    let e = n.end_position();
    let row = if e.column == 0 && e.row > s.row {
        e.row - 1
    } else {
        e.row
    };
    u32::try_from(row)
        .unwrap_or(u32::MAX - 1)
        .saturating_add(1)
        .max(first_line(n))
}

/// What a node is, for chunking.
enum Class<'t> {
    /// Not an item: glue (or a header line of its container).
    Skip,
    /// A Rust macro invocation whose `{...}` body may hold items (`cfg_unstable! { impl ... }`):
    /// the body is parsed again on its own and its items join the current level.
    Reparse(Range),
    /// Its children sit at the same level as the node itself (`#ifdef`, `extern "C" {}`).
    Transparent(Node<'t>),
    Leaf {
        kind: ChunkKind,
        name: Option<String>,
        /// Only an item when it spans at least `min_lines` (and 2) lines.
        sizeable_only: bool,
    },
    Container {
        kind: ChunkKind,
        name: Option<String>,
        body: Node<'t>,
        /// Separator for member symbols.
        sep: &'static str,
        /// Member functions are methods (class-like) rather than functions (module-like).
        methods: bool,
    },
}

fn leaf<'t>(kind: ChunkKind, name: Option<String>) -> Class<'t> {
    Class::Leaf {
        kind,
        name,
        sizeable_only: false,
    }
}

fn sizeable<'t>(kind: ChunkKind, name: Option<String>) -> Class<'t> {
    Class::Leaf {
        kind,
        name,
        sizeable_only: true,
    }
}

/// Where items are being collected: top level or inside a container.
struct Scope<'s> {
    symbol: Option<&'s str>,
    sep: &'static str,
    methods: bool,
}

impl Scope<'_> {
    const TOP: Scope<'static> = Scope {
        symbol: None,
        sep: ".",
        methods: false,
    };

    fn qualify(&self, name: Option<String>) -> Option<String> {
        let name = name?;
        Some(match self.symbol {
            Some(p) => cap(format!("{p}{}{name}", self.sep)),
            None => name,
        })
    }
}

struct Cx<'s, 'a> {
    lang: Language,
    src: &'s Source<'a>,
    lim: Limits,
    grammar: tree_sitter::Language,
}

impl<'a> Cx<'_, 'a> {
    fn text(&self, n: Node) -> &'a str {
        self.src.text.get(n.byte_range()).unwrap_or("")
    }

    /// A node's text as a one-line symbol: whitespace collapsed, length capped.
    fn name_of(&self, n: Node) -> Option<String> {
        let t = self.text(n);
        let t = t.trim().trim_matches(|c| c == '"' || c == '\'' || c == '`');
        if t.is_empty() {
            return None;
        }
        let s = if t.contains(char::is_whitespace) {
            t.split_whitespace().collect::<Vec<_>>().join(" ")
        } else {
            t.to_string()
        };
        Some(cap(s))
    }

    fn field_name(&self, n: Node, field: &str) -> Option<String> {
        n.child_by_field_name(field).and_then(|c| self.name_of(c))
    }

    /// Collects the items among `parent`'s children.
    fn collect(&self, parent: Node, scope: &Scope, depth: u32, out: &mut Vec<Item>) {
        let mut cursor = parent.walk();
        let kids: Vec<Node> = parent.children(&mut cursor).collect();
        for (i, &n) in kids.iter().enumerate() {
            if !n.is_named() || n.is_extra() {
                continue;
            }
            match self.classify(n, 0) {
                Class::Skip => {}
                Class::Transparent(inner) => {
                    if depth < MAX_DEPTH {
                        self.collect(inner, scope, depth + 1, out);
                    }
                }
                Class::Reparse(range) => {
                    if depth < MAX_DEPTH {
                        if let Some(tree) = parse(&self.grammar, self.src.text, &[range]) {
                            let root = tree.root_node();
                            // Bodies that are not items (`cfg_if!`, DSLs) stay glue.
                            if !error_heavy(root) {
                                self.collect(root, scope, depth + 1, out);
                            }
                        }
                    }
                }
                Class::Leaf {
                    kind,
                    name,
                    sizeable_only,
                } => {
                    let (first, end) = (first_line(n), last_line(n));
                    if sizeable_only && end - first + 1 < self.lim.min.max(2) {
                        continue;
                    }
                    out.push(Item {
                        start: self.leading_start(&kids, i),
                        end,
                        kind: member_kind(kind, scope),
                        symbol: scope.qualify(name),
                        children: Vec::new(),
                    });
                }
                Class::Container {
                    kind,
                    name,
                    body,
                    sep,
                    methods,
                } => {
                    let symbol = scope.qualify(name);
                    let mut children = Vec::new();
                    if depth < MAX_DEPTH {
                        let inner = Scope {
                            symbol: symbol.as_deref(),
                            sep,
                            methods,
                        };
                        self.collect(body, &inner, depth + 1, &mut children);
                    }
                    out.push(Item {
                        start: self.leading_start(&kids, i),
                        end: last_line(n),
                        kind: member_kind(kind, scope),
                        symbol,
                        children,
                    });
                }
            }
        }
    }

    /// First line of `kids[i]` including the comments / attributes / decorators right above
    /// it: no blank line in between, and not a trailing comment of an earlier line of code.
    fn leading_start(&self, kids: &[Node], i: usize) -> u32 {
        let mut start = first_line(kids[i]);
        let mut j = i;
        while j > 0 {
            let p = kids[j - 1];
            if !self.is_leading(p) || last_line(p) + 1 < start {
                break;
            }
            if j >= 2 {
                let pp = kids[j - 2];
                if !self.is_leading(pp) && last_line(pp) >= first_line(p) {
                    break;
                }
            }
            start = start.min(first_line(p));
            j -= 1;
        }
        start
    }

    fn is_leading(&self, n: Node) -> bool {
        match (self.lang, n.kind()) {
            (Language::Rust, "line_comment" | "block_comment") => {
                let t = self.text(n);
                // `//!` and `/*!` document the enclosing module, not the next item.
                !(t.starts_with("//!") || t.starts_with("/*!"))
            }
            (Language::Rust, "attribute_item") => true,
            (Language::Java, "line_comment" | "block_comment") => true,
            (Language::JavaScript | Language::TypeScript | Language::Tsx, "decorator") => true,
            (_, "comment") => true,
            _ => false,
        }
    }

    fn classify<'t>(&self, n: Node<'t>, depth: u32) -> Class<'t> {
        if depth > 8 {
            return Class::Skip;
        }
        match self.lang {
            Language::Rust => self.rust(n),
            Language::Python => self.python(n, depth),
            Language::JavaScript | Language::TypeScript | Language::Tsx => self.js(n, depth),
            Language::Go => self.go(n),
            Language::Java => self.java(n),
            Language::C | Language::Cpp => self.c(n, depth),
            _ => Class::Skip,
        }
    }

    fn rust<'t>(&self, n: Node<'t>) -> Class<'t> {
        let name = || self.field_name(n, "name");
        match n.kind() {
            "function_item" | "function_signature_item" => leaf(ChunkKind::Function, name()),
            "struct_item" | "union_item" => leaf(ChunkKind::Struct, name()),
            "enum_item" => leaf(ChunkKind::Enum, name()),
            "macro_definition" => leaf(ChunkKind::Function, name()),
            "type_item" => sizeable(ChunkKind::Type, name()),
            "const_item" | "static_item" => sizeable(ChunkKind::Constant, name()),
            "trait_item" => container(n, ChunkKind::Trait, name(), "::", true),
            "impl_item" => {
                let ty = n
                    .child_by_field_name("type")
                    .and_then(|t| self.rust_type_name(t, 0));
                container(n, ChunkKind::Impl, ty, "::", true)
            }
            "mod_item" => container(n, ChunkKind::Module, name(), "::", false),
            "macro_invocation" => self.macro_body(n).map_or(Class::Skip, Class::Reparse),
            _ => Class::Skip,
        }
    }

    /// The inside of a multi-line `name! { ... }` invocation.
    fn macro_body(&self, n: Node) -> Option<Range> {
        let mut cursor = n.walk();
        let tt = n
            .named_children(&mut cursor)
            .find(|c| c.kind() == "token_tree")?;
        if last_line(tt) - first_line(tt) + 1 < self.lim.min.max(3) {
            return None;
        }
        let open = tt.child(0)?;
        let close = tt.child(tt.child_count().checked_sub(1)?)?;
        if open.kind() != "{" || close.kind() != "}" || open.end_byte() > close.start_byte() {
            return None;
        }
        Some(Range {
            start_byte: open.end_byte(),
            end_byte: close.start_byte(),
            start_point: open.end_position(),
            end_point: close.start_position(),
        })
    }

    /// `Foo` for `Foo<T>`, `a::Foo`, `&Foo`, ...
    fn rust_type_name(&self, t: Node, depth: u32) -> Option<String> {
        let inner = match t.kind() {
            "generic_type" | "reference_type" | "pointer_type" => t.child_by_field_name("type"),
            "scoped_type_identifier" => t.child_by_field_name("name"),
            _ => None,
        };
        match inner {
            Some(i) if depth < 8 => self.rust_type_name(i, depth + 1),
            _ => self.name_of(t),
        }
    }

    fn python<'t>(&self, n: Node<'t>, depth: u32) -> Class<'t> {
        match n.kind() {
            "function_definition" => leaf(ChunkKind::Function, self.field_name(n, "name")),
            "class_definition" => {
                container(n, ChunkKind::Class, self.field_name(n, "name"), ".", true)
            }
            "decorated_definition" => match n.child_by_field_name("definition") {
                Some(d) => self.classify(d, depth + 1),
                None => Class::Skip,
            },
            "expression_statement" => {
                let Some(a) = only_named_child(n) else {
                    return Class::Skip;
                };
                match a.child_by_field_name("left") {
                    Some(l) if a.kind() == "assignment" && l.kind() == "identifier" => {
                        sizeable(ChunkKind::Constant, self.name_of(l))
                    }
                    _ => Class::Skip,
                }
            }
            _ => Class::Skip,
        }
    }

    fn js<'t>(&self, n: Node<'t>, depth: u32) -> Class<'t> {
        let name = || self.field_name(n, "name");
        match n.kind() {
            "function_declaration" | "generator_function_declaration" | "function_signature" => {
                leaf(ChunkKind::Function, name())
            }
            "method_definition" | "method_signature" | "abstract_method_signature" => {
                leaf(ChunkKind::Method, name())
            }
            "class_declaration" | "abstract_class_declaration" | "class" => {
                container(n, ChunkKind::Class, name(), ".", true)
            }
            "interface_declaration" => leaf(ChunkKind::Interface, name()),
            "enum_declaration" => leaf(ChunkKind::Enum, name()),
            "type_alias_declaration" => sizeable(ChunkKind::Type, name()),
            "internal_module" | "module" => container(n, ChunkKind::Module, name(), ".", false),
            "export_statement" => {
                if let Some(d) = n.child_by_field_name("declaration") {
                    return self.classify(d, depth + 1);
                }
                match n.child_by_field_name("value") {
                    Some(v) if is_js_function(v) => {
                        leaf(ChunkKind::Function, self.field_name(v, "name"))
                    }
                    Some(v) if v.kind() == "class" => self.classify(v, depth + 1),
                    _ => Class::Skip,
                }
            }
            "ambient_declaration" => match first_named_child(n) {
                Some(d) => self.classify(d, depth + 1),
                None => Class::Skip,
            },
            "expression_statement" => {
                let Some(e) = only_named_child(n) else {
                    return Class::Skip;
                };
                match e.kind() {
                    "internal_module" | "module" => self.classify(e, depth + 1),
                    "assignment_expression" => {
                        match (
                            e.child_by_field_name("left"),
                            e.child_by_field_name("right"),
                        ) {
                            (Some(l), Some(r)) if is_js_function(r) => {
                                leaf(ChunkKind::Function, self.name_of(l))
                            }
                            _ => Class::Skip,
                        }
                    }
                    _ => Class::Skip,
                }
            }
            "lexical_declaration" | "variable_declaration" => {
                let Some(d) = only_named_child(n) else {
                    return Class::Skip;
                };
                let var = d
                    .child_by_field_name("name")
                    .filter(|v| v.kind() == "identifier");
                let Some(var) = var.and_then(|v| self.name_of(v)) else {
                    return Class::Skip;
                };
                match d.child_by_field_name("value") {
                    Some(v) if is_js_function(v) => leaf(ChunkKind::Function, Some(var)),
                    Some(v) if v.kind() == "class" => match v.child_by_field_name("body") {
                        Some(body) => Class::Container {
                            kind: ChunkKind::Class,
                            name: Some(var),
                            body,
                            sep: ".",
                            methods: true,
                        },
                        None => leaf(ChunkKind::Class, Some(var)),
                    },
                    _ => sizeable(ChunkKind::Constant, Some(var)),
                }
            }
            // Class properties holding functions (`onClick = () => {...}`).
            "field_definition" | "public_field_definition" => {
                let prop = n
                    .child_by_field_name("property")
                    .or_else(|| n.child_by_field_name("name"));
                match n.child_by_field_name("value") {
                    Some(v) if is_js_function(v) => {
                        leaf(ChunkKind::Method, prop.and_then(|p| self.name_of(p)))
                    }
                    _ => Class::Skip,
                }
            }
            _ => Class::Skip,
        }
    }

    fn go<'t>(&self, n: Node<'t>) -> Class<'t> {
        let name = || self.field_name(n, "name");
        match n.kind() {
            "function_declaration" => leaf(ChunkKind::Function, name()),
            "method_declaration" => {
                let recv = n
                    .child_by_field_name("receiver")
                    .and_then(first_named_child)
                    .and_then(|p| p.child_by_field_name("type"))
                    .and_then(|t| self.go_type_name(t, 0));
                let sym = match (recv, name()) {
                    (Some(r), Some(m)) => Some(cap(format!("{r}.{m}"))),
                    (_, m) => m,
                };
                leaf(ChunkKind::Method, sym)
            }
            "type_declaration" => {
                let mut cursor = n.walk();
                let specs: Vec<Node> = n
                    .named_children(&mut cursor)
                    .filter(|c| matches!(c.kind(), "type_spec" | "type_alias"))
                    .collect();
                match specs.as_slice() {
                    [] => Class::Skip,
                    [one] => self.go(*one),
                    _ => Class::Container {
                        kind: ChunkKind::Type,
                        name: None,
                        body: n,
                        sep: ".",
                        methods: false,
                    },
                }
            }
            "type_spec" | "type_alias" => match n.child_by_field_name("type").map(|t| t.kind()) {
                Some("struct_type") => leaf(ChunkKind::Struct, name()),
                Some("interface_type") => leaf(ChunkKind::Interface, name()),
                _ => sizeable(ChunkKind::Type, name()),
            },
            "const_declaration" | "var_declaration" => {
                let spec = only_named_child(n);
                let var = spec
                    .and_then(|s| s.child_by_field_name("name"))
                    .and_then(|v| self.name_of(v));
                sizeable(ChunkKind::Constant, var)
            }
            _ => Class::Skip,
        }
    }

    /// `Foo` for receivers `f Foo`, `f *Foo`, `f Foo[T]`.
    fn go_type_name(&self, t: Node, depth: u32) -> Option<String> {
        let inner = match t.kind() {
            "pointer_type" | "parenthesized_type" => first_named_child(t),
            "generic_type" => t.child_by_field_name("type"),
            _ => None,
        };
        match inner {
            Some(i) if depth < 8 => self.go_type_name(i, depth + 1),
            _ => self.name_of(t),
        }
    }

    fn java<'t>(&self, n: Node<'t>) -> Class<'t> {
        let name = || self.field_name(n, "name");
        match n.kind() {
            "class_declaration" | "record_declaration" => {
                container(n, ChunkKind::Class, name(), ".", true)
            }
            "interface_declaration" | "annotation_type_declaration" => {
                container(n, ChunkKind::Interface, name(), ".", true)
            }
            "enum_declaration" => container(n, ChunkKind::Enum, name(), ".", true),
            "method_declaration"
            | "constructor_declaration"
            | "compact_constructor_declaration" => leaf(ChunkKind::Function, name()),
            "enum_body_declarations" => Class::Transparent(n),
            _ => Class::Skip,
        }
    }

    fn c<'t>(&self, n: Node<'t>, depth: u32) -> Class<'t> {
        let cpp = self.lang == Language::Cpp;
        let name = || self.field_name(n, "name");
        match n.kind() {
            "function_definition" => {
                let sym = n
                    .child_by_field_name("declarator")
                    .and_then(|d| self.c_declarator_name(d, 0));
                leaf(ChunkKind::Function, sym)
            }
            "struct_specifier" | "union_specifier" | "class_specifier" => {
                if n.child_by_field_name("body").is_none() {
                    return Class::Skip;
                }
                let kind = if n.kind() == "class_specifier" {
                    ChunkKind::Class
                } else {
                    ChunkKind::Struct
                };
                if cpp {
                    container(n, kind, name(), "::", true)
                } else {
                    leaf(kind, name())
                }
            }
            "enum_specifier" => match n.child_by_field_name("body") {
                Some(_) => leaf(ChunkKind::Enum, name()),
                None => Class::Skip,
            },
            // `struct foo {...} x;`, `class Foo {...};` inside a class, `int table[] = {...};`
            "declaration" | "field_declaration" => {
                if let Some(t) = n.child_by_field_name("type").filter(|t| has_body(*t)) {
                    return match self.classify(t, depth + 1) {
                        Class::Leaf {
                            kind,
                            name: None,
                            sizeable_only,
                        } => Class::Leaf {
                            kind,
                            name: n
                                .child_by_field_name("declarator")
                                .and_then(|d| self.c_declarator_name(d, 0)),
                            sizeable_only,
                        },
                        other => other,
                    };
                }
                match n.child_by_field_name("declarator") {
                    Some(d) if d.kind() == "init_declarator" => {
                        sizeable(ChunkKind::Constant, self.c_declarator_name(d, 0))
                    }
                    _ => Class::Skip,
                }
            }
            "type_definition" => {
                let typedef = n
                    .child_by_field_name("declarator")
                    .and_then(|d| self.c_declarator_name(d, 0));
                match n.child_by_field_name("type").filter(|t| has_body(*t)) {
                    Some(t) => {
                        let kind = if t.kind() == "enum_specifier" {
                            ChunkKind::Enum
                        } else {
                            ChunkKind::Struct
                        };
                        leaf(kind, typedef.or_else(|| self.field_name(t, "name")))
                    }
                    None => sizeable(ChunkKind::Type, typedef),
                }
            }
            "alias_declaration" | "concept_definition" => sizeable(ChunkKind::Type, name()),
            "preproc_function_def" => sizeable(ChunkKind::Function, name()),
            "preproc_def" => sizeable(ChunkKind::Constant, name()),
            "preproc_ifdef" | "preproc_if" | "preproc_else" | "preproc_elif"
            | "preproc_elifdef" => Class::Transparent(n),
            "linkage_specification" => match n.child_by_field_name("body") {
                Some(b) if b.kind() == "declaration_list" => Class::Transparent(b),
                Some(b) => self.classify(b, depth + 1),
                None => Class::Skip,
            },
            "namespace_definition" => container(n, ChunkKind::Module, name(), "::", false),
            "template_declaration" => {
                let mut cursor = n.walk();
                let inner = n.named_children(&mut cursor).find(|c| {
                    !matches!(
                        c.kind(),
                        "template_parameter_list" | "requires_clause" | "comment"
                    )
                });
                match inner {
                    Some(i) => self.classify(i, depth + 1),
                    None => Class::Skip,
                }
            }
            _ => Class::Skip,
        }
    }

    /// The declared name inside a C/C++ declarator (`*f(int)` → `f`, `Foo::get() const` →
    /// `Foo::get`).
    fn c_declarator_name(&self, d: Node, depth: u32) -> Option<String> {
        match d.kind() {
            "identifier"
            | "field_identifier"
            | "type_identifier"
            | "qualified_identifier"
            | "destructor_name"
            | "operator_name"
            | "template_function"
            | "template_method"
            | "operator_cast"
            | "primitive_type" => self.name_of(d),
            _ if depth >= 16 => None,
            _ => {
                let next = d.child_by_field_name("declarator").or_else(|| {
                    let mut cursor = d.walk();
                    let found = d.named_children(&mut cursor).find(|c| {
                        !matches!(
                            c.kind(),
                            "type_qualifier"
                                | "attribute_declaration"
                                | "attribute_specifier"
                                | "ms_based_modifier"
                                | "ms_pointer_modifier"
                                | "parameter_list"
                        )
                    });
                    found
                })?;
                self.c_declarator_name(next, depth + 1)
            }
        }
    }
}

fn container<'t>(
    n: Node<'t>,
    kind: ChunkKind,
    name: Option<String>,
    sep: &'static str,
    methods: bool,
) -> Class<'t> {
    match n.child_by_field_name("body") {
        Some(body) => Class::Container {
            kind,
            name,
            body,
            sep,
            methods,
        },
        // `mod foo;`, forward declarations: nothing to open, not worth a chunk of its own.
        None if kind == ChunkKind::Module => Class::Skip,
        None => leaf(kind, name),
    }
}

/// Functions become methods inside class-like containers.
fn member_kind(kind: ChunkKind, scope: &Scope) -> ChunkKind {
    if scope.methods && kind == ChunkKind::Function {
        ChunkKind::Method
    } else {
        kind
    }
}

fn has_body(n: Node) -> bool {
    matches!(
        n.kind(),
        "struct_specifier" | "union_specifier" | "class_specifier" | "enum_specifier"
    ) && n.child_by_field_name("body").is_some()
}

fn is_js_function(n: Node) -> bool {
    matches!(
        n.kind(),
        "arrow_function" | "function_expression" | "function" | "generator_function"
    )
}

fn first_named_child(n: Node) -> Option<Node> {
    let mut cursor = n.walk();
    let found = n.named_children(&mut cursor).find(|c| !c.is_extra());
    found
}

/// The node's single named, non-comment child.
fn only_named_child(n: Node) -> Option<Node> {
    let mut cursor = n.walk();
    let mut it = n.named_children(&mut cursor).filter(|c| !c.is_extra());
    let first = it.next()?;
    it.next().is_none().then_some(first)
}

fn cap(mut s: String) -> String {
    if s.len() > MAX_SYMBOL_BYTES {
        let mut end = MAX_SYMBOL_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}
