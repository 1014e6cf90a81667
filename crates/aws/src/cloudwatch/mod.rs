//! CloudWatch: the operator's own call-quality metric (`canary.operator_metric`), read with
//! `GetMetricData` as one period over its window.
//!
//! The client is pinned to the last release that speaks CloudWatch's query protocol (the
//! service takes it as well as the newer CBOR one), since the local emulator the tests run
//! against answers only the query protocol.

mod signals;

pub use signals::{CloudWatchSignals, HISTORY_PERIOD_SECONDS};

use crate::error::classify;
use async_trait::async_trait;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use aws_sdk_cloudwatch::Client;
use pairscale_core::ports::QualitySignals;
use pairscale_core::{Error, Mos, OperatorMetric, Result, Timestamp};
use tracing::instrument;

#[derive(Debug, Clone)]
pub struct CloudWatchQuality {
    client: Client,
}

impl CloudWatchQuality {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        CloudWatchQuality {
            client: Client::new(sdk),
        }
    }
}

#[async_trait]
impl QualitySignals for CloudWatchQuality {
    #[instrument(skip(self, metric), fields(metric = %metric.label()))]
    async fn operator_mos(&self, metric: &OperatorMetric, now: Timestamp) -> Result<Option<Mos>> {
        // The window ends at the next whole second, so that a data point published in the
        // current second counts (CloudWatch takes whole seconds and excludes the end).
        let end = (now.millis().div_euclid(1000) + 1) * 1000;
        let start = end - i64::from(metric.window_seconds) * 1000;
        let mut m = Metric::builder()
            .namespace(&metric.namespace)
            .metric_name(&metric.metric_name);
        for (name, value) in &metric.dimensions {
            m = m.dimensions(Dimension::builder().name(name).value(value).build());
        }
        let query = MetricDataQuery::builder()
            .id("mos")
            .metric_stat(
                MetricStat::builder()
                    .metric(m.build())
                    .period(metric.window_seconds as i32)
                    .stat(metric.statistic.as_str())
                    .build(),
            )
            .return_data(true)
            .build();
        let out = self
            .client
            .get_metric_data()
            .metric_data_queries(query)
            .start_time(DateTime::from_millis(start))
            .end_time(DateTime::from_millis(end))
            .send()
            .await
            .map_err(|e| classify("cloudwatch:GetMetricData", e))?;
        // One period over the window; should CloudWatch split it at a period boundary, the
        // worse of the parts stands.
        let values: Vec<f64> = out
            .metric_data_results()
            .iter()
            .flat_map(|r| r.values().iter().copied())
            .collect();
        let mut worst: Option<Mos> = None;
        for v in values {
            let mos = Mos::from_f64(v)
                .filter(|m| *m >= Mos::WORST)
                .ok_or_else(|| Error::Aws {
                    operation: "cloudwatch:GetMetricData".into(),
                    message: format!(
                        "{} reported {v}, which is not a mean opinion score (1 to 5): check canary.operator_metric",
                        metric.label()
                    ),
                })?;
            worst = Some(worst.map_or(mos, |w| w.min(mos)));
        }
        Ok(worst)
    }
}
