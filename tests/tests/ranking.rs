//! Code-aware ranking through the real binary and model: on a small "messy checkout" (an
//! implementation, an example that repeats its words, tests, English docs and their
//! translations) the implementation comes first, `--explain` shows why, and translated docs
//! trees are not indexed unless `index.doc_languages` asks for them.

mod common;

use std::path::Path;

use common::*;

const PRICING: &str = "\
\"\"\"Order pricing.\"\"\"


def apply_discount(total_cents, percent):
    \"\"\"Take a percentage discount off an order total, never below zero.\"\"\"
    if percent < 0 or percent > 100:
        raise ValueError(\"discount percent must be 0..100\")
    cut = total_cents * percent // 100
    return max(total_cents - cut, 0)


def order_total(lines):
    \"\"\"Sum of quantity times unit price over the order lines, in cents.\"\"\"
    return sum(qty * price for qty, price in lines)
";

/// An example that says "discount" and "order total" far more often than the implementation.
const EXAMPLE: &str = "\
# Discount demo: apply a discount to an order total and print the discounted order total.
from shop.pricing import apply_discount, order_total

order = [(2, 1999), (1, 500)]
total = order_total(order)
print(\"order total before discount\", total)
discounted = apply_discount(total, 10)
print(\"order total after a 10 percent discount\", discounted)
print(\"discount applied to the order total:\", total - discounted)
";

const TEST: &str = "\
from shop.pricing import apply_discount


def test_apply_discount_to_order_total():
    assert apply_discount(1000, 10) == 900
    assert apply_discount(1000, 100) == 0


def test_discount_percent_out_of_range():
    import pytest
    with pytest.raises(ValueError):
        apply_discount(1000, 101)
";

const DOC_EN: &str = "\
# Discounts

How to apply a discount to an order total: call `apply_discount(total, percent)`.
The discounted order total never goes below zero.
";

const DOC_ZH: &str = "\
# 折扣

如何对订单总额应用折扣 (discount)：调用 `apply_discount(total, percent)`。
order total discount
";

fn messy_checkout(root: &Path) {
    for (path, text) in [
        ("src/shop/pricing.py", PRICING),
        (
            "src/shop/__init__.py",
            "from .pricing import apply_discount, order_total\n",
        ),
        ("examples/discount_demo.py", EXAMPLE),
        ("tests/test_pricing.py", TEST),
        ("docs/en/discounts.md", DOC_EN),
        ("docs/zh/discounts.md", DOC_ZH),
        ("docs/pt-BR/discounts.md", DOC_ZH),
    ] {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

#[test]
fn implementation_first_and_explain_shows_why() {
    let home = Home::with_assets();
    let dir = tempdir("messy");
    let root = dir.path();
    messy_checkout(root);
    let run = home.index(root);

    // Translations beside docs/en are listed as skipped, with the setting that controls them.
    for t in ["docs/zh/", "docs/pt-BR/"] {
        let reason = run
            .stats
            .skipped_reason(t)
            .unwrap_or_else(|| panic!("{t} must be skipped: {:?}", run.stats.skipped()));
        assert!(reason.contains("index.doc_languages"), "{reason}");
    }

    // An implementation question: the implementation beats the example that repeats its words.
    let r = home.search(
        root,
        "where is the discount applied to the order total",
        &[
            "--explain",
            "--ns",
            "coding",
            "--ns",
            "documentation",
            "--ns",
            "testing",
        ],
    );
    assert_eq!(
        r.paths().first().map(String::as_str),
        Some("src/shop/pricing.py"),
        "{}",
        r.summary()
    );
    assert!(
        r.paths()
            .iter()
            .all(|p| !p.starts_with("docs/zh") && !p.starts_with("docs/pt-BR")),
        "{}",
        r.summary()
    );
    for h in r.hits() {
        let e = &h["explain"];
        assert_eq!(e["intent"], "implementation", "{h}");
        assert!(e["fused"].as_f64().unwrap_or(0.0) > 0.0, "{h}");
        for key in ["definition", "path_match", "prior", "diversity"] {
            assert!(e[key].is_number(), "explain.{key} missing: {h}");
        }
        let reasons: Vec<&str> = e["prior_reasons"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let path = h["path"].as_str().unwrap_or("");
        if path.starts_with("examples/") {
            assert!(reasons.contains(&"examples"), "{h}");
            assert!(e["prior"].as_f64().unwrap() < 1.0, "{h}");
        }
        if path.starts_with("tests/") {
            assert!(reasons.contains(&"tests"), "{h}");
        }
        if path == "src/shop/pricing.py" {
            assert!(reasons.is_empty(), "{h}");
        }
    }

    // A question about tests searches the testing namespace by default; other questions don't.
    let r = home.search(
        root,
        "which test checks a discount percent out of range",
        &["-k", "5"],
    );
    assert_eq!(
        r.paths().first().map(String::as_str),
        Some("tests/test_pricing.py"),
        "{}",
        r.summary()
    );
    let r = home.search(
        root,
        "where is the discount applied to the order total",
        &["-k", "10"],
    );
    assert!(
        r.paths().iter().all(|p| !p.starts_with("tests/")),
        "{}",
        r.summary()
    );

    // An identifier: its definition, with the definition signal.
    let r = home.search(root, "apply_discount", &["--explain", "-k", "3"]);
    let top = &r.hits()[0];
    assert_eq!(top["path"], "src/shop/pricing.py", "{}", r.summary());
    assert_eq!(top["explain"]["intent"], "symbol");
    assert!(
        top["explain"]["definition"].as_f64().unwrap() > 0.0,
        "{top}"
    );

    // Without --explain the field is absent; the human output prints a `why:` line per hit.
    let r = home.search(root, "apply_discount", &["-k", "3"]);
    assert!(r.hits()[0].get("explain").is_none(), "{}", r.hits()[0]);
    let out = home.run(&[
        "--root",
        s(root),
        "search",
        "discounted order total",
        "--explain",
        "-k",
        "3",
    ]);
    assert_eq!(out.code, Some(EXIT_OK), "{out}");
    assert!(out.stdout.contains("why: "), "{out}");
    assert!(out.stdout.contains("fused"), "{out}");
}

#[test]
fn doc_languages_setting_and_bad_weights() {
    let home = Home::with_assets();
    let dir = tempdir("all-langs");
    let root = dir.path();
    messy_checkout(root);
    std::fs::write(root.join("codemem.toml"), "[index]\ndoc_languages = []\n").unwrap();
    let indexed = home.index(root);
    assert!(
        indexed.stats.skipped_reason("docs/zh/").is_none(),
        "{:?}",
        indexed.stats.skipped()
    );
    let r = home.search(root, "折扣", &["--mode", "lexical", "-k", "5"]);
    assert!(
        r.paths().iter().any(|p| p == "docs/zh/discounts.md"),
        "{}",
        r.summary()
    );

    // A bad weight is refused with the key and the allowed range.
    std::fs::write(
        root.join("codemem.toml"),
        "[search.ranking]\nexamples = -1\n",
    )
    .unwrap();
    let out = home.run(&["--root", s(root), "search", "discount"]);
    assert_ne!(out.code, Some(EXIT_OK), "{out}");
    assert!(out.stderr.contains("search.ranking.examples"), "{out}");
    std::fs::remove_file(root.join("codemem.toml")).unwrap();
    let mut cmd = home.command(&["--root", s(root), "search", "discount"]);
    cmd.env("CODEMEM_RANKING", "tests = lots");
    let out = run(cmd, DEFAULT_TIMEOUT);
    assert_ne!(out.code, Some(EXIT_OK), "{out}");
    assert!(out.stderr.contains("CODEMEM_RANKING"), "{out}");
}

/// With the model's refinement off, every chunk has only its first-pass vector: the index run
/// embeds nothing, every file stays pending, and hybrid search still ranks with a first-pass
/// list next to the lexical one (the real static table distilled from the installed model).
#[test]
fn first_pass_only_index_searches_hybrid() {
    let home = Home::with_assets();
    let dir = tempdir("first-pass");
    let root = dir.path();
    messy_checkout(root);
    std::fs::write(
        root.join("codemem.toml"),
        "[embed]\nfirst_pass = true\nrefine = false\n\n[search.ranking]\nfirst_pass_weight = 0.5\n",
    )
    .unwrap();
    let run = home.index(root);
    assert_eq!(run.stats.n("chunks_embedded"), 0, "{}", run.stats.0);
    assert!(run.stats.n("chunks_first_pass") > 0, "{}", run.stats.0);
    let status = home.status(root);
    assert_eq!(
        status["pending_files"], status["files_indexed"],
        "files wait for the model: {status}"
    );

    let r = home.search(
        root,
        "where is the discount applied to the order total",
        &["--explain"],
    );
    assert_eq!(
        r.paths().first().map(String::as_str),
        Some("src/shop/pricing.py"),
        "{}",
        r.summary()
    );
    assert!(
        r.hits()
            .iter()
            .any(|h| h["explain"]["first_pass_rank"].as_u64() == Some(1)),
        "the first-pass list ranked something first: {:#?}",
        r.hits()
    );
    assert!(
        r.hits()
            .iter()
            .all(|h| h["explain"]["dense_rank"].is_null()),
        "no model vector exists yet: {:#?}",
        r.hits()
    );
    // Dense mode is the model's only: nothing to find yet.
    let dense = home.search(root, "discount", &["--mode", "dense"]);
    assert!(dense.hits().is_empty(), "{}", dense.summary());
}
