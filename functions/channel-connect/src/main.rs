use channel_connect::ChannelConnect;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    inbox_shared::telemetry::init_json_logs();
    let handler = ChannelConnect::from_env().await?;
    inbox_shared::runner::run_http(&handler).await
}
