//! Name occurrences from the syntax tree: where an identifier is used, whether it is the callee
//! of a call, and whether the occurrence is the name of a definition. The reference graph
//! (references, callers, callees) is built from these by the service, on demand.

use tree_sitter::Node;

use super::code::{grammar, parse, MAX_PARSE_BYTES};
use crate::Language;

/// One occurrence of an identifier in code (not in comments or strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub name: String,
    /// 1-based line and byte column of the identifier's first character.
    pub line: u32,
    pub column: u32,
    /// The callee of a call (`f(x)`, `obj.f(x)`, `new F()`, `f!(x)`), rightmost name only.
    pub call: bool,
    /// The name a definition introduces (`def f`, `class F`, `fn f`, `func f`), not a use.
    pub definition: bool,
    /// For a member access (`recv.name`, `a.b.name`): the receiver's last name (`recv`, `b`;
    /// `self`, `this`, `super` as written); `None` for a bare name.
    pub receiver: Option<String>,
}

/// Node kinds that are identifiers in some grammar.
fn is_identifier(kind: &str) -> bool {
    matches!(
        kind,
        "identifier"
            | "type_identifier"
            | "field_identifier"
            | "property_identifier"
            | "shorthand_property_identifier"
            | "shorthand_property_identifier_pattern"
            | "private_property_identifier"
            | "namespace_identifier"
            | "constant"
    )
}

/// `parent.field` is `n`.
fn is_field(parent: Node, field: &str, n: Node) -> bool {
    parent
        .child_by_field_name(field)
        .is_some_and(|c| c.id() == n.id())
}

/// The expression a name is the rightmost part of (`c` in `a.b.c`, `f` in `m::f`), climbing
/// member accesses and qualified paths.
fn outermost_member(mut n: Node) -> Node {
    while let Some(p) = n.parent() {
        let right = match p.kind() {
            "attribute" => is_field(p, "attribute", n),
            "member_expression" => is_field(p, "property", n),
            "field_expression" => is_field(p, "field", n),
            "selector_expression" => is_field(p, "field", n),
            "scoped_identifier" | "qualified_identifier" | "scoped_type_identifier" => {
                is_field(p, "name", n)
            }
            "generic_type" | "generic_function" => {
                is_field(p, "type", n) || is_field(p, "function", n)
            }
            _ => false,
        };
        if !right {
            break;
        }
        n = p;
    }
    n
}

/// The receiver of a member access whose name is `n`: the last name of its object
/// expression (`self` in `self.f`, `b` in `a.b.f`, `super` in `super().f`).
fn receiver(n: Node, text: &str) -> Option<String> {
    let p = n.parent()?;
    let object = match p.kind() {
        "attribute" | "member_expression" | "field_expression" | "selector_expression"
            if !is_field(p, "object", n)
                && !is_field(p, "operand", n)
                && !is_field(p, "value", n) =>
        {
            p.child_by_field_name("object")
                .or_else(|| p.child_by_field_name("operand"))
                .or_else(|| p.child_by_field_name("value"))?
        }
        "method_invocation" if is_field(p, "name", n) => p.child_by_field_name("object")?,
        _ => return None,
    };
    let mut last = object;
    // The rightmost identifier-like leaf of the object (`a.b` → `b`, `super()` → `super`).
    loop {
        if last.child_count() == 0 {
            break;
        }
        let next = match last.kind() {
            "call" | "call_expression" => last.child_by_field_name("function"),
            _ => last.named_child(last.named_child_count().saturating_sub(1)),
        };
        match next {
            Some(c) => last = c,
            None => break,
        }
    }
    text.get(last.byte_range()).map(str::to_string)
}

/// `n` (an identifier) is what a call calls.
fn is_callee(n: Node) -> bool {
    // Java names the method directly.
    if let Some(p) = n.parent() {
        if p.kind() == "method_invocation" && is_field(p, "name", n) {
            return true;
        }
    }
    let e = outermost_member(n);
    let Some(p) = e.parent() else {
        return false;
    };
    match p.kind() {
        "call" | "call_expression" => is_field(p, "function", e),
        "new_expression" => is_field(p, "constructor", e),
        "object_creation_expression" => is_field(p, "type", e),
        "macro_invocation" => is_field(p, "macro", e),
        _ => false,
    }
}

/// `n` is the name a definition introduces.
fn is_definition_name(n: Node) -> bool {
    let Some(p) = n.parent() else {
        return false;
    };
    let k = p.kind();
    let defines = k.ends_with("_definition")
        || k.ends_with("_declaration")
        || k.ends_with("_item")
        || k.ends_with("_declarator")
        || matches!(
            k,
            "type_spec"
                | "method_spec"
                | "class"
                | "function"
                | "function_signature"
                | "method_signature"
                | "abstract_method_signature"
        );
    (defines && (is_field(p, "name", n) || is_field(p, "declarator", n)))
        // A JS/TS `const f = () => ...` names a function.
        || (k == "variable_declarator"
            && is_field(p, "name", n)
            && p.child_by_field_name("value").is_some_and(|v| {
                matches!(v.kind(), "arrow_function" | "function" | "function_expression" | "class")
            }))
}

