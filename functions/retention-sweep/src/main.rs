use retention_sweep::Sweeper;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    inbox_shared::telemetry::init_json_logs();
    let sweeper = Sweeper::from_env().await?;
    inbox_shared::runner::run_events(&sweeper).await
}
