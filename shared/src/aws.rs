//! AWS clients, built once per process from the standard environment (`AWS_REGION`, credentials,
//! `AWS_ENDPOINT_URL` for the local emulator).

use aws_config::BehaviorVersion;

#[derive(Debug, Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub kms: aws_sdk_kms::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    pub async fn from_env() -> Self {
        Self::from_sdk_config(&aws_config::defaults(BehaviorVersion::latest()).load().await)
    }

    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            kms: aws_sdk_kms::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
        }
    }
}
