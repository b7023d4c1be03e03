use data_deletion::DataDeletion;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    inbox_shared::telemetry::init_json_logs();
    let handler = DataDeletion::from_env().await?;
    inbox_shared::runner::run_http(&handler).await
}
