//! A tenant's analytics over a period of UTC days, per platform: conversations, messages, what the AI
//! did about the customers' messages, and how fast the first response came (AI and people apart). Read
//! from the daily figures ([`crate::model::stats`]) the events count as they happen: one Query, however
//! many messages the period holds.
//!
//! Definitions (the README's "Console API" section repeats them for the business):
//! - a **conversation** begins with a customer message after 24 hours without one (the platforms'
//!   messaging window), so a returning customer counts again, a burst of messages once;
//! - the **shares** are of the customer messages the AI decided on: all of them except those a newer
//!   message of the same burst superseded and greetings or thanks that needed nothing;
//! - a **first response** ends a wait: from the oldest customer message not yet answered to the next
//!   message the business sent through us (the AI's, or a person's from the console or an approved
//!   draft). Replies typed in Meta's own inbox end the wait unmeasured. Quantiles are read from
//!   buckets ([`RESPONSE_BUCKET_BOUNDS`]), interpolated within the bucket.

use std::collections::BTreeMap;

use serde::Serialize;
use time::{Date, Duration};

use crate::model::stats::{
    Counter, DailyStats, RESPONSE_BUCKET_BOUNDS, RESPONSE_BUCKETS, Responder, StatsDelta,
};
use crate::model::{Platform, ReplyOutcome, TenantId};
use crate::store::{Store, StoreError};

/// The longest period one report covers: the figures are kept about that long.
pub const MAX_PERIOD_DAYS: i64 = 366;

/// A period of whole UTC days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub first: Date,
    pub last: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("{0:?} is not a date (YYYY-MM-DD)")]
    NotADate(String),
    #[error("the period ends before it begins")]
    Reversed,
    #[error("the period is longer than {MAX_PERIOD_DAYS} days")]
    TooLong,
}

impl Period {
    pub fn new(first: Date, last: Date) -> Result<Self, PeriodError> {
        if last < first {
            return Err(PeriodError::Reversed);
        }
        if (last - first).whole_days() >= MAX_PERIOD_DAYS {
            return Err(PeriodError::TooLong);
        }
        Ok(Self { first, last })
    }

    /// The `days` days up to and including `last`.
    pub fn ending(last: Date, days: i64) -> Self {
        let first = last
            .checked_sub(Duration::days(days.clamp(1, MAX_PERIOD_DAYS) - 1))
            .unwrap_or(Date::MIN);
        Self { first, last }
    }

    pub fn parse_day(text: &str) -> Result<Date, PeriodError> {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        Date::parse(text, &format).map_err(|_| PeriodError::NotADate(text.to_owned()))
    }
}

/// Median and 90th percentile of first-response times, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseTimes {
    pub count: u64,
    pub median_seconds: Option<u64>,
    pub p90_seconds: Option<u64>,
}

/// The count of an outcome and its share of the messages decided on (`None` when there were none).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Share {
    pub count: u64,
    pub share: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlatformFigures {
    pub platform: Platform,
    pub conversations: u64,
    pub customer_messages: u64,
    pub sent_by_ai: u64,
    pub sent_by_people: u64,
    /// Customer messages the AI decided on: the denominator of the shares.
    pub decided: u64,
    pub answered_by_ai: Share,
    pub drafted: Share,
    pub handed_off: Share,
    /// Every outcome by its name, for the curious (superseded and greetings included).
    pub outcomes: BTreeMap<&'static str, u64>,
    pub first_response_ai: ResponseTimes,
    pub first_response_human: ResponseTimes,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    /// Every platform with figures in the period, in a fixed order.
    pub platforms: Vec<PlatformFigures>,
}

/// Adds an event to its day's figures, after the event itself was recorded. The figures are counted
/// at most once (a retry finds the event recorded and counts nothing) and never hold an operation
/// back: a failure here is logged and the event stands uncounted.
pub async fn count(store: &Store, delta: StatsDelta) {
    if let Err(err) = store.add_stats(&delta).await {
        tracing::warn!(tenant_id = %delta.tenant_id, error = %err, "an event was not counted in the day's figures");
    }
}

/// The tenant's figures over `period`.
pub async fn report(
    store: &Store,
    tenant_id: &TenantId,
    period: Period,
) -> Result<Report, StoreError> {
    let (from, to) = (period.first.to_string(), period.last.to_string());
    let days = store.daily_stats(tenant_id, &from, &to).await?;
    Ok(Report {
        platforms: Platform::ALL
            .iter()
            .filter_map(|platform| {
                let days: Vec<&DailyStats> =
                    days.iter().filter(|d| d.platform == *platform).collect();
                (!days.is_empty()).then(|| figures(*platform, &days))
            })
            .collect(),
        from,
        to,
    })
}