/// Every occurrence of a name for which `wanted` holds, in document order. Empty for text
/// without a grammar, files too large to parse, and parses that fail.
pub fn occurrences(lang: Language, text: &str, wanted: &dyn Fn(&str) -> bool) -> Vec<Occurrence> {
    let mut out = Vec::new();
    let Some(grammar) = grammar(lang) else {
        return out;
    };
    if text.len() > MAX_PARSE_BYTES {
        return out;
    }
    let Some(tree) = parse(&grammar, text, &[]) else {
        return out;
    };
    let mut cursor = tree.walk();
    'walk: loop {
        let n = cursor.node();
        if n.child_count() == 0 && is_identifier(n.kind()) {
            if let Some(name) = text.get(n.byte_range()) {
                if wanted(name) {
                    let p = n.start_position();
                    out.push(Occurrence {
                        name: name.to_string(),
                        line: p.row as u32 + 1,
                        column: p.column as u32 + 1,
                        call: is_callee(n),
                        definition: is_definition_name(n),
                        receiver: receiver(n, text),
                    });
                }
            }
        }
        if cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                continue 'walk;
            }
            if !cursor.goto_parent() {
                break 'walk;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receivers_of_member_accesses() {
        let src = "self.get(1)\nx.y.get(2)\nsuper().get(3)\nget(4)\nGet.get\n";
        let r: Vec<Option<String>> = occurrences(Language::Python, src, &|s| s == "get")
            .into_iter()
            .map(|o| o.receiver)
            .collect();
        assert_eq!(
            r,
            vec![
                Some("self".into()),
                Some("y".into()),
                Some("super".into()),
                None,
                Some("Get".into())
            ]
        );
        let ts = "this.get(); store.get(); get();\n";
        let r: Vec<Option<String>> = occurrences(Language::TypeScript, ts, &|s| s == "get")
            .into_iter()
            .map(|o| o.receiver)
            .collect();
        assert_eq!(r, vec![Some("this".into()), Some("store".into()), None]);
    }

    fn occ(lang: Language, text: &str, name: &str) -> Vec<(u32, bool, bool)> {
        occurrences(lang, text, &|s| s == name)
            .into_iter()
            .map(|o| (o.line, o.call, o.definition))
            .collect()
    }

    #[test]
    fn python_calls_names_and_definitions() {
        let src = "\
from shop.pricing import apply_discount

def apply_discount(total, pct):
    # apply_discount in a comment is not an occurrence
    return total

class Cart:
    def total(self):
        f = apply_discount
        return self.pricing.apply_discount(1, 2) + apply_discount(3, 4)

s = \"apply_discount\"
";
        assert_eq!(
            occ(Language::Python, src, "apply_discount"),
            vec![
                (1, false, false),
                (3, false, true),
                (9, false, false),
                (10, true, false),
                (10, true, false),
            ]
        );
        assert_eq!(occ(Language::Python, src, "Cart"), vec![(7, false, true)]);
    }

    #[test]
    fn typescript_calls_new_and_arrow_definitions() {
        let src = "\
import { makeStore } from './store';
export const makeStore2 = () => makeStore();
class Store { get() { return new Store(); } }
export function makeStore(a: number): Store;
function useIt(s: Store): Store { return s; }
store.makeStore();
";
        assert_eq!(
            occ(Language::TypeScript, src, "makeStore"),
            vec![
                (1, false, false),
                (2, true, false),
                (4, false, true),
                (6, true, false)
            ]
        );
        assert_eq!(
            occ(Language::TypeScript, src, "makeStore2"),
            vec![(2, false, true)]
        );
        assert_eq!(
            occ(Language::TypeScript, src, "Store"),
            vec![
                (3, false, true),
                (3, true, false),
                (4, false, false),
                (5, false, false),
                (5, false, false)
            ]
        );
    }

    #[test]
    fn rust_go_java_c() {
        let rs = "fn parse(x: u8) -> u8 { x }\nfn main() { let y = parse(1); crate::p::parse(2); s.parse(); m!(parse); parse!(3); }\n";
        assert_eq!(
            occ(Language::Rust, rs, "parse"),
            vec![
                (1, false, true),
                (2, true, false),
                (2, true, false),
                (2, true, false),
                (2, false, false),
                (2, true, false)
            ]
        );
        let go = "package m\nfunc Parse() int { return 1 }\nfunc main() { x := Parse(); y := m.Parse(); _ = x + y }\n";
        assert_eq!(
            occ(Language::Go, go, "Parse"),
            vec![(2, false, true), (3, true, false), (3, true, false)]
        );
        let java =
            "class A { int run() { return b.run() + run(); } A make() { return new A(); } }\n";
        assert_eq!(
            occ(Language::Java, java, "run"),
            vec![(1, false, true), (1, true, false), (1, true, false)]
        );
        assert_eq!(
            occ(Language::Java, java, "A"),
            vec![(1, false, true), (1, false, false), (1, true, false)]
        );
        let c = "int add(int a, int b) { return a + b; }\nint main(void) { return add(1, 2); }\n";
        assert_eq!(
            occ(Language::C, c, "add"),
            vec![(1, false, true), (2, true, false)]
        );
    }

    #[test]
    fn no_grammar_no_occurrences() {
        assert!(occurrences(Language::Markdown, "# add\nadd(1)", &|_| true).is_empty());
        assert!(occurrences(Language::Text, "add(1)", &|_| true).is_empty());
    }
}
