use data_deletion::DataDeletion;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    inbox_shared::telemetry::init_json_logs();
    let handler = DataDeletion::from_env().await?;
    lambda_http::run(lambda_http::service_fn(|request| {
        handler.handle_lambda(request)
    }))
    .await
}
