//! codemem-resilience: keeping remote backends from taking codemem down with them.
//!
//! Owns the `CircuitBreaker` (closed → open after N consecutive failures → half-open after a
//! recovery time → closed after a successful trial call) and retry with capped exponential
//! backoff. Pure logic with an injectable clock, so it is tested without sleeping. Also the
//! `ClientRuntime` a synchronous client of a remote backend drives its async client on.
//!
//! It must not know which backend it protects (Redis, Qdrant) nor anything about LSP or MCP.

mod breaker;
mod retry;
mod runtime;
pub mod testing;

pub use breaker::{
    BreakerConfig, BreakerSnapshot, BreakerState, CircuitBreaker, Clock, Rejected, SystemClock,
};
pub use retry::{retry, Backoff};
pub use runtime::ClientRuntime;
