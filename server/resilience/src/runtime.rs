//! The small tokio runtime a synchronous client of a remote backend (the Redis pool, the Qdrant
//! client) owns, and the one way to call into it.

use std::future::Future;

use tokio::runtime::Runtime;

pub struct ClientRuntime {
    /// Taken on drop and shut down in the background: a client may be dropped on an async
    /// thread (a server's last reference), where dropping a runtime in place panics.
    rt: Option<Runtime>,
}

impl ClientRuntime {
    /// Two worker threads named `name`, with I/O and timers.
    pub fn new(name: &str) -> std::io::Result<ClientRuntime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()?;
        Ok(ClientRuntime { rt: Some(rt) })
    }

    /// The runtime itself (to enter it while building a client, or to spawn background tasks).
    pub fn runtime(&self) -> &Runtime {
        self.rt
            .as_ref()
            .expect("the runtime lives until the client is dropped")
    }

    /// Drives `f` to completion on this runtime, from any thread: from inside another runtime
    /// (an async server's blocking section) it runs on a scoped helper thread instead of
    /// blocking that runtime's executor.
    pub fn block<F: Future + Send>(&self, f: F) -> F::Output
    where
        F::Output: Send,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(|| self.runtime().block_on(f))
                    .join()
                    .expect("a backend client call panicked")
            })
        } else {
            self.runtime().block_on(f)
        }
    }
}

impl Drop for ClientRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
