//! References, callers and callees from syntax trees, in process (the reference graph's
//! resolution rules; the real binary and MCP SDK cover the front ends).

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use codemem_embed::HashEmbedder;
use codemem_service::{
    IndexEvent, IndexOptions, NamespaceScope, OpenOptions, Project, RefQuery, References,
};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn tree(root: &Path) {
    write(
        root,
        "shop/pricing.py",
        "def apply_discount(total, pct):\n    return total - total * pct // 100\n\n\ndef order_total(lines):\n    return apply_discount(sum(lines), 0)\n",
    );
    write(
        root,
        "shop/cart.py",
        "from shop.pricing import apply_discount\n\n\nclass Cart:\n    def checkout(self, total):\n        f = apply_discount\n        return apply_discount(total, 10)\n",
    );
    // Another definition of the same name, used next to it.
    write(
        root,
        "legacy/pricing.py",
        "def apply_discount(total):\n    return total\n",
    );
    write(
        root,
        "legacy/report.py",
        "def report(t):\n    # apply_discount(t) in a comment is no reference\n    return apply_discount(t)\n",
    );
    write(
        root,
        "tests/test_pricing.py",
        "from shop.pricing import apply_discount\n\n\ndef test_discount():\n    assert apply_discount(100, 10) == 90\n",
    );
}

fn open(home: &Path, root: &Path) -> Project {
    let p = Project::open(
        root,
        OpenOptions {
            home: home.to_path_buf(),
            embedder: Some(Arc::new(HashEmbedder::new(384))),
            purpose: "test".into(),
            lock_wait: Duration::ZERO,
            create: true,
            config: None,
        },
    )
    .unwrap();
    let cancel = AtomicBool::new(false);
    p.index(IndexOptions {
        cancel: &cancel,
        progress: &|_e: IndexEvent| {},
    })
    .unwrap();
    p
}

fn sites(r: &References) -> Vec<(String, u32, bool)> {
    r.references
        .iter()
        .map(|s| (s.path.clone(), s.line, s.call))
        .collect()
}

fn q(name: &str) -> RefQuery {
    RefQuery {
        name: name.into(),
        ..Default::default()
    }
}

