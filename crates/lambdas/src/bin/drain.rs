//! `pairscale-drain`: take pairs out of rotation and wait for their calls to end.

use pairscale_aws::cloudwatch::CloudWatchQuality;
use pairscale_aws::dynamodb::DynamoLockStore;
use pairscale_aws::fleet_state::AwsFleetState;
use pairscale_aws::ssm::FleetParams;
use pairscale_core::ports::SystemClock;
use pairscale_lambdas::metrics::Metrics;
use pairscale_lambdas::{config::DrainConfig, handlers::drain::DrainHandler, runtime};
use pairscale_media::{
    DbTls, DispatcherConfig, EslNodes, KamailioDispatcher, KamailioNodes, Password,
};
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let config = DrainConfig::from_env().map_err(runtime::startup_error)?;
    let sdk = pairscale_aws::load_config().await;
    let params = FleetParams::new(aws_sdk_ssm::Client::new(&sdk), "/");
    // The secrets and the CA bundle, read at once: three round trips of the cold start in one.
    let ca_bundle = async {
        match &config.dispatcher_db_ca_param {
            Some(name) => params.text(name).await.map(Some),
            None => Ok(None),
        }
    };
    let (esl_password, db_password, ca_bundle) = tokio::try_join!(
        params.secret(&config.esl_password_param),
        params.secret(&config.dispatcher_db_password_param),
        ca_bundle,
    )
    .map_err(runtime::startup_error)?;
    let dispatcher = DbTls::from_mode(&config.dispatcher_db_sslmode, ca_bundle.as_deref())
        .and_then(|tls| {
            KamailioDispatcher::new(
                DispatcherConfig::with_db(
                    config.dispatcher_db(&db_password),
                    config.kamailio_rpc_url.clone(),
                )
                .with_tls(tls),
            )
        })
        .map_err(|e| {
            runtime::startup_error(pairscale_core::Error::InvalidConfig {
                fleet: "*".into(),
                field: "dispatcher".into(),
                value: String::new(),
                reason: e.to_string(),
            })
        })?;
    let handler = DrainHandler {
        nodes: Arc::new(EslNodes::new(
            Password::new(esl_password),
            config.concurrency,
            Duration::from_millis(config.esl_timeout_ms),
        )),
        dispatcher: Arc::new(KamailioNodes::new(dispatcher)),
        clock: Arc::new(SystemClock),
        metrics: Metrics::stdout(&config.metrics_namespace),
        state: Arc::new(AwsFleetState::new(&sdk, &config.table, &config.ssm_prefix)),
        signals: Arc::new(CloudWatchQuality::new(&sdk)),
        locks: Arc::new(DynamoLockStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.table,
        )),
    };
    runtime::run(|input| handler.handle(input)).await
}
