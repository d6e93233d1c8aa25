//! The pastes of one tab: in memory only, bounded in number, size, rate and time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use onionhost_sdk::rate::{Limited, Rate, RateLimiter};
use rand::Rng as _;
use tokio::sync::watch;

use crate::State;

/// How often expired pastes are dropped.
const PURGE_EVERY: Duration = Duration::from_secs(30);

/// One paste and the count of people viewing it live.
#[derive(Clone)]
pub(crate) struct Paste {
    pub(crate) text: Arc<str>,
    pub(crate) expires: Instant,
    /// Shown once, then deleted.
    pub(crate) burn_after_reading: bool,
    /// How many live views are open; their WebSockets watch it. Dropped with the paste, which
    /// ends the live views.
    pub(crate) viewers: watch::Sender<usize>,
}

/// Why a paste was not stored.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StoreError {
    /// As many pastes as the config allows are stored already.
    Full,
    /// Too many pastes were created in the last minute; the visitor learns when to retry.
    TooFast(Limited),
}

/// What a new paste is made of.
pub(crate) struct NewPaste {
    pub(crate) text: String,
    pub(crate) keep: Duration,
    pub(crate) burn_after_reading: bool,
}

/// The pastes of one tab, by id.
pub(crate) struct Store {
    pastes: Mutex<HashMap<String, Paste>>,
    max_pastes: usize,
    /// Creations a minute, all visitors together: the sdk's limiter.
    creations: RateLimiter,
}

impl Store {
    pub(crate) fn new(max_pastes: usize, max_per_minute: usize) -> Self {
        Self {
            pastes: Mutex::new(HashMap::new()),
            max_pastes,
            creations: RateLimiter::new(Rate::per_minute(
                u32::try_from(max_per_minute).unwrap_or(u32::MAX),
            )),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Paste>> {
        self.pastes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores a paste; returns its id, 128 random bits in hex, which is the only way to find it.
    pub(crate) fn add(&self, paste: NewPaste) -> Result<String, StoreError> {
        let mut pastes = self.lock();
        let now = Instant::now();
        pastes.retain(|_, paste| paste.expires > now);
        // Full first: a refused paste does not use up the rate.
        if pastes.len() >= self.max_pastes {
            return Err(StoreError::Full);
        }
        self.creations.check().map_err(StoreError::TooFast)?;
        let id: String = rand::rng()
            .random::<[u8; 16]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        pastes.insert(
            id.clone(),
            Paste {
                text: paste.text.into(),
                expires: now + paste.keep,
                burn_after_reading: paste.burn_after_reading,
                viewers: watch::Sender::new(0),
            },
        );
        Ok(id)
    }

    /// The paste `id`, unless it does not exist or has expired. A paste to burn after reading
    /// stays until it is [taken](Store::take).
    pub(crate) fn get(&self, id: &str) -> Option<Paste> {
        self.lock()
            .get(id)
            .filter(|paste| paste.expires > Instant::now())
            .cloned()
    }

    /// Removes the paste `id` and returns it, unless it does not exist or has expired: the
    /// first reader of a paste to burn gets it, nobody else does.
    pub(crate) fn take(&self, id: &str) -> Option<Paste> {
        self.lock()
            .remove(id)
            .filter(|paste| paste.expires > Instant::now())
    }

    /// How many pastes are stored now.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn purge(&self) {
        let now = Instant::now();
        self.lock().retain(|_, paste| paste.expires > now);
    }
}

/// Drops expired pastes until the tab stops, so that nothing stays in memory longer than
/// promised even if nobody asks for it.
pub(crate) async fn purge_expired(state: Arc<State>) {
    let mut every = tokio::time::interval(PURGE_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => state.store.purge(),
            () = state.ctx.shutdown() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paste(text: &str, keep: Duration) -> NewPaste {
        NewPaste {
            text: text.into(),
            keep,
            burn_after_reading: false,
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_full_store_refuses_and_ids_are_unguessable() {
        let store = Store::new(2, 100);
        let a = store.add(paste("a", MINUTE)).expect("first");
        let b = store.add(paste("b", MINUTE)).expect("second");
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(store.add(paste("c", MINUTE)).err(), Some(StoreError::Full));
        assert_eq!(store.get(&a).map(|p| p.text.to_string()), Some("a".into()));
        assert!(store.get("nope").is_none());
    }

    #[test]
    fn expired_pastes_are_gone_and_free_their_room() {
        let store = Store::new(2, 100);
        let id = store.add(paste("gone", Duration::ZERO)).expect("add");
        assert!(store.get(&id).is_none());
        assert!(store.take(&id).is_none());
        store.add(paste("x", MINUTE)).expect("room again");
        store.add(paste("y", MINUTE)).expect("room again");
    }

    #[test]
    fn creation_is_rate_limited() {
        let store = Store::new(100, 2);
        store.add(paste("1", MINUTE)).expect("first");
        store.add(paste("2", MINUTE)).expect("second");
        assert!(matches!(
            store.add(paste("3", MINUTE)),
            Err(StoreError::TooFast(_))
        ));
    }

    #[test]
    fn a_taken_paste_is_gone_for_everyone_else() {
        let store = Store::new(2, 100);
        let id = store.add(paste("once", MINUTE)).expect("add");
        assert_eq!(
            store.take(&id).map(|p| p.text.to_string()),
            Some("once".into())
        );
        assert!(store.take(&id).is_none());
        assert!(store.get(&id).is_none());
        assert_eq!(store.len(), 0);
    }
}
