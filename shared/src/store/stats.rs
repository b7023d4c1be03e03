//! A tenant's daily figures per platform ([`crate::model::stats`]): added to atomically by the events
//! that count, read for a period by one Query.

use aws_sdk_dynamodb::types::AttributeValue;
use time::Duration;

use super::error::{Result, StoreError, dynamo_error};
use super::expr::Expr;
use super::table::{Item, Store, epoch_seconds, number, string};
use crate::keys;
use crate::model::stats::{DailyStats, StatsDelta};
use crate::model::{Platform, TenantId};

/// Daily figures are kept as long as usage rows: a year of comparisons, then they expire.
const STATS_KEPT: Duration = Duration::days(super::records::USAGE_KEPT_DAYS);
const KIND: &str = "daily_stats";
/// The attributes of a daily-figures item that are not counters.
const NOT_COUNTERS: [&str; 7] = [
    keys::PK,
    keys::SK,
    keys::KIND,
    keys::TTL,
    "tenant_id",
    "platform",
    "day",
];

impl Store {
    /// Adds `delta` to its day's figures. Never inside a transaction: every event of a tenant's day
    /// and platform writes this one item, and a transaction that touches an item other writes contend
    /// for is cancelled (`TransactionConflict`); single atomic ADDs queue up instead.
    pub async fn add_stats(&self, delta: &StatsDelta) -> Result<()> {
        let (key, expr) = stats_update(delta);
        self.update(&key, expr).send().await.map_err(dynamo_error)?;
        Ok(())
    }

    /// The figures from `first` to `last` (`YYYY-MM-DD`, both included), oldest day first.
    pub async fn daily_stats(
        &self,
        tenant_id: &TenantId,
        first: &str,
        last: &str,
    ) -> Result<Vec<DailyStats>> {
        let items = self
            .query_all_raw(&keys::stats_between(tenant_id, first, last))
            .await?;
        items.iter().map(daily_stats_of).collect()
    }
}

fn stats_update(delta: &StatsDelta) -> (keys::Key, Expr) {
    let day = delta.day();
    let mut expr = Expr::new();
    for counter in &delta.counters {
        expr.add(&counter.attribute(), number(1));
    }
    expr.set("tenant_id", string(&delta.tenant_id))
        .set("platform", string(delta.platform.as_str()))
        .set("day", string(&day))
        .set(keys::KIND, string(KIND))
        .set_if_absent(
            keys::TTL,
            epoch_seconds(delta.at.saturating_add(STATS_KEPT)),
        );
    (
        keys::daily_stats(&delta.tenant_id, &day, delta.platform),
        expr,
    )
}

fn daily_stats_of(item: &Item) -> Result<DailyStats> {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("daily figures without {name}")))
    };
    let platform: Platform = text("platform")?
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("daily figures: {e}")))?;
    let counts = item
        .iter()
        .filter(|(name, _)| !NOT_COUNTERS.contains(&name.as_str()))
        .filter_map(|(name, value)| match value {
            AttributeValue::N(n) => Some((name.clone(), n.parse::<u64>().unwrap_or(0))),
            _ => None,
        })
        .collect();
    Ok(DailyStats {
        day: text("day")?.clone(),
        platform,
        counts,
    })
}
