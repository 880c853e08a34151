//! Which namespaces a caller may see. An adapter translates its caller's rights (an MCP
//! token limited to some namespaces) into a `NamespaceScope`; the service filters symbols,
//! status counts and namespace listings by it, so every protocol applies the same policy.

use crate::project::{Project, ProjectStatus};
use crate::Result;

/// The namespaces visible to one caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NamespaceScope {
    /// Every namespace (the local user, an unrestricted token).
    #[default]
    All,
    /// Only these namespaces; everything else is left out of answers, counts included.
    Only(Vec<String>),
}

impl NamespaceScope {
    pub fn only<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> NamespaceScope {
        NamespaceScope::Only(names.into_iter().map(Into::into).collect())
    }

    pub fn allows(&self, namespace: &str) -> bool {
        match self {
            NamespaceScope::All => true,
            NamespaceScope::Only(names) => names.iter().any(|n| n == namespace),
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, NamespaceScope::All)
    }
}

impl Project {
    /// `status` as a caller limited to `scope` may see it: only its namespaces, file and
    /// pending counts of those namespaces, and no whole-project run counters.
    pub fn status_in(&self, scope: &NamespaceScope) -> Result<ProjectStatus> {
        let mut st = self.status()?;
        if scope.is_all() {
            return Ok(st);
        }
        st.namespaces.retain(|n| scope.allows(&n.name));
        let files = self.files.read().unwrap_or_else(|e| e.into_inner());
        st.files_indexed = files
            .values()
            .filter(|e| scope.allows(&e.namespace))
            .count();
        st.pending_files = files
            .values()
            .filter(|e| scope.allows(&e.namespace) && !e.complete)
            .count();
        st.last_run = None;
        Ok(st)
    }

    /// Memories stored in the namespaces of `scope`.
    pub fn memories_visible(&self, scope: &NamespaceScope) -> usize {
        match scope {
            NamespaceScope::All => self.memory_count(),
            NamespaceScope::Only(names) => names.iter().map(|n| self.memories_in(n)).sum(),
        }
    }

    /// Unsaved editor buffers of files in the namespaces of `scope`.
    pub fn unsaved_visible(&self, scope: &NamespaceScope) -> Result<usize> {
        match scope {
            NamespaceScope::All => Ok(self.freshness()?.unsaved_files),
            NamespaceScope::Only(_) => Ok(self
                .overlay_symbols()
                .iter()
                .filter(|(_, ns, _)| scope.allows(ns))
                .count()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allows_its_namespaces() {
        let s = NamespaceScope::only(["testing"]);
        assert!(s.allows("testing") && !s.allows("coding") && !s.is_all());
        assert!(NamespaceScope::All.allows("coding") && NamespaceScope::default().is_all());
    }
}
