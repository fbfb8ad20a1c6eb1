//! A cap on the live tails one person has open at once. Each tail polls the store every
//! second for as long as it stays open, so without a cap one person (or one stolen
//! session) could hold the store busy with hundreds. Counted in memory, per node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Open tails per person.
#[derive(Debug)]
pub(crate) struct TailSlots {
    per_person: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One open tail; the slot frees itself when the stream is dropped.
#[derive(Debug)]
pub(crate) struct TailSlot {
    slots: Arc<TailSlots>,
    person: String,
}

impl TailSlots {
    pub(crate) fn new(per_person: usize) -> Self {
        TailSlots {
            per_person,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// How many tails one person may have open.
    pub(crate) fn per_person(&self) -> usize {
        self.per_person
    }

    /// A slot for `person`, or `None` when they already have the most allowed.
    pub(crate) fn take(self: &Arc<Self>, person: &str) -> Option<TailSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(person.to_string()).or_default();
        if *count >= self.per_person {
            return None;
        }
        *count += 1;
        Some(TailSlot {
            slots: self.clone(),
            person: person.to_string(),
        })
    }
}

impl Drop for TailSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.person) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.person);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_person_and_freed_on_drop() {
        let slots = Arc::new(TailSlots::new(2));
        let first = slots.take("usr_a").expect("first");
        let second = slots.take("usr_a").expect("second");
        assert!(slots.take("usr_a").is_none(), "over the cap");
        let other = slots.take("usr_b").expect("another person is not affected");
        drop(first);
        let again = slots.take("usr_a").expect("a freed slot is reusable");
        drop((second, other, again));
        assert!(slots.open.lock().expect("lock").is_empty());
    }
}
