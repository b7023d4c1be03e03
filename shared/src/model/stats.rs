//! A tenant's daily figures per platform, for the console's analytics: counters that each event adds to
//! as it happens (a customer message decided on, a reply delivered), so a report over a year reads one
//! small item per day and platform instead of every message. Counts only: no id, no text.

use std::collections::BTreeMap;

use time::{Duration, OffsetDateTime};

use super::{Author, Platform, ReplyOutcome, TenantId};

/// Upper bounds, in seconds, of the response-time buckets (the last bucket is everything slower). A
/// quantile read from them is exact to the bucket: about a quarter either way across the range from
/// one second to a week, the spread a person reading "median 4 minutes" cares about.
pub const RESPONSE_BUCKET_BOUNDS: [i64; 36] = [
    1, 2, 3, 5, 7, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600, 900, 1_200, 1_800,
    2_700, 3_600, 5_400, 7_200, 10_800, 14_400, 21_600, 28_800, 43_200, 64_800, 86_400, 129_600,
    172_800, 345_600, 604_800,
];
/// One more bucket than bounds: the open-ended slowest.
pub const RESPONSE_BUCKETS: usize = RESPONSE_BUCKET_BOUNDS.len() + 1;

/// Who gave a first response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Responder {
    Ai,
    /// A person of the business: a reply from the console or an approved draft.
    Human,
}

impl Responder {
    pub fn of(author: Author) -> Option<Self> {
        match author {
            Author::Ai => Some(Self::Ai),
            Author::Agent => Some(Self::Human),
            Author::Customer => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Ai => "ai",
            Self::Human => "human",
        }
    }
}

/// One counter of a day's figures; its attribute name is how it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// A customer message after 24 hours without one (or the first ever): a conversation begins.
    Conversations,
    /// A customer message ai-reply decided on.
    CustomerMessages,
    /// What ai-reply did about a customer message.
    Outcome(ReplyOutcome),
    /// A message the business sent through us (the AI's, or a person's from the console or a draft).
    Sent(Responder),
    /// A first response (the first reply after the customer's oldest unanswered message) in bucket `i`
    /// of [`RESPONSE_BUCKET_BOUNDS`].
    FirstResponse(Responder, usize),
}

impl Counter {
    pub fn attribute(self) -> String {
        match self {
            Self::Conversations => "conversations".into(),
            Self::CustomerMessages => "customer_messages".into(),
            Self::Outcome(outcome) => format!("outcome_{}", outcome.as_str()),
            Self::Sent(by) => format!("sent_{}", by.as_str()),
            Self::FirstResponse(by, bucket) => {
                format!("first_response_{}_{bucket:02}", by.as_str())
            }
        }
    }

    /// The first-response counter of a wait of `waited` (a negative wait, from skewed platform clocks,
    /// counts as instant).
    pub fn first_response(by: Responder, waited: Duration) -> Self {
        let seconds = waited.whole_seconds();
        let bucket = RESPONSE_BUCKET_BOUNDS
            .iter()
            .position(|bound| seconds < *bound)
            .unwrap_or(RESPONSE_BUCKET_BOUNDS.len());
        Self::FirstResponse(by, bucket)
    }
}

/// What one event adds to a tenant's figures of its UTC day and platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsDelta {
    pub tenant_id: TenantId,
    pub platform: Platform,
    pub at: OffsetDateTime,
    /// Each adds one.
    pub counters: Vec<Counter>,
}

impl StatsDelta {
    /// The UTC day it is counted in, `YYYY-MM-DD`.
    pub fn day(&self) -> String {
        day_of(self.at)
    }
}

/// `YYYY-MM-DD` of `at` in UTC (a `Date` displays as that, so it sorts as it reads).
pub fn day_of(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC).date().to_string()
}

/// The stored figures of one day and platform, by counter attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyStats {
    pub day: String,
    pub platform: Platform,
    pub counts: BTreeMap<String, u64>,
}

impl DailyStats {
    pub fn count(&self, counter: Counter) -> u64 {
        self.counts.get(&counter.attribute()).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_falls_in_the_first_bucket_whose_bound_exceeds_it() {
        let bucket =
            |seconds| match Counter::first_response(Responder::Ai, Duration::seconds(seconds)) {
                Counter::FirstResponse(_, bucket) => bucket,
                other => panic!("{other:?}"),
            };
        assert_eq!(bucket(-5), 0);
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 1);
        assert_eq!(bucket(59), 10);
        assert_eq!(bucket(60), 11);
        assert_eq!(bucket(604_799), RESPONSE_BUCKET_BOUNDS.len() - 1);
        assert_eq!(bucket(10_000_000), RESPONSE_BUCKET_BOUNDS.len());
    }

    #[test]
    fn counters_have_distinct_attribute_names() {
        let mut names: Vec<String> = vec![
            Counter::Conversations.attribute(),
            Counter::CustomerMessages.attribute(),
        ];
        names.extend(
            ReplyOutcome::ALL
                .iter()
                .map(|o| Counter::Outcome(*o).attribute()),
        );
        for by in [Responder::Ai, Responder::Human] {
            names.push(Counter::Sent(by).attribute());
            names.extend((0..RESPONSE_BUCKETS).map(|i| Counter::FirstResponse(by, i).attribute()));
        }
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count);
        assert_eq!(
            Counter::FirstResponse(Responder::Human, 7).attribute(),
            "first_response_human_07"
        );
    }
}
