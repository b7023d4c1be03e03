//! The store's failures, typed where the caller must decide: retry, give up, or treat a lost condition
//! as an answer.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: the item exists already, or changed under us. Permanent for this write.
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    /// Throttling, a timeout, a 5xx: retry later.
    #[error("DynamoDB unavailable: {0}")]
    Unavailable(String),
    /// DynamoDB refused the request (validation, missing table, access denied). Permanent.
    #[error("DynamoDB rejected the request: {0}")]
    Rejected(String),
    /// An item DynamoDB can never store (over 400 KB, or a key over its limits): permanent for this
    /// item, and checked before writing so one such item does not fail the others.
    #[error("the item cannot be stored: {0}")]
    Unstorable(String),
    /// An item in the table does not decode as the type it claims to be.
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Replaces a conflict's message with one that says what conflicted.
pub(super) fn conflict_as(err: StoreError, what: impl FnOnce() -> String) -> StoreError {
    match err {
        StoreError::Conflict(_) => StoreError::Conflict(what()),
        other => other,
    }
}

/// Whether a conditional write was carried out: a lost condition is an answer (false), not a failure.
pub(super) fn condition_held<T>(result: Result<T>) -> Result<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Classifies an SDK error: conditional-check failures are conflicts; throttling, timeouts and 5xx are
/// retryable; the rest are permanent.
pub(crate) fn dynamo_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().map(str::to_owned);
    let message = err.message().map(str::to_owned);
    let describe = |code: &Option<String>| match (code, &message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.clone(),
        _ => format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&err)),
    };
    match code.as_deref() {
        Some("ConditionalCheckFailedException") => StoreError::Conflict("condition failed".into()),
        Some(
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "TransactionConflictException"
            | "TransactionInProgressException",
        ) => StoreError::Unavailable(describe(&code)),
        Some(_) => StoreError::Rejected(describe(&code)),
        None => match err {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => StoreError::Unavailable(describe(&code)),
            _ => StoreError::Rejected(describe(&code)),
        },
    }
}
