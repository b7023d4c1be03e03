//! What a million customer messages cost on AWS, each answered by the AI, computed from the bench's
//! measured counts and AWS list prices (us-east-1, on-demand, without free tiers). The LLM provider's own
//! price is not included: it depends on the provider and the model, and dwarfs the rest.

/// AWS list prices in US dollars (us-east-1).
pub struct Prices {
    /// Lambda, arm64, per GB-second of billed duration.
    pub lambda_gb_second: f64,
    /// Lambda, per request.
    pub lambda_request: f64,
    /// API Gateway HTTP API, per request (first 300 million a month).
    pub http_api_request: f64,
    /// DynamoDB on-demand, per write request unit.
    pub dynamodb_write_unit: f64,
    /// DynamoDB on-demand, per read request unit.
    pub dynamodb_read_unit: f64,
    /// SQS FIFO, per request (64 KiB chunk).
    pub sqs_fifo_request: f64,
    /// KMS, per API request.
    pub kms_request: f64,
    /// CloudWatch Logs ingestion, per GB.
    pub logs_gb: f64,
}

pub const LIST_PRICES: Prices = Prices {
    lambda_gb_second: 0.000_013_333_4,
    lambda_request: 0.20 / 1e6,
    http_api_request: 1.00 / 1e6,
    dynamodb_write_unit: 0.625 / 1e6,
    dynamodb_read_unit: 0.125 / 1e6,
    sqs_fifo_request: 0.50 / 1e6,
    kms_request: 0.03 / 1e4,
    logs_gb: 0.50,
};

/// One function's measured cost drivers, per message it handles.
#[derive(Debug, Clone, Copy, Default)]
pub struct PerMessage {
    /// HTTP API requests (deliveries) per message.
    pub http_requests: f64,
    /// Lambda invocations per message.
    pub invocations: f64,
    /// Billed duration of one invocation, in ms (Lambda rounds each up to the millisecond).
    pub billed_ms_per_invocation: f64,
    pub memory_mb: f64,
    pub write_units: f64,
    pub read_units: f64,
    pub sqs_requests: f64,
    pub kms_requests: f64,
    pub log_bytes: f64,
}

/// Dollars per million messages, by line item.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub items: Vec<(&'static str, f64)>,
}

impl Estimate {
    pub fn total(&self) -> f64 {
        self.items.iter().map(|(_, dollars)| dollars).sum()
    }
}

/// The cost of a million messages that each pass through every function in `stages`.
pub fn per_million(stages: &[PerMessage], prices: &Prices) -> Estimate {
    let sum = |f: &dyn Fn(&PerMessage) -> f64| stages.iter().map(f).sum::<f64>() * 1e6;
    let items = vec![
        (
            "API Gateway HTTP API",
            sum(&|s| s.http_requests) * prices.http_api_request,
        ),
        (
            "Lambda requests",
            sum(&|s| s.invocations) * prices.lambda_request,
        ),
        (
            "Lambda duration (arm64)",
            sum(&|s| {
                s.invocations * s.billed_ms_per_invocation.ceil() / 1000.0 * s.memory_mb / 1024.0
            }) * prices.lambda_gb_second,
        ),
        (
            "DynamoDB writes",
            sum(&|s| s.write_units) * prices.dynamodb_write_unit,
        ),
        (
            "DynamoDB reads",
            sum(&|s| s.read_units) * prices.dynamodb_read_unit,
        ),
        (
            "SQS (FIFO)",
            sum(&|s| s.sqs_requests) * prices.sqs_fifo_request,
        ),
        ("KMS", sum(&|s| s.kms_requests) * prices.kms_request),
        (
            "CloudWatch Logs ingestion",
            sum(&|s| s.log_bytes) / 1e9 * prices.logs_gb,
        ),
    ];
    Estimate { items }
}

/// What each extra second of waiting for the LLM adds per million replies (ai-reply's billed time).
pub fn llm_wait_per_second(memory_mb: f64, prices: &Prices) -> f64 {
    1e6 * memory_mb / 1024.0 * prices.lambda_gb_second
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_item_is_count_times_price_per_million() {
        let ingest = PerMessage {
            http_requests: 0.1,
            invocations: 0.1,
            billed_ms_per_invocation: 19.2,
            memory_mb: 256.0,
            write_units: 6.0,
            read_units: 0.0,
            sqs_requests: 0.1,
            kms_requests: 0.0,
            log_bytes: 100.0,
        };
        let estimate = per_million(&[ingest], &LIST_PRICES);
        let item = |name: &str| {
            estimate
                .items
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, d)| *d)
                .unwrap()
        };
        assert!((item("API Gateway HTTP API") - 0.10).abs() < 1e-9);
        assert!((item("Lambda requests") - 0.02).abs() < 1e-9);
        // 100,000 invocations × 20 ms (rounded up) × 0.25 GB = 500 GB-s.
        assert!((item("Lambda duration (arm64)") - 500.0 * 0.000_013_333_4).abs() < 1e-9);
        assert!((item("DynamoDB writes") - 3.75).abs() < 1e-9);
        assert!((item("SQS (FIFO)") - 0.05).abs() < 1e-9);
        assert!((item("CloudWatch Logs ingestion") - 0.05).abs() < 1e-9);
        assert!(
            (estimate.total() - estimate.items.iter().map(|(_, d)| d).sum::<f64>()).abs() < 1e-12
        );
    }

    #[test]
    fn a_second_of_llm_wait_at_256_mb_costs_about_3_dollars_33_per_million() {
        assert!((llm_wait_per_second(256.0, &LIST_PRICES) - 3.33335).abs() < 1e-6);
    }
}
