//! The local AWS emulator: its SDK configuration, and what a deployment's Terraform would have
//! made before pairscale runs (the fleet table, a fleet's parameters).

use crate::error::KitError;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use serde_json::Value;

/// The SDK configuration for the emulator, from the standard environment; an error unless
/// `AWS_ENDPOINT_URL` points at this machine (the services `./tests/run` starts).
pub async fn sdk() -> Result<SdkConfig, KitError> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    if !(endpoint.starts_with("http://127.0.0.1") || endpoint.starts_with("http://localhost")) {
        return Err(KitError::NotStarted {
            var: "AWS_ENDPOINT_URL",
            value: endpoint,
            service: "the local AWS emulator",
        });
    }
    Ok(aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await)
}

/// Create the pairscale table as Terraform does: `pk`/`sk` strings, on demand, TTL on `ttl`.
pub async fn create_table(sdk: &SdkConfig, name: &str) -> Result<(), KitError> {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(KitError::aws("an attribute definition"))
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(KitError::aws("a key schema element"))
    };
    ddb.create_table()
        .table_name(name)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(KitError::aws(format!("create table {name}")))?;
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name("ttl")
        .enabled(true)
        .build()
        .map_err(KitError::aws("a TTL specification"))?;
    ddb.update_time_to_live()
        .table_name(name)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(KitError::aws(format!("enable TTL on {name}")))?;
    Ok(())
}

/// Write a fleet's SSM parameters: its pair count and its configuration (JSON).
pub async fn put_fleet_params(
    sdk: &SdkConfig,
    prefix: &str,
    fleet: &str,
    count: &str,
    config: &Value,
) -> Result<(), KitError> {
    let ssm = aws_sdk_ssm::Client::new(sdk);
    for (name, value) in [
        ("pair_count", count.to_string()),
        ("config", config.to_string()),
    ] {
        let name = format!("{prefix}/{fleet}/{name}");
        ssm.put_parameter()
            .name(&name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(KitError::aws(format!("put parameter {name}")))?;
    }
    Ok(())
}