#[test]
fn references_callers_and_callees() {
    let home = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    tree(ws.path());
    let p = open(home.path(), ws.path());
    let all = NamespaceScope::All;

    // By name: every use of every definition, never the definitions' own names or comments.
    let r = p.references(&q("apply_discount"), &all).unwrap();
    assert_eq!(r.definitions.len(), 2, "{:?}", r.definitions);
    assert_eq!(
        sites(&r),
        vec![
            ("legacy/report.py".into(), 3, true),
            ("shop/cart.py".into(), 1, false),
            ("shop/cart.py".into(), 6, false),
            ("shop/cart.py".into(), 7, true),
            ("shop/pricing.py".into(), 6, true),
            ("tests/test_pricing.py".into(), 1, false),
            ("tests/test_pricing.py".into(), 5, true),
        ]
    );
    let caller = |path: &str, line: u32| {
        r.references
            .iter()
            .find(|s| s.path == path && s.line == line)
            .and_then(|s| s.caller.clone())
    };
    assert_eq!(caller("shop/cart.py", 7).as_deref(), Some("Cart.checkout"));
    assert_eq!(caller("shop/pricing.py", 6).as_deref(), Some("order_total"));
    assert_eq!(caller("shop/cart.py", 1), None);

    // Pinned to the shop definition: legacy/report.py uses the legacy one next to it.
    let mut pinned = q("apply_discount");
    pinned.path = Some("shop/pricing.py".into());
    pinned.line = Some(2);
    let r = p.references(&pinned, &all).unwrap();
    assert_eq!(r.definitions.len(), 1);
    assert_eq!(r.definitions[0].path, "shop/pricing.py");
    assert!(
        sites(&r)
            .iter()
            .all(|(path, _, _)| path != "legacy/report.py"),
        "{:?}",
        sites(&r)
    );
    assert_eq!(sites(&r).len(), 6);
    let mut legacy = pinned.clone();
    legacy.path = Some("legacy/pricing.py".into());
    legacy.line = None;
    let r = p.references(&legacy, &all).unwrap();
    assert_eq!(sites(&r), vec![("legacy/report.py".into(), 3, true)]);

    // Callers: the calls only.
    let mut callers = pinned.clone();
    callers.calls_only = true;
    let r = p.references(&callers, &all).unwrap();
    assert!(r.references.iter().all(|s| s.call));
    assert_eq!(r.references.len(), 3);

    // A token limited to `coding` sees no test file.
    let coding = NamespaceScope::only(["coding"]);
    let r = p.references(&pinned, &coding).unwrap();
    assert!(r.references.iter().all(|s| !s.path.starts_with("tests/")));

    // Callees of order_total: apply_discount (the one in the same file) and the builtin sum.
    let c = p.callees(&q("order_total"), &all).unwrap();
    assert_eq!(c.definition.path, "shop/pricing.py");
    let names: Vec<&str> = c.callees.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["apply_discount", "sum"]);
    assert_eq!(c.callees[0].definitions.len(), 1);
    assert_eq!(c.callees[0].definitions[0].path, "shop/pricing.py");
    assert!(c.callees[1].definitions.is_empty());
    // Ambiguous without a path: the answer says which ones there are.
    let e = p.callees(&q("apply_discount"), &all).unwrap_err();
    assert!(
        e.is_invalid_input() && e.to_string().contains("legacy/pricing.py:1"),
        "{e}"
    );

    // Truncation and bad input.
    let mut small = q("apply_discount");
    small.limit = Some(2);
    let r = p.references(&small, &all).unwrap();
    assert!(r.truncated && r.references.len() == 2);
    for bad in ["", "a b", "x-y"] {
        assert!(
            p.references(&q(bad), &all).unwrap_err().is_invalid_input(),
            "{bad}"
        );
    }
    let mut nowhere = q("apply_discount");
    nowhere.path = Some("shop/cart.py".into());
    let e = p.references(&nowhere, &all).unwrap_err();
    assert!(e.to_string().contains("shop/pricing.py:1"), "{e}");

    // An unsaved buffer is searched instead of its file.
    p.set_overlay(
        "legacy/report.py",
        "def report(t):\n    return t\n\n\ndef again(t):\n    return apply_discount(apply_discount(t))\n",
    )
    .unwrap();
    let r = p.references(&legacy, &all).unwrap();
    assert_eq!(
        r.references
            .iter()
            .map(|s| (s.line, s.unsaved, s.caller.clone().unwrap_or_default()))
            .collect::<Vec<_>>(),
        vec![
            (6, true, "again".to_string()),
            (6, true, "again".to_string())
        ]
    );
}

#[test]
fn method_uses_need_their_class_and_a_receiver() {
    let home = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    write(
        ws.path(),
        "shop/cart.py",
        "class Cart:\n    def checkout(self):\n        return 1\n\n    def again(self, other):\n        other.checkout()\n        return self.checkout()\n",
    );
    write(
        ws.path(),
        "shop/use.py",
        "from shop.cart import Cart\n\n\ndef buy():\n    c = Cart()\n    checkout()\n    return c.checkout()\n",
    );
    // Never names Cart: its `x.checkout()` is some other type's.
    write(
        ws.path(),
        "other/use.py",
        "def run(x):\n    return x.checkout()\n",
    );
    write(
        ws.path(),
        "other/table.py",
        "PRICES = {'a': 1}\n\n\ndef price(k):\n    return PRICES[k]\n",
    );
    let p = open(home.path(), ws.path());
    let all = NamespaceScope::All;
    let mut m = q("checkout");
    m.path = Some("shop/cart.py".into());
    m.line = Some(2);
    let r = p.references(&m, &all).unwrap();
    assert_eq!(r.definitions[0].symbol, "Cart.checkout");
    assert_eq!(
        sites(&r),
        vec![
            ("shop/cart.py".into(), 7, true),
            ("shop/use.py".into(), 7, true)
        ]
    );

    // A name the chunker lists as no definition (a module constant) still pins to its file.
    let mut v = q("PRICES");
    v.path = Some("other/table.py".into());
    v.line = Some(1);
    let r = p.references(&v, &all).unwrap();
    assert_eq!(r.definitions[0].kind, "name");
    assert_eq!(sites(&r), vec![("other/table.py".into(), 5, false)]);
}