fn figures(platform: Platform, days: &[&DailyStats]) -> PlatformFigures {
    let total = |counter: Counter| days.iter().map(|d| d.count(counter)).sum::<u64>();
    let outcome = |o: ReplyOutcome| total(Counter::Outcome(o));
    let decided = ReplyOutcome::ALL
        .iter()
        .filter(|o| !matches!(o, ReplyOutcome::Superseded | ReplyOutcome::NothingToAnswer))
        .map(|o| outcome(*o))
        .sum::<u64>();
    let share = |o: ReplyOutcome| {
        let count = outcome(o);
        Share {
            count,
            share: (decided > 0).then(|| count as f64 / decided as f64),
        }
    };
    let response_times = |by: Responder| {
        let buckets: Vec<u64> = (0..RESPONSE_BUCKETS)
            .map(|i| total(Counter::FirstResponse(by, i)))
            .collect();
        ResponseTimes {
            count: buckets.iter().sum(),
            median_seconds: quantile(&buckets, 0.5),
            p90_seconds: quantile(&buckets, 0.9),
        }
    };
    PlatformFigures {
        platform,
        conversations: total(Counter::Conversations),
        customer_messages: total(Counter::CustomerMessages),
        sent_by_ai: total(Counter::Sent(Responder::Ai)),
        sent_by_people: total(Counter::Sent(Responder::Human)),
        decided,
        answered_by_ai: share(ReplyOutcome::Replied),
        drafted: share(ReplyOutcome::Drafted),
        handed_off: share(ReplyOutcome::HandedOff),
        outcomes: ReplyOutcome::ALL
            .iter()
            .map(|o| (o.as_str(), outcome(*o)))
            .filter(|(_, n)| *n > 0)
            .collect(),
        first_response_ai: response_times(Responder::Ai),
        first_response_human: response_times(Responder::Human),
    }
}

/// The `q` quantile (0 < q ≤ 1) of the times counted in `buckets`, in seconds: the bucket holding the
/// `⌈q·n⌉`-th time, interpolated linearly within it; the open-ended last bucket reads as its lower
/// bound ("a week or more").
fn quantile(buckets: &[u64], q: f64) -> Option<u64> {
    let n: u64 = buckets.iter().sum();
    if n == 0 {
        return None;
    }
    let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
    let mut below = 0u64;
    for (i, count) in buckets.iter().enumerate() {
        if *count > 0 && below + count >= rank {
            let low = if i == 0 {
                0
            } else {
                RESPONSE_BUCKET_BOUNDS[i - 1]
            };
            let Some(high) = RESPONSE_BUCKET_BOUNDS.get(i) else {
                return Some(low as u64);
            };
            let within = (rank - below) as f64 / *count as f64;
            return Some((low as f64 + within * (high - low) as f64).round() as u64);
        }
        below += count;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(times: &[i64]) -> Vec<u64> {
        let mut buckets = vec![0; RESPONSE_BUCKETS];
        for t in times {
            match Counter::first_response(Responder::Ai, Duration::seconds(*t)) {
                Counter::FirstResponse(_, i) => buckets[i] += 1,
                other => panic!("{other:?}"),
            }
        }
        buckets
    }

    #[test]
    fn quantiles_land_in_the_bucket_of_the_true_value() {
        // 10 waits: 2 s ×5, 40 s ×4, 1 h ×1: the median is 2 s, p90 40 s.
        let buckets = counted(&[2, 2, 2, 2, 2, 40, 40, 40, 40, 3600]);
        let median = quantile(&buckets, 0.5).unwrap();
        assert!((2..=3).contains(&median), "{median}");
        let p90 = quantile(&buckets, 0.9).unwrap();
        assert!((30..=45).contains(&p90), "{p90}");
        assert_eq!(quantile(&vec![0; RESPONSE_BUCKETS], 0.5), None);
        // A single wait of over a week reads as a week.
        assert_eq!(quantile(&counted(&[2_000_000]), 0.9), Some(604_800));
    }

    #[test]
    fn a_period_is_checked() {
        let day = |t| Period::parse_day(t).unwrap();
        assert!(Period::new(day("2026-01-01"), day("2026-12-31")).is_ok());
        assert_eq!(
            Period::new(day("2026-02-01"), day("2026-01-31")),
            Err(PeriodError::Reversed)
        );
        assert_eq!(
            Period::new(day("2025-01-01"), day("2026-01-02")),
            Err(PeriodError::TooLong)
        );
        assert_eq!(
            Period::parse_day("2026-13-01"),
            Err(PeriodError::NotADate("2026-13-01".into()))
        );
        assert!(Period::parse_day("2026-1-1").is_err());
        let last30 = Period::ending(day("2026-03-01"), 30);
        assert_eq!(last30.first.to_string(), "2026-01-31");
    }
}
