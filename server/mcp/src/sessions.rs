//! Who owns each streamable-HTTP session, and how many live sessions each token holds. A
//! session belongs to the token that created it: other tokens are told it does not exist.
//! A token at `mcp.max_sessions_per_token` gets no new session until it closes one (DELETE)
//! or an idle one expires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

pub struct Sessions {
    manager: Arc<LocalSessionManager>,
    max_per_token: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Session id → name of the token that created it.
    owners: HashMap<String, String>,
    /// Token name → `initialize` requests in flight (each may create a session).
    pending: HashMap<String, usize>,
}

/// Why a new session is refused.
pub struct AtCapacity {
    pub live: usize,
    pub max: usize,
}

impl Sessions {
    pub fn new(manager: Arc<LocalSessionManager>, max_per_token: usize) -> Sessions {
        Sessions {
            manager,
            max_per_token,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `false` when the session exists and belongs to another token.
    pub fn may_use(&self, session: &str, token: &str) -> bool {
        self.lock()
            .owners
            .get(session)
            .is_none_or(|owner| owner == token)
    }

    /// Reserves room for one more session of `token` until the reservation is used or dropped.
    pub async fn reserve(self: &Arc<Self>, token: &str) -> Result<Reservation, AtCapacity> {
        // Sessions rmcp closed (DELETE, idle timeout, worker exit) no longer count.
        let live: Vec<String> = {
            let owned: Vec<String> = self
                .lock()
                .owners
                .iter()
                .filter(|(_, o)| *o == token)
                .map(|(s, _)| s.clone())
                .collect();
            let sessions = self.manager.sessions.read().await;
            owned
                .into_iter()
                .filter(|s| sessions.contains_key(s.as_str()))
                .collect()
        };
        let mut st = self.lock();
        st.owners.retain(|s, o| o != token || live.contains(s));
        let pending = st.pending.get(token).copied().unwrap_or(0);
        if live.len() + pending >= self.max_per_token {
            return Err(AtCapacity {
                live: live.len() + pending,
                max: self.max_per_token,
            });
        }
        *st.pending.entry(token.to_string()).or_default() += 1;
        Ok(Reservation {
            sessions: self.clone(),
            token: token.to_string(),
        })
    }

    fn release(st: &mut State, token: &str) {
        if let Some(n) = st.pending.get_mut(token) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                st.pending.remove(token);
            }
        }
    }

    /// The owner closed `session`.
    pub fn closed(&self, session: &str) {
        self.lock().owners.remove(session);
    }
}

/// Room for one session of a token, held while its `initialize` runs.
pub struct Reservation {
    sessions: Arc<Sessions>,
    token: String,
}

impl Reservation {
    /// The `initialize` created `session`: it now belongs to the token.
    pub fn created(self, session: &str) {
        self.sessions
            .lock()
            .owners
            .insert(session.to_string(), self.token.clone());
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        Sessions::release(&mut self.sessions.lock(), &self.token);
    }
}
