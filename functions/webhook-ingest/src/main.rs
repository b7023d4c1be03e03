use webhook_ingest::Ingest;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    inbox_shared::telemetry::init_json_logs();
    let ingest = Ingest::from_env().await?;
    lambda_http::run(lambda_http::service_fn(|request| {
        ingest.handle_lambda(request)
    }))
    .await
}
