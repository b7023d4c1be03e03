//! The knowledge index of each tenant, built once per warm container and rebuilt when the tenant's
//! knowledge changes. ai-reply reads the entries on every reply anyway (one query of the tenant's
//! partition); their version is a digest of what was read, so an added, edited or deleted entry is
//! seen at the next message without a version counter that every writer would have to keep.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use super::KnowledgeIndex;
use crate::model::{KnowledgeEntry, TenantId};

/// Tenants whose index a container keeps; past it, the least recently used one goes.
const TENANTS_KEPT: usize = 64;

struct Cached {
    version: u64,
    index: Arc<KnowledgeIndex>,
    last_used: u64,
}

/// Indexes by tenant.
#[derive(Default)]
pub struct IndexCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    by_tenant: HashMap<TenantId, Cached>,
    uses: u64,
}

impl IndexCache {
    /// The index of `entries`, the tenant's knowledge as just read: the cached one if they have not
    /// changed since it was built.
    pub fn index(&self, tenant_id: &TenantId, entries: Vec<KnowledgeEntry>) -> Arc<KnowledgeIndex> {
        let version = version_of(&entries);
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.uses += 1;
            let now = state.uses;
            if let Some(cached) = state
                .by_tenant
                .get_mut(tenant_id)
                .filter(|c| c.version == version)
            {
                cached.last_used = now;
                return cached.index.clone();
            }
        }
        // Built outside the lock: another tenant's message need not wait for it.
        let index = Arc::new(KnowledgeIndex::new(entries));
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.by_tenant.len() >= TENANTS_KEPT && !state.by_tenant.contains_key(tenant_id) {
            let oldest = state
                .by_tenant
                .iter()
                .min_by_key(|(_, c)| c.last_used)
                .map(|(tenant, _)| tenant.clone());
            if let Some(oldest) = oldest {
                state.by_tenant.remove(&oldest);
            }
        }
        let last_used = state.uses;
        state.by_tenant.insert(
            tenant_id.clone(),
            Cached {
                version,
                index: index.clone(),
                last_used,
            },
        );
        index
    }
}

/// A digest of the entries' ids and texts, in the order read (the store's key order).
fn version_of(entries: &[KnowledgeEntry]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for entry in entries {
        (
            &entry.entry_id,
            &entry.question,
            &entry.alternates,
            &entry.answer,
        )
            .hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn entry(id: &str, answer: &str) -> KnowledgeEntry {
        KnowledgeEntry {
            tenant_id: TenantId::new("t"),
            entry_id: id.into(),
            question: "What are your opening hours?".into(),
            answer: answer.into(),
            alternates: Vec::new(),
            created_at: datetime!(2026-11-01 0:00 UTC),
        }
    }

    #[test]
    fn the_index_is_built_once_and_again_after_an_edit() {
        let cache = IndexCache::default();
        let first = cache.index(&TenantId::new("t1"), vec![entry("kb_1", "8 to 18")]);
        let again = cache.index(&TenantId::new("t1"), vec![entry("kb_1", "8 to 18")]);
        assert!(Arc::ptr_eq(&first, &again));
        let edited = cache.index(&TenantId::new("t1"), vec![entry("kb_1", "9 to 17")]);
        assert!(!Arc::ptr_eq(&first, &edited));
        assert_eq!(edited.entries()[0].answer, "9 to 17");
        let other_tenant = cache.index(&TenantId::new("t2"), vec![entry("kb_1", "9 to 17")]);
        assert!(!Arc::ptr_eq(&edited, &other_tenant));
    }

    #[test]
    fn the_least_recently_used_tenant_goes_first() {
        let cache = IndexCache::default();
        let kept = cache.index(&TenantId::new("t0"), vec![entry("kb_1", "a")]);
        for i in 1..TENANTS_KEPT {
            cache.index(&TenantId::new(format!("t{i}")), vec![entry("kb_1", "a")]);
        }
        cache.index(&TenantId::new("t0"), vec![entry("kb_1", "a")]);
        cache.index(&TenantId::new("one_more"), vec![entry("kb_1", "a")]);
        assert!(Arc::ptr_eq(
            &kept,
            &cache.index(&TenantId::new("t0"), vec![entry("kb_1", "a")])
        ));
        assert_eq!(cache.state.lock().unwrap().by_tenant.len(), TENANTS_KEPT);
        assert!(
            !cache
                .state
                .lock()
                .unwrap()
                .by_tenant
                .contains_key(&TenantId::new("t1"))
        );
    }
}
