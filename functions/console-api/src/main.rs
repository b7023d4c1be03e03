use console_api::ConsoleApi;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    inbox_shared::telemetry::init_json_logs();
    let handler = ConsoleApi::from_env().await?;
    inbox_shared::runner::run_http(&handler).await
}
