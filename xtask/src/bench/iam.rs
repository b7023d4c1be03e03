//! Every AWS operation a function called, matched against its own IAM policy in the template.

use super::aws_proxy::Counts;

use super::deployed;

/// The IAM action that allows an API operation (`DynamoDB_20120810.GetItem` → `dynamodb:GetItem`), and
/// the template resource it is called on: the table, a queue, or the token key (the functions' own KMS
/// calls are the token vault's; the data key only encrypts the table, queues and logs for AWS).
fn iam_action(operation: &str) -> (String, &'static str) {
    match operation.split_once('.') {
        Some(("AmazonSQS", "SendMessageBatch")) => ("sqs:SendMessage".into(), "Queue"),
        Some(("AmazonSQS", name)) => (format!("sqs:{name}"), "Queue"),
        Some(("TrentService", name)) => (format!("kms:{name}"), "TokenKey"),
        Some((_, name)) => (format!("dynamodb:{name}"), "Table"),
        None => (operation.into(), ""),
    }
}

/// The operations `function` called that no statement of its policy in `template` allows on the right
/// resource (its statements: the `- Effect:` items of the resource's block, which runs to the next line
/// indented by two spaces).
pub(super) fn ungranted(template: &str, function: &str, operations: &[String]) -> Vec<String> {
    let resource = deployed(function).resource;
    let block: String = template
        .lines()
        .skip_while(|line| line.trim_end() != format!("  {resource}:"))
        .skip(1)
        .take_while(|line| !line.starts_with("  ") || line.starts_with("   "))
        .collect::<Vec<_>>()
        .join("\n");
    let statements: Vec<&str> = block.split("- Effect:").skip(1).collect();
    operations
        .iter()
        .map(|operation| iam_action(operation))
        .filter(|(action, on)| {
            !statements
                .iter()
                .any(|statement| statement.contains(action.as_str()) && statement.contains(on))
        })
        .map(|(action, _)| action)
        .collect()
}

pub(super) fn operations(counts: &[&Counts]) -> Vec<String> {
    let mut operations: Vec<String> = counts
        .iter()
        .flat_map(|c| c.calls.keys().cloned())
        .collect();
    operations.sort();
    operations.dedup();
    operations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tooling;

    #[test]
    fn every_operation_the_functions_call_is_matched_against_their_own_policy() {
        let template = std::fs::read_to_string(tooling::repo_root().join(crate::infra::TEMPLATE))
            .expect("the template");
        let called = |ops: &[&str]| ops.iter().map(|o| o.to_string()).collect::<Vec<_>>();
        assert!(
            ungranted(
                &template,
                "webhook-ingest",
                &called(&[
                    "DynamoDB_20120810.TransactWriteItems",
                    "AmazonSQS.SendMessageBatch"
                ])
            )
            .is_empty()
        );
        // data-deletion may not use the token key even though its policy names KMS actions on the data
        // key; the sweep's token-health check may open tokens and seal refreshed ones.
        assert_eq!(
            ungranted(
                &template,
                "data-deletion",
                &called(&["TrentService.Decrypt", "TrentService.GenerateDataKey"])
            ),
            ["kms:Decrypt", "kms:GenerateDataKey"]
        );
        assert!(
            ungranted(
                &template,
                "retention-sweep",
                &called(&["TrentService.Decrypt", "TrentService.GenerateDataKey"])
            )
            .is_empty()
        );
        // channel-connect seals tokens and writes channels; it neither queries nor queues.
        assert!(
            ungranted(
                &template,
                "channel-connect",
                &called(&[
                    "DynamoDB_20120810.TransactWriteItems",
                    "DynamoDB_20120810.PutItem",
                    "TrentService.GenerateDataKey"
                ])
            )
            .is_empty()
        );
        assert_eq!(
            ungranted(
                &template,
                "channel-connect",
                &called(&["DynamoDB_20120810.Query", "AmazonSQS.SendMessage"])
            ),
            ["dynamodb:Query", "sqs:SendMessage"]
        );
        assert_eq!(
            ungranted(
                &template,
                "data-deletion",
                &called(&["DynamoDB_20120810.BatchWriteItem"])
            ),
            ["dynamodb:BatchWriteItem"]
        );
    }
}
