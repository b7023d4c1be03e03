use ai_reply::Replier;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    inbox_shared::telemetry::init_json_logs();
    let replier = Replier::from_env().await?;
    inbox_shared::runner::run_events(&replier).await
}
