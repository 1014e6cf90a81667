//! The fleet's signals as the policy reads them: which of its alarms are in ALARM now
//! (an alarm that stays there keeps asking for its step at every evaluation), and its
//! `Channels` history for the forecast.

use crate::error::classify;
use async_trait::async_trait;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, StateValue};
use aws_sdk_cloudwatch::Client;
use pairscale_core::ports::FleetSignals;
use pairscale_core::{FleetName, Result, Timestamp};
use tracing::instrument;

/// The period of the history: CloudWatch keeps 5-minute data for 63 days.
pub const HISTORY_PERIOD_SECONDS: i32 = 300;
/// DescribeAlarms takes at most 100 names a call.
const ALARM_NAMES_PER_CALL: usize = 100;

#[derive(Debug, Clone)]
pub struct CloudWatchSignals {
    client: Client,
    namespace: String,
}

impl CloudWatchSignals {
    pub fn new(sdk: &aws_config::SdkConfig, namespace: impl Into<String>) -> Self {
        CloudWatchSignals {
            client: Client::new(sdk),
            namespace: namespace.into(),
        }
    }
}

#[async_trait]
impl FleetSignals for CloudWatchSignals {
    #[instrument(skip(self))]
    async fn alarms_in_alarm(&self, alarm_names: &[String]) -> Result<Vec<String>> {
        let mut firing = Vec::new();
        for chunk in alarm_names.chunks(ALARM_NAMES_PER_CALL) {
            let out = self
                .client
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .state_value(StateValue::Alarm)
                .max_records(ALARM_NAMES_PER_CALL as i32)
                .send()
                .await
                .map_err(|e| classify("cloudwatch:DescribeAlarms", e))?;
            // The state is checked here too: the filter is the service's.
            firing.extend(
                out.metric_alarms()
                    .iter()
                    .filter(|a| a.state_value() == Some(&StateValue::Alarm))
                    .filter_map(|a| a.alarm_name().map(str::to_string)),
            );
        }
        firing.sort();
        firing.dedup();
        Ok(firing)
    }

    #[instrument(skip(self), fields(fleet = %fleet))]
    async fn channels_history(
        &self,
        fleet: &FleetName,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<(i64, f64)>> {
        let metric = Metric::builder()
            .namespace(&self.namespace)
            .metric_name("Channels")
            .dimensions(
                Dimension::builder()
                    .name("Fleet")
                    .value(fleet.as_str())
                    .build(),
            )
            .build();
        let query = MetricDataQuery::builder()
            .id("channels")
            .metric_stat(
                MetricStat::builder()
                    .metric(metric)
                    .period(HISTORY_PERIOD_SECONDS)
                    .stat("Maximum")
                    .build(),
            )
            .return_data(true)
            .build();
        // Periods aligned to whole 300 s of the epoch, as CloudWatch advises, so that every
        // look at the history sees the same periods whatever minute it is taken at.
        let period_ms = i64::from(HISTORY_PERIOD_SECONDS) * 1_000;
        let start = since.millis().div_euclid(period_ms) * period_ms;
        let end = (until.millis() + period_ms - 1).div_euclid(period_ms) * period_ms;
        let mut points = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .get_metric_data()
                .metric_data_queries(query.clone())
                .start_time(DateTime::from_millis(start))
                .end_time(DateTime::from_millis(end))
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| classify("cloudwatch:GetMetricData", e))?;
            for r in out.metric_data_results() {
                for (t, v) in r.timestamps().iter().zip(r.values()) {
                    if let Ok(ms) = t.to_millis() {
                        points.push((ms, *v));
                    }
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => break,
            }
        }
        points.sort_by_key(|(t, _)| *t);
        points.dedup_by_key(|(t, _)| *t);
        Ok(points)
    }
}
