//! One load at a time per key, for the caches of a warm container.
//!
//! The records of one SQS batch and the items of one webhook delivery are handled concurrently, so on a
//! cold cache they all miss at once and each would call KMS or DynamoDB for the same value: ten records
//! of one channel cost ten `Decrypt`s instead of one. A cache that takes this lock after a miss, and looks
//! again once it holds it, makes one call per key however many tasks missed together. A task that had to
//! wait and still finds nothing knows the load it waited for failed ([`LoadGuard::waited`]): it can fail
//! at once too, rather than queue another call behind a service that is throttling.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::OwnedMutexGuard;

/// Held while loading a key.
pub struct LoadGuard {
    _lock: OwnedMutexGuard<()>,
    /// Another task was loading the key when this one asked.
    pub waited: bool,
}

pub struct LoadLocks<K> {
    /// Only keys being loaded right now: an entry dies with its last guard.
    locks: Mutex<HashMap<K, Weak<tokio::sync::Mutex<()>>>>,
}

impl<K> Default for LoadLocks<K> {
    fn default() -> Self {
        Self {
            locks: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone> LoadLocks<K> {
    /// Waits until no other task is loading `key`, and holds it until the guard is dropped.
    pub async fn lock(&self, key: &K) -> LoadGuard {
        let lock = {
            let mut locks = self.locks.lock().expect("load locks poisoned");
            locks.retain(|_, lock| lock.strong_count() > 0);
            match locks.get(key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(key.clone(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        match lock.clone().try_lock_owned() {
            Ok(guard) => LoadGuard {
                _lock: guard,
                waited: false,
            },
            Err(_) => LoadGuard {
                _lock: lock.lock_owned().await,
                waited: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// A cache in front of a slow load, used the way the vault and ingest use theirs.
    #[derive(Default)]
    struct Cache {
        values: Mutex<HashMap<&'static str, u32>>,
        loads: AtomicUsize,
        locks: LoadLocks<&'static str>,
    }

    impl Cache {
        async fn get(&self, key: &'static str) -> u32 {
            if let Some(value) = self.values.lock().unwrap().get(key) {
                return *value;
            }
            let _loading = self.locks.lock(&key).await;
            if let Some(value) = self.values.lock().unwrap().get(key) {
                return *value;
            }
            self.loads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.values.lock().unwrap().insert(key, 7);
            7
        }
    }

    #[tokio::test]
    async fn ten_concurrent_misses_of_one_key_load_it_once() {
        let cache = Cache::default();
        let values = futures::future::join_all((0..10).map(|_| cache.get("channel-a"))).await;
        assert_eq!(values, [7; 10]);
        assert_eq!(cache.loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_load_holds_back_its_own_key_only_and_its_lock_is_then_forgotten() {
        use futures::FutureExt;
        let locks = LoadLocks::default();
        let loading_a = locks.lock(&"channel-a").await;
        assert!(!loading_a.waited);
        let mut second_a = Box::pin(locks.lock(&"channel-a"));
        assert!(
            (&mut second_a).now_or_never().is_none(),
            "a second load of a waits"
        );
        assert!(
            locks.lock(&"channel-b").now_or_never().is_some(),
            "b is not held back"
        );
        drop(loading_a);
        assert!(second_a.await.waited, "and knows it waited");
        assert!(locks.lock(&"channel-a").now_or_never().is_some());
        assert!(
            locks
                .locks
                .lock()
                .unwrap()
                .values()
                .all(|l| l.strong_count() == 0),
            "no lock outlives its loads"
        );
    }
}
