//! Upload slots: how many uploads may be in progress at once in a tab
//! (`max_concurrent_uploads`), and how many of them one visitor may hold
//! (`max_concurrent_uploads_per_visitor`).
//!
//! Over Tor each visitor comes on a circuit of their own, which the host names with a
//! [`Visitor`](onionhost_sdk::http::Visitor); the per-visitor bound keeps one circuit from
//! taking every slot. A request that carries no visitor counts against the tab's bound only.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Why no slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotRefused {
    /// Every slot of the tab is taken.
    Busy,
    /// This visitor holds as many slots as one visitor may.
    VisitorBusy,
}

/// The slots of one tab, keyed by visitor `K`.
#[derive(Debug)]
pub(crate) struct Slots<K> {
    total: usize,
    per_visitor: usize,
    state: Mutex<State<K>>,
}

#[derive(Debug)]
struct State<K> {
    in_use: usize,
    /// Slots held per visitor; a visitor with none has no entry, so the map is bounded by
    /// the slots in use.
    by_visitor: HashMap<K, usize>,
}

/// One slot, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot<K: Hash + Eq> {
    slots: Arc<Slots<K>>,
    visitor: Option<K>,
}

impl<K: Hash + Eq + Clone> Slots<K> {
    /// `total` slots, at most `per_visitor` of them to one visitor.
    pub(crate) fn new(total: usize, per_visitor: usize) -> Self {
        Self {
            total,
            per_visitor,
            state: Mutex::new(State {
                in_use: 0,
                by_visitor: HashMap::new(),
            }),
        }
    }

    /// Takes a slot for `visitor`, or says why not.
    pub(crate) fn try_acquire(
        self: &Arc<Self>,
        visitor: Option<K>,
    ) -> Result<Slot<K>, SlotRefused> {
        let mut state = self.lock();
        if let Some(visitor) = &visitor
            && state.by_visitor.get(visitor).copied().unwrap_or(0) >= self.per_visitor
        {
            return Err(SlotRefused::VisitorBusy);
        }
        if state.in_use >= self.total {
            return Err(SlotRefused::Busy);
        }
        state.in_use += 1;
        if let Some(visitor) = &visitor {
            *state.by_visitor.entry(visitor.clone()).or_insert(0) += 1;
        }
        drop(state);
        Ok(Slot {
            slots: Arc::clone(self),
            visitor,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K: Hash + Eq> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut state = self
            .slots
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.in_use -= 1;
        if let Some(visitor) = &self.visitor
            && let Some(held) = state.by_visitor.get_mut(visitor)
        {
            *held -= 1;
            if *held == 0 {
                state.by_visitor.remove(visitor);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn one_visitor_holds_at_most_its_share_and_others_still_get_slots() {
        let slots = Arc::new(Slots::new(4, 2));
        let a1 = slots.try_acquire(Some('a')).expect("a's first");
        let _a2 = slots.try_acquire(Some('a')).expect("a's second");
        assert_eq!(
            slots.try_acquire(Some('a')).unwrap_err(),
            SlotRefused::VisitorBusy
        );
        let _b1 = slots.try_acquire(Some('b')).expect("b's first");
        let _none = slots.try_acquire(None).expect("no visitor");
        assert_eq!(slots.try_acquire(Some('c')).unwrap_err(), SlotRefused::Busy);
        drop(a1);
        let _c1 = slots.try_acquire(Some('c')).expect("a freed one");
        assert_eq!(
            slots.try_acquire(Some('a')).unwrap_err(),
            SlotRefused::Busy,
            "a is under its share now, but the tab is full"
        );
    }

    #[test]
    fn slots_come_back_and_visitors_are_forgotten() {
        let slots = Arc::new(Slots::new(2, 1));
        for round in 0..100 {
            let a = slots.try_acquire(Some(round)).expect("a");
            let b = slots.try_acquire(Some(round + 1000)).expect("b");
            drop((a, b));
        }
        assert_eq!(slots.lock().in_use, 0);
        assert!(slots.lock().by_visitor.is_empty());
    }
}
