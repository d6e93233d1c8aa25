//! [`Visitor`]: which connection (or Tor circuit) a request came on, for per-visitor limits.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::FromRequestParts;
use axum::response::Response;
use http::StatusCode;
use http::request::Parts;

/// An opaque name for the visitor a request came from, valid while the host runs.
///
/// Visitors of an onion service have no address. What the host can tell apart is how they
/// reach the tab: it gives one `Visitor` per rendezvous circuit on an onion service, one per
/// connection on loopback (and inside a plugin). Every request of a connection carries its
/// visitor as a request extension; extract it in a handler (`visitor: Visitor`) to key a
/// per-visitor limit ([`crate::rate::KeyedRateLimiter`]). It says nothing about who the
/// visitor is and cannot be turned back into an address: never show or log it.
///
/// One person can open several circuits, so a per-visitor limit bounds what one circuit
/// does; keep a tab-wide limit as well.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Visitor(u64);

impl Visitor {
    /// A visitor unlike every other made in this process. The host makes one per circuit or
    /// connection; tests make them to act as several visitors.
    pub fn unique() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Debug for Visitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Visitor(#{})", self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Visitor>().copied().ok_or_else(|| {
            // Only a router served outside `serve_connection` (a test's `oneshot` without
            // `testing::TestTab`) gets here.
            tracing::warn!("a request without a visitor reached a handler that needs one");
            super::plain_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_visitor_is_unique() {
        let visitors: HashSet<Visitor> = (0..1000).map(|_| Visitor::unique()).collect();
        assert_eq!(visitors.len(), 1000);
    }
}
