//! Languages codemem knows, detected from file names.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Go,
    Java,
    C,
    Cpp,
    Markdown,
    Rst,
    AsciiDoc,
    /// Other source-like text (shell, toml, yaml, ...): chunked by line windows.
    Text,
}

impl Language {
    pub const ALL: [Language; 13] = [
        Language::Rust,
        Language::Python,
        Language::JavaScript,
        Language::TypeScript,
        Language::Tsx,
        Language::Go,
        Language::Java,
        Language::C,
        Language::Cpp,
        Language::Markdown,
        Language::Rst,
        Language::AsciiDoc,
        Language::Text,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "javascript",
            Language::TypeScript => "typescript",
            Language::Tsx => "tsx",
            Language::Go => "go",
            Language::Java => "java",
            Language::C => "c",
            Language::Cpp => "cpp",
            Language::Markdown => "markdown",
            Language::Rst => "rst",
            Language::AsciiDoc => "asciidoc",
            Language::Text => "text",
        }
    }

    /// Accepts the canonical names plus common aliases (`py`, `ts`, `js`, `c++`, `md`).
    pub fn parse(s: &str) -> Option<Language> {
        let s = s.to_ascii_lowercase();
        Some(match s.as_str() {
            "rust" | "rs" => Language::Rust,
            "python" | "py" => Language::Python,
            "javascript" | "js" | "jsx" => Language::JavaScript,
            "typescript" | "ts" => Language::TypeScript,
            "tsx" => Language::Tsx,
            "go" | "golang" => Language::Go,
            "java" => Language::Java,
            "c" | "h" => Language::C,
            "cpp" | "c++" | "cxx" | "cc" | "hpp" => Language::Cpp,
            "markdown" | "md" => Language::Markdown,
            "rst" | "restructuredtext" => Language::Rst,
            "asciidoc" | "adoc" => Language::AsciiDoc,
            "text" | "txt" => Language::Text,
            _ => return None,
        })
    }

    /// Detects the language from a path; `None` means "not a file codemem indexes".
    pub fn detect(path: &str) -> Option<Language> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let lower = name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "makefile" | "dockerfile" | "justfile" | "cmakelists.txt"
        ) {
            return Some(Language::Text);
        }
        let ext = match lower.rsplit_once('.') {
            Some((_, e)) => e,
            None => return None,
        };
        Some(match ext {
            "rs" => Language::Rust,
            "py" | "pyi" => Language::Python,
            "js" | "mjs" | "cjs" | "jsx" => Language::JavaScript,
            "ts" | "mts" | "cts" => Language::TypeScript,
            "tsx" => Language::Tsx,
            "go" => Language::Go,
            "java" => Language::Java,
            "c" | "h" => Language::C,
            "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" | "ipp" => Language::Cpp,
            "md" | "markdown" | "mdx" => Language::Markdown,
            "rst" => Language::Rst,
            "adoc" | "asciidoc" => Language::AsciiDoc,
            "txt" | "toml" | "yaml" | "yml" | "json" | "sh" | "bash" | "zsh" | "fish" | "sql"
            | "proto" | "graphql" | "gql" | "lua" | "rb" | "php" | "kt" | "kts" | "scala"
            | "swift" | "cs" | "fs" | "ex" | "exs" | "erl" | "hs" | "ml" | "clj" | "dart" | "r"
            | "jl" | "vue" | "svelte" | "html" | "css" | "scss" | "cmake" | "gradle" | "ini"
            | "cfg" | "tf" | "nix" | "zig" | "vim" | "el" | "pl" | "pm" | "ps1" => Language::Text,
            _ => return None,
        })
    }

    /// Languages with a syntax tree (tree-sitter grammar): chunked by definitions, searched
    /// for references.
    pub fn is_code(&self) -> bool {
        !self.is_prose() && *self != Language::Text
    }

    /// Prose formats: routed to documentation, chunked by headings.
    pub fn is_prose(&self) -> bool {
        matches!(
            self,
            Language::Markdown | Language::Rst | Language::AsciiDoc
        )
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_common_files() {
        assert_eq!(Language::detect("src/main.rs"), Some(Language::Rust));
        assert_eq!(Language::detect("a/b/App.TSX"), Some(Language::Tsx));
        assert_eq!(Language::detect("README.md"), Some(Language::Markdown));
        assert_eq!(Language::detect("Makefile"), Some(Language::Text));
        assert_eq!(Language::detect("image.png"), None);
        assert_eq!(Language::detect("LICENSE"), None);
    }

    #[test]
    fn names_round_trip() {
        for l in Language::ALL {
            assert_eq!(Language::parse(l.as_str()), Some(l));
        }
    }
}
