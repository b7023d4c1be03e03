use retention_sweep::Sweeper;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    inbox_shared::telemetry::init_json_logs();
    let sweeper = Sweeper::from_env().await?;
    lambda_runtime::run(lambda_runtime::service_fn(|event| {
        sweeper.handle_lambda(event)
    }))
    .await
}
