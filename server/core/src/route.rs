//! Routes a file to a namespace: user rules from `codemem.toml` first, then the built-ins
//! (tests → testing, ADRs/architecture docs → architecture, prose → documentation,
//! everything else → coding).

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::config::Config;
use crate::error::{CoreError, Result};
use crate::lang::Language;
use crate::types::Namespace;

pub struct Router {
    user: Vec<(GlobSet, Namespace)>,
    testing: GlobSet,
    architecture: GlobSet,
}

const TEST_GLOBS: &[&str] = &[
    "**/test/**",
    "**/tests/**",
    "**/testing/**",
    "**/__tests__/**",
    "**/spec/**",
    "**/*_test.*",
    "**/test_*.py",
    "**/*_tests.rs",
    "**/*.test.*",
    "**/*.spec.*",
    "**/*Test.java",
    "**/*Tests.java",
    "**/conftest.py",
];

const ARCHITECTURE_GLOBS: &[&str] = &[
    "**/adr/**",
    "**/adrs/**",
    "**/decisions/**",
    "**/ARCHITECTURE*",
    "**/architecture*.*",
    "**/DESIGN*",
    "**/design.*",
    "**/docs/architecture/**",
    "**/docs/design/**",
];

fn set(globs: &[&str]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        b.add(Glob::new(g).expect("built-in globs are valid"));
    }
    b.build().expect("built-in globs are valid")
}

impl Router {
    pub fn new(cfg: &Config) -> Result<Router> {
        let mut user = Vec::new();
        for r in &cfg.routes {
            let glob = Glob::new(&r.glob).map_err(|e| CoreError::InvalidGlob {
                glob: r.glob.clone(),
                reason: e.to_string(),
            })?;
            let gs =
                GlobSetBuilder::new()
                    .add(glob)
                    .build()
                    .map_err(|e| CoreError::InvalidGlob {
                        glob: r.glob.clone(),
                        reason: e.to_string(),
                    })?;
            user.push((gs, cfg.namespace(&r.namespace)?));
        }
        Ok(Router {
            user,
            testing: set(TEST_GLOBS),
            architecture: set(ARCHITECTURE_GLOBS),
        })
    }

    /// `path` is workspace-relative with `/` separators.
    pub fn route(&self, path: &str, lang: Language) -> Namespace {
        // Globs starting with `**/` need a leading directory to match top-level files too.
        let rooted = format!("/{path}");
        let hit = |gs: &GlobSet| gs.is_match(path) || gs.is_match(&rooted);
        for (gs, ns) in &self.user {
            if hit(gs) {
                return ns.clone();
            }
        }
        if hit(&self.architecture) && (lang.is_prose() || lang == Language::Text) {
            return Namespace::architecture();
        }
        if hit(&self.testing) {
            return Namespace::testing();
        }
        if lang.is_prose() || path.to_ascii_lowercase().ends_with(".txt") {
            return Namespace::documentation();
        }
        Namespace::coding()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(p: &str) -> String {
        let r = Router::new(&Config::default()).unwrap();
        r.route(p, Language::detect(p).unwrap()).to_string()
    }

    #[test]
    fn builtin_rules() {
        assert_eq!(route("src/lib.rs"), "coding");
        assert_eq!(route("tests/e2e.rs"), "testing");
        assert_eq!(route("pkg/server_test.go"), "testing");
        assert_eq!(route("test_api.py"), "testing");
        assert_eq!(route("web/app.spec.ts"), "testing");
        assert_eq!(route("README.md"), "documentation");
        assert_eq!(route("docs/guide.rst"), "documentation");
        assert_eq!(route("docs/adr/0001-use-redb.md"), "architecture");
        assert_eq!(route("ARCHITECTURE.md"), "architecture");
        assert_eq!(route("docs/architecture.md"), "architecture");
    }

    #[test]
    fn user_rules_win() {
        let cfg = Config::from_toml(
            "[[route]]\nglob = \"tests/fixtures/**\"\nnamespace = \"coding\"\n",
            "t",
        )
        .unwrap();
        let r = Router::new(&cfg).unwrap();
        assert_eq!(
            r.route("tests/fixtures/a.py", Language::Python).as_str(),
            "coding"
        );
        assert_eq!(r.route("tests/b.py", Language::Python).as_str(), "testing");
    }
}
