use webhook_ingest::Ingest;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    inbox_shared::telemetry::init_json_logs();
    let ingest = Ingest::from_env().await?;
    inbox_shared::runner::run_http(&ingest).await
}
