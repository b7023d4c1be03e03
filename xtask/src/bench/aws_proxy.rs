//! A counting proxy in front of the AWS emulator, on a loopback port: a function binary pointed at it
//! (`AWS_ENDPOINT_URL`) is measured unmodified. Every request is forwarded as it is and counted by its
//! operation (the `X-Amz-Target` header of DynamoDB's, KMS's and SQS's JSON protocols), and DynamoDB
//! requests are priced in capacity units as on-demand billing counts them (see [`capacity_units`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use tokio::net::TcpListener;

/// Calls by operation, and DynamoDB capacity units, since the last [`AwsProxy::take`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub calls: BTreeMap<String, u64>,
    pub write_units: f64,
    pub read_units: f64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.calls.values().sum()
    }

    /// Calls to one service (`DynamoDB`, `TrentService` for KMS, `AmazonSQS`).
    pub fn of_service(&self, service: &str) -> u64 {
        self.calls
            .iter()
            .filter(|(operation, _)| operation.starts_with(&format!("{service}.")))
            .map(|(_, n)| n)
            .sum()
    }

    /// "Operation ×N" for each operation, without the service prefix.
    pub fn describe(&self) -> String {
        self.calls
            .iter()
            .map(|(operation, n)| {
                let name = operation.rsplit('.').next().unwrap_or(operation);
                format!("{name} ×{n}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub struct AwsProxy {
    pub url: String,
    counts: Arc<Mutex<Counts>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AwsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AwsProxy {
    pub async fn start(upstream: &str) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let counts: Arc<Mutex<Counts>> = Arc::default();
        let forward = Arc::new(Forward {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            counts: counts.clone(),
        });
        let task = tokio::spawn(crate::http::serve(listener, move |request| {
            let forward = forward.clone();
            async move { forward.forward(request).await }
        }));
        Ok(Self {
            url: format!("http://{addr}"),
            counts,
            task,
        })
    }

    /// The counts so far, and a fresh start.
    pub fn take(&self) -> Counts {
        std::mem::take(&mut *self.counts.lock().unwrap())
    }
}

struct Forward {
    upstream: String,
    client: reqwest::Client,
    counts: Arc<Mutex<Counts>>,
}

impl Forward {
    async fn forward(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let operation = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown")
            .to_owned();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let mut upstream = self
            .client
            .request(parts.method.clone(), format!("{}{path}", self.upstream));
        for (name, value) in &parts.headers {
            if !matches!(name.as_str(), "host" | "content-length" | "connection") {
                upstream = upstream.header(name, value);
            }
        }
        let answer = match upstream.body(body.clone()).send().await {
            Ok(answer) => answer,
            Err(err) => {
                return Response::builder()
                    .status(502)
                    .body(Full::new(Bytes::from(err.to_string())))
                    .expect("a valid response");
            }
        };
        let status = answer.status();
        let headers = answer.headers().clone();
        let answer_body = answer.bytes().await.unwrap_or_default();
        {
            let (write, read) = capacity_units(&operation, &body, answer_body.len());
            let mut counts = self.counts.lock().unwrap();
            *counts.calls.entry(operation).or_default() += 1;
            counts.write_units += write;
            counts.read_units += read;
        }
        let mut response = Response::builder().status(status);
        for (name, value) in &headers {
            if !matches!(
                name.as_str(),
                "content-length" | "connection" | "transfer-encoding"
            ) {
                response = response.header(name, value);
            }
        }
        response
            .body(Full::new(answer_body))
            .expect("a valid response")
    }
}

/// DynamoDB on-demand capacity of one request, (write units, read units), as billing counts them: a
/// write is 1 unit per KiB of the item, and again for each secondary index the item is in (its `gsi1pk`,
/// `gsi2pk`), twice all that inside a transaction; a read is 1 unit per 4 KiB read, half that when
/// eventually consistent. Item sizes are taken from the request (a put's item in
/// wire JSON, which overstates its stored size) or, for reads and updates, from what came back or a
/// single unit, so the estimate errs on the high side for puts and on the low side for updates of large
/// items. Non-DynamoDB operations cost no units.
pub fn capacity_units(operation: &str, request: &[u8], response_len: usize) -> (f64, f64) {
    let Some(operation) = operation.strip_prefix("DynamoDB_20120810.") else {
        return (0.0, 0.0);
    };
    let body: serde_json::Value = serde_json::from_slice(request).unwrap_or_default();
    let kib = |item: &serde_json::Value| {
        let size = (item.to_string().len() as f64 / 1024.0).ceil().max(1.0);
        let indexes = ["gsi1pk", "gsi2pk"]
            .iter()
            .filter(|attribute| item.get(**attribute).is_some())
            .count();
        size * (1 + indexes) as f64
    };
    let read = |consistent: bool| {
        let units = (response_len as f64 / 4096.0).ceil().max(1.0);
        if consistent { units } else { units / 2.0 }
    };
    let consistent = body["ConsistentRead"].as_bool().unwrap_or(false);
    match operation {
        "PutItem" => (kib(&body["Item"]), 0.0),
        "UpdateItem" | "DeleteItem" => (1.0, 0.0),
        "BatchWriteItem" => {
            let units = body["RequestItems"]
                .as_object()
                .into_iter()
                .flat_map(|tables| tables.values())
                .filter_map(|requests| requests.as_array())
                .flatten()
                .map(|request| match request.get("PutRequest") {
                    Some(put) => kib(&put["Item"]),
                    None => 1.0,
                })
                .sum();
            (units, 0.0)
        }
        "TransactWriteItems" => {
            let units: f64 = body["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|item| match item.get("Put") {
                    Some(put) => kib(&put["Item"]),
                    None => 1.0,
                })
                .sum();
            (2.0 * units, 0.0)
        }
        "GetItem" | "Query" | "Scan" => (0.0, read(consistent)),
        "BatchGetItem" | "TransactGetItems" => (0.0, 2.0 * read(true)),
        _ => (0.0, 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_of_three_small_items_costs_six_write_units() {
        let request = serde_json::json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}}}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "b"}}}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "c"}}}},
        ]});
        let units = capacity_units(
            "DynamoDB_20120810.TransactWriteItems",
            request.to_string().as_bytes(),
            2,
        );
        assert_eq!(units, (6.0, 0.0));
    }

    #[test]
    fn reads_cost_half_a_unit_per_4_kib_unless_consistent() {
        let eventual = capacity_units("DynamoDB_20120810.Query", b"{}", 9_000);
        assert_eq!(eventual, (0.0, 1.5));
        let consistent = capacity_units(
            "DynamoDB_20120810.GetItem",
            br#"{"ConsistentRead": true}"#,
            100,
        );
        assert_eq!(consistent, (0.0, 1.0));
    }

    #[test]
    fn a_batch_write_costs_a_unit_per_kib_of_each_put_and_one_per_delete() {
        let big = "x".repeat(1_500);
        let request = serde_json::json!({"RequestItems": {"t": [
            {"PutRequest": {"Item": {"pk": {"S": big}}}},
            {"DeleteRequest": {"Key": {"pk": {"S": "a"}}}},
        ]}});
        let units = capacity_units(
            "DynamoDB_20120810.BatchWriteItem",
            request.to_string().as_bytes(),
            2,
        );
        assert_eq!(units, (3.0, 0.0));
    }

    #[test]
    fn a_put_also_pays_for_each_index_the_item_is_in() {
        let request = serde_json::json!({"Item": {"pk": {"S": "a"}, "gsi2pk": {"S": "T#CONTENT"}}});
        let units = capacity_units(
            "DynamoDB_20120810.PutItem",
            request.to_string().as_bytes(),
            2,
        );
        assert_eq!(units, (2.0, 0.0));
    }

    #[test]
    fn other_services_cost_no_capacity() {
        assert_eq!(
            capacity_units("TrentService.Decrypt", b"{}", 100),
            (0.0, 0.0)
        );
    }
}
