//! Counting AWS calls by operation (an SDK interceptor on every client), and injecting precise faults on
//! the wire: dropping one entry from a `SendMessageBatch` request, so SQS really never receives it, or
//! failing the nth call of one operation before it is sent (a crash or an outage mid-way).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_sqs::config::interceptors::{
    BeforeTransmitInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::body::SdkBody;
use inbox_shared::aws::AwsClients;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Drops the entry with this `Id` from the `nth` (0-based) `SendMessageBatch` request.
#[derive(Debug, Clone)]
pub struct DropBatchEntry {
    pub nth_call: usize,
    pub entry_id: String,
}

/// Fails `times` consecutive calls of `operation` before they are sent, from its `nth` (0-based, counted
/// from the last reset) call on.
#[derive(Debug, Clone)]
pub struct FailCall {
    pub operation: String,
    pub nth_call: usize,
    pub times: usize,
}

#[derive(Debug, Default)]
struct State {
    counts: BTreeMap<String, usize>,
    send_batch_calls: usize,
    drop: Option<DropBatchEntry>,
    dropped: usize,
    fail: Option<FailCall>,
}

/// Shared by the clients it is installed in; clones see the same counts.
#[derive(Debug, Clone, Default)]
pub struct AwsCalls {
    state: Arc<Mutex<State>>,
}

impl AwsCalls {
    pub fn dropping(drop: DropBatchEntry) -> Self {
        let calls = Self::default();
        calls.state.lock().unwrap().drop = Some(drop);
        calls
    }

    /// From now on, fails the `nth_call` call of `operation` (once).
    pub fn fail(&self, operation: &str, nth_call: usize) {
        self.fail_times(operation, nth_call, 1);
    }

    /// From now on, fails `times` calls of `operation` in a row from its `nth_call` call: an outage that
    /// outlasts the client's own retries.
    pub fn fail_times(&self, operation: &str, nth_call: usize, times: usize) {
        let mut state = self.state.lock().unwrap();
        let already = state.counts.get(operation).copied().unwrap_or(0);
        state.fail = Some(FailCall {
            operation: operation.to_owned(),
            nth_call: already + nth_call,
            times,
        });
    }

    /// Clients for `sdk` with this counter installed.
    pub fn clients(&self, sdk: &aws_config::SdkConfig) -> AwsClients {
        AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(sdk)
                    .interceptor(self.clone())
                    .build(),
            ),
            kms: aws_sdk_kms::Client::from_conf(
                aws_sdk_kms::config::Builder::from(sdk)
                    .interceptor(self.clone())
                    .build(),
            ),
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(sdk)
                    .interceptor(self.clone())
                    .build(),
            ),
        }
    }

    /// Calls of one operation (`Decrypt`, `SendMessageBatch`, `PutItem`…) since the last reset.
    pub fn count(&self, operation: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .counts
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    pub fn total(&self) -> usize {
        self.state.lock().unwrap().counts.values().sum()
    }

    pub fn snapshot(&self) -> BTreeMap<String, usize> {
        self.state.lock().unwrap().counts.clone()
    }

    /// Entries dropped by the fault so far.
    pub fn dropped(&self) -> usize {
        self.state.lock().unwrap().dropped
    }

    pub fn reset(&self) {
        let mut state = self.state.lock().unwrap();
        state.counts.clear();
        state.send_batch_calls = 0;
    }
}

fn operation_of(target: Option<&str>) -> String {
    target
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("unknown")
        .to_owned()
}

impl Intercept for AwsCalls {
    fn name(&self) -> &'static str {
        "AwsCalls"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        if operation_of(request.headers().get("x-amz-target")) != "SendMessageBatch" {
            return Ok(());
        }
        let mut state = self.state.lock().unwrap();
        let call = state.send_batch_calls;
        state.send_batch_calls += 1;
        let Some(drop) = state.drop.clone().filter(|d| d.nth_call == call) else {
            return Ok(());
        };
        let Some(body) = request.body().bytes() else {
            return Ok(());
        };
        let mut json: serde_json::Value = serde_json::from_slice(body)?;
        let entries = json["Entries"]
            .as_array_mut()
            .ok_or("SendMessageBatch without Entries")?;
        let before = entries.len();
        entries.retain(|e| e["Id"] != serde_json::json!(drop.entry_id));
        state.dropped += before - entries.len();
        let bytes = serde_json::to_vec(&json)?;
        request
            .headers_mut()
            .insert("content-length", bytes.len().to_string());
        *request.body_mut() = SdkBody::from(bytes);
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = operation_of(context.request().headers().get("x-amz-target"));
        let mut state = self.state.lock().unwrap();
        let count = state.counts.entry(operation.clone()).or_default();
        let this_call = *count;
        *count += 1;
        if let Some(fail) = state.fail.as_mut().filter(|f| {
            f.operation == operation && (f.nth_call..f.nth_call + f.times).contains(&this_call)
        }) {
            if this_call + 1 == fail.nth_call + fail.times {
                state.fail = None;
            }
            return Err(format!("injected failure of {operation} call {this_call}").into());
        }
        Ok(())
    }
}
