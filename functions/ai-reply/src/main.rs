use ai_reply::Replier;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    inbox_shared::telemetry::init_json_logs();
    let replier = Replier::from_env().await?;
    lambda_runtime::run(lambda_runtime::service_fn(|event| {
        replier.handle_lambda(event)
    }))
    .await
}
