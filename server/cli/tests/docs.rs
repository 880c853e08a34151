//! The README must not drift from the code: its config example must parse and cover every
//! key, and its command table must list every subcommand (and nothing else).

use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md")
}

fn toml_block(readme: &str) -> String {
    let start = readme
        .find("```toml\n")
        .expect("a ```toml block in the README")
        + 8;
    let end = start + readme[start..].find("```").expect("closed block");
    readme[start..end].to_string()
}

fn keys(prefix: &str, v: &toml::Value, out: &mut Vec<String>) {
    if let toml::Value::Table(t) = v {
        for (k, v) in t {
            let name = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.push(name.clone());
            keys(&name, v, out);
        }
    }
}

#[test]
fn readme_config_example_is_valid_and_complete() {
    let text = toml_block(&readme());
    let cfg = codemem_core::Config::from_toml(&text, "README.md")
        .expect("README config example must be valid");
    assert!(!cfg.routes.is_empty());
    let mut documented = Vec::new();
    keys(
        "",
        &toml::Value::Table(toml::from_str(&text).unwrap()),
        &mut documented,
    );
    let mut actual = Vec::new();
    keys(
        "",
        &toml::Value::try_from(codemem_core::Config::default()).unwrap(),
        &mut actual,
    );
    for k in actual {
        assert!(
            documented.contains(&k),
            "config key `{k}` is not documented in the README's codemem.toml example"
        );
    }
}

#[test]
fn readme_lists_every_subcommand() {
    let out = Command::new(env!("CARGO_BIN_EXE_codemem"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .expect("a Commands section")
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        // Command lines are indented by two spaces; wrapped descriptions by more.
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 4, "{commands:?}");
    let readme = readme();
    for c in &commands {
        assert!(
            readme.contains(&format!("| `codemem {c}")),
            "README's command table lacks `codemem {c}`"
        );
    }
    for line in readme.lines().filter(|l| l.starts_with("| `codemem ")) {
        let c = line
            .trim_start_matches("| `codemem ")
            .split([' ', '`'])
            .next()
            .unwrap();
        assert!(
            commands.contains(&c),
            "README documents `codemem {c}`, which does not exist"
        );
    }
}

#[test]
fn every_subcommand_has_help() {
    for c in ["index", "search", "status", "doctor"] {
        let out = Command::new(env!("CARGO_BIN_EXE_codemem"))
            .args([c, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{c} --help failed");
        assert!(!out.stdout.is_empty());
    }
}
