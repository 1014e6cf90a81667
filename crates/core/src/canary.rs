//! The canary call and the call-quality gate.
//!
//! A node proves itself with a real SIP call before it takes traffic: the drain function has
//! the node place a call to its own SIP address (`originate` over the Event Socket), the
//! FreeSWITCH role's canary extension answers it and sends a tone, and after a few seconds the
//! call is hung up. FreeSWITCH writes the call's receive statistics (MOS, jitter, loss) into
//! its variables at hangup; [`CanaryCall`] is what they said and [`CanaryConfig::judge`] says
//! whether the node passes.
//!
//! The same call placed on a few active nodes gives the fleet's quality figure
//! ([`QualityReading`]): the median of their MOS, a failed call counting as the lowest score.
//! Below the threshold a scale-in is held, since removing capacity from a fleet whose calls
//! already sound bad makes them worse; a scale-out proceeds.

use crate::error::{Error, Result};
use crate::ids::{PairId, Timestamp};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// A mean opinion score as FreeSWITCH reports it (`rtp_audio_in_mos`, two decimals), held
/// in hundredths so that configurations compare exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mos(u16);

impl Mos {
    /// The scale's ends: 1 (bad) to FreeSWITCH's best, 4.5 (narrowband, no loss, no jitter).
    pub const WORST: Mos = Mos(100);
    pub const BEST: Mos = Mos(450);

    /// A score from FreeSWITCH's text (`4.50`) or a configuration's number.
    pub fn from_f64(v: f64) -> Option<Mos> {
        if !v.is_finite() || !(0.0..=5.0).contains(&v) {
            return None;
        }
        Some(Mos((v * 100.0).round() as u16))
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

impl fmt::Display for Mos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.as_f64())
    }
}

impl Serialize for Mos {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Mos {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Mos, D::Error> {
        let v = f64::deserialize(d)?;
        Mos::from_f64(v).ok_or_else(|| {
            serde::de::Error::custom(format!("{v} is not a mean opinion score (0 to 5)"))
        })
    }
}

impl JsonSchema for Mos {
    fn schema_name() -> Cow<'static, str> {
        "Mos".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "number",
            "minimum": 0,
            "maximum": 5,
            "description": "A mean opinion score, two decimals (FreeSWITCH's rtp_audio_in_mos)."
        })
    }
}

/// The canary call and quality gate of a fleet (`canary` in the fleet configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// Off: new nodes go into rotation on `health` alone, and scale-in is never held for
    /// quality.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The number the FreeSWITCH role's canary extension answers.
    #[serde(default = "default_destination")]
    pub destination: String,
    /// The sofia profile the call leaves through: the one the node takes calls on.
    #[serde(default = "default_profile")]
    pub sip_profile: String,
    /// How long the call lasts: its media is measured over this time.
    #[serde(default = "default_seconds")]
    pub seconds: u32,
    /// The lowest MOS a node's canary call, and the fleet's quality figure, may have.
    #[serde(default = "default_min_mos")]
    pub min_mos: Mos,
    /// Active nodes called to measure the fleet's quality (before a scale-in, and on the
    /// schedule).
    #[serde(default = "default_quality_sample")]
    pub quality_sample: u32,
    /// Minutes between the scheduled measurements of the fleet's quality (canary calls on
    /// `quality_sample` active nodes, recorded and published); 0: only before a scale-in.
    #[serde(default = "default_measure_every_minutes")]
    pub measure_every_minutes: u32,
    /// An MOS metric the operator's ESL clients publish to CloudWatch: its figure over the
    /// window joins the canary calls', and the worse of the two is the fleet's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_metric: Option<OperatorMetric>,
}

/// A CloudWatch metric of call quality (MOS, 1 to 5) that the operator's own software
/// publishes, e.g. the ESL clients from each call's `rtp_audio_in_mos` at hangup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorMetric {
    pub namespace: String,
    pub metric_name: String,
    /// The metric's dimensions, exactly as published (e.g. `{"Fleet": "prod-media"}`).
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// How the window's data points are summarised.
    #[serde(default)]
    pub statistic: MetricStatistic,
    /// How far back the figure looks: one CloudWatch period of this length, ending now.
    #[serde(default = "default_window_seconds")]
    pub window_seconds: u32,
}

/// The CloudWatch statistic of an [`OperatorMetric`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum MetricStatistic {
    #[default]
    Average,
    Minimum,
}

impl MetricStatistic {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricStatistic::Average => "Average",
            MetricStatistic::Minimum => "Minimum",
        }
    }
}

impl OperatorMetric {
    /// `namespace/metric_name`, as reports name it.
    pub fn label(&self) -> String {
        format!("{}/{}", self.namespace, self.metric_name)
    }

    /// The first rule broken, as (field, value, why), with the field's path under
    /// `canary.operator_metric`.
    fn check(&self) -> std::result::Result<(), (String, String, String)> {
        let bad =
            |f: &str, v: String, why: String| Err((format!("canary.operator_metric.{f}"), v, why));
        let ns = &self.namespace;
        if !bounds::METRIC_NAME_LENGTH.contains(&ns.len()) || ns.contains(':') {
            return bad(
                "namespace",
                ns.clone(),
                "must be a CloudWatch namespace: 1-255 characters, no ':'".into(),
            );
        }
        if !bounds::METRIC_NAME_LENGTH.contains(&self.metric_name.len()) {
            return bad(
                "metric_name",
                self.metric_name.clone(),
                "must be 1-255 characters".into(),
            );
        }
        if self.dimensions.len() > bounds::DIMENSIONS {
            return bad(
                "dimensions",
                self.dimensions.len().to_string(),
                format!("CloudWatch takes at most {} dimensions", bounds::DIMENSIONS),
            );
        }
        for (k, v) in &self.dimensions {
            if !bounds::METRIC_NAME_LENGTH.contains(&k.len())
                || !bounds::DIMENSION_VALUE_LENGTH.contains(&v.len())
            {
                return bad(
                    &format!("dimensions.{k}"),
                    v.clone(),
                    "a dimension's name must be 1-255 characters and its value 1-1024".into(),
                );
            }
        }
        let w = self.window_seconds;
        if !bounds::WINDOW_SECONDS.contains(&w) || w % 60 != 0 {
            return bad(
                "window_seconds",
                w.to_string(),
                format!(
                    "must be a whole number of minutes, {}..={}",
                    bounds::WINDOW_SECONDS.start(),
                    bounds::WINDOW_SECONDS.end()
                ),
            );
        }
        Ok(())
    }
}

fn yes() -> bool {
    true
}
fn default_destination() -> String {
    "pairscale-canary".into()
}
fn default_profile() -> String {
    "pairscale".into()
}
fn default_seconds() -> u32 {
    3
}
fn default_min_mos() -> Mos {
    Mos(350)
}
fn default_quality_sample() -> u32 {
    3
}
fn default_measure_every_minutes() -> u32 {
    5
}
fn default_window_seconds() -> u32 {
    300
}

impl Default for CanaryConfig {
    fn default() -> Self {
        CanaryConfig {
            enabled: true,
            destination: default_destination(),
            sip_profile: default_profile(),
            seconds: default_seconds(),
            min_mos: default_min_mos(),
            quality_sample: default_quality_sample(),
            measure_every_minutes: default_measure_every_minutes(),
            operator_metric: None,
        }
    }
}

/// The bounds of `canary`, checked with the rest of the fleet configuration.
pub mod bounds {
    use std::ops::RangeInclusive;
    pub const SECONDS: RangeInclusive<u32> = 1..=30;
    pub const QUALITY_SAMPLE: RangeInclusive<u32> = 1..=20;
    pub const NAME_LENGTH: RangeInclusive<usize> = 1..=64;
    /// 0 (no schedule) or up to a day.
    pub const MEASURE_EVERY_MINUTES: RangeInclusive<u32> = 0..=1440;
    pub const METRIC_NAME_LENGTH: RangeInclusive<usize> = 1..=255;
    pub const DIMENSION_VALUE_LENGTH: RangeInclusive<usize> = 1..=1024;
    pub const DIMENSIONS: usize = 30;
    pub const WINDOW_SECONDS: RangeInclusive<u32> = 60..=3600;
}

/// A destination or profile name goes into an `originate` line: letters, digits and `._-+`
/// only, so nothing in it can change the command.
fn plain_name(s: &str) -> bool {
    bounds::NAME_LENGTH.contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
}

impl CanaryConfig {
    /// The first rule broken, as (field, value, why), with the field's path under `canary`.
    pub fn check(&self) -> std::result::Result<(), (String, String, String)> {
        let bad = |f: &str, v: String, why: String| Err((format!("canary.{f}"), v, why));
        if !plain_name(&self.destination) {
            return bad("destination", self.destination.clone(), plain_rule());
        }
        if !plain_name(&self.sip_profile) {
            return bad("sip_profile", self.sip_profile.clone(), plain_rule());
        }
        if !bounds::SECONDS.contains(&self.seconds) {
            return bad(
                "seconds",
                self.seconds.to_string(),
                format!(
                    "must be {}..={}",
                    bounds::SECONDS.start(),
                    bounds::SECONDS.end()
                ),
            );
        }
        if self.min_mos < Mos::WORST || self.min_mos > Mos::BEST {
            return bad(
                "min_mos",
                self.min_mos.to_string(),
                format!(
                    "must be {}..={} (FreeSWITCH scores no higher)",
                    Mos::WORST,
                    Mos::BEST
                ),
            );
        }
        if !bounds::QUALITY_SAMPLE.contains(&self.quality_sample) {
            return bad(
                "quality_sample",
                self.quality_sample.to_string(),
                format!(
                    "must be {}..={}",
                    bounds::QUALITY_SAMPLE.start(),
                    bounds::QUALITY_SAMPLE.end()
                ),
            );
        }
        if !bounds::MEASURE_EVERY_MINUTES.contains(&self.measure_every_minutes) {
            return bad(
                "measure_every_minutes",
                self.measure_every_minutes.to_string(),
                format!(
                    "must be {}..={} (0: measured only before a scale-in)",
                    bounds::MEASURE_EVERY_MINUTES.start(),
                    bounds::MEASURE_EVERY_MINUTES.end()
                ),
            );
        }
        if let Some(m) = &self.operator_metric {
            m.check()?;
        }
        Ok(())
    }

    /// The dial string of a canary call to `sip_uri` (`sip:IP:PORT`, as the dispatcher
    /// stores it), through the fleet's profile.
    pub fn dial_string(&self, sip_uri: &str) -> Result<String> {
        let target = sip_uri.strip_prefix("sip:").unwrap_or(sip_uri);
        let ok = !target.is_empty()
            && target
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']' | '-'));
        if !ok {
            return Err(Error::invalid(
                "sip_uri",
                sip_uri,
                "must be sip:HOST:PORT with a plain host",
            ));
        }
        Ok(format!(
            "sofia/{}/{}@{}",
            self.sip_profile, self.destination, target
        ))
    }

    /// Whether a node's canary call passes: answered, media received, and a MOS at least the
    /// threshold. The reason names what failed, in the node's own figures.
    pub fn judge(&self, call: &CanaryCall) -> std::result::Result<Mos, String> {
        if !call.answered {
            return Err(format!(
                "the canary call was not answered ({})",
                call.hangup_cause
            ));
        }
        if call.media_packets == 0 {
            return Err(format!(
                "the canary call was answered but no media arrived in {} s ({})",
                self.seconds, call.hangup_cause
            ));
        }
        let mos = call.mos.ok_or_else(|| {
            "the canary call was answered but FreeSWITCH reported no MOS".to_string()
        })?;
        if mos < self.min_mos {
            return Err(format!(
                "call quality below the fleet's threshold: MOS {mos} < {} (jitter variance {:.2}, loss {:.2}%)",
                self.min_mos, call.jitter_max_variance, call.loss_percent
            ));
        }
        Ok(mos)
    }
}

fn plain_rule() -> String {
    format!(
        "must be {}-{} letters, digits or . _ - +",
        bounds::NAME_LENGTH.start(),
        bounds::NAME_LENGTH.end()
    )
}

/// What FreeSWITCH said of one canary call, from the calling leg's variables at hangup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CanaryCall {
    pub answered: bool,
    /// The calling leg's hangup cause (`NORMAL_CLEARING` when it ran its course).
    pub hangup_cause: String,
    /// `rtp_audio_in_mos`: None when FreeSWITCH computed none.
    pub mos: Option<Mos>,
    /// `rtp_audio_in_jitter_max_variance`: the largest variance of packet arrival FreeSWITCH
    /// saw (its jitter measure), as it reports it.
    pub jitter_max_variance: f64,
    /// `rtp_audio_in_jitter_loss_rate`, in percent.
    pub loss_percent: f64,
    /// `rtp_audio_in_media_packet_count`.
    pub media_packets: u64,
    /// How long the call was up, in milliseconds.
    pub duration_ms: u64,
}

/// One node's part in a quality reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodeQuality {
    pub pair_id: PairId,
    /// The call's MOS; None when the call failed (see `error`).
    pub mos: Option<Mos>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the operator's metric said over its window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OperatorReading {
    /// `namespace/metric_name`.
    pub metric: String,
    /// The window's statistic.
    pub mos: Mos,
}

/// Who took a reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MeasuredBy {
    /// The gate before a scale-in selects anything.
    #[default]
    ScaleIn,
    /// The fleet's schedule (`canary.measure_every_minutes`).
    Schedule,
}

/// The fleet's quality figure: the canary calls on a sample of its active nodes and the
/// operator's own metric, the worse of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QualityReading {
    /// The fleet's figure: the worse of `canary_mos` and the operator's.
    pub mos: Mos,
    pub threshold: Mos,
    /// Below the threshold: scale-in waits until quality recovers.
    pub hold_scale_in: bool,
    pub measured_at: Timestamp,
    /// The canary calls, one per sampled node.
    pub nodes: Vec<NodeQuality>,
    /// The median MOS of the canary calls, a failed call counting as [`Mos::WORST`]; None
    /// when no call was placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_mos: Option<Mos>,
    /// The operator's metric, when one is configured and had data in its window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<OperatorReading>,
    #[serde(default)]
    pub measured_by: MeasuredBy,
}

impl QualityReading {
    /// The reading of `nodes`' calls. None when no node was measured: no figure, no hold.
    pub fn of(nodes: Vec<NodeQuality>, threshold: Mos, at: Timestamp) -> Option<QualityReading> {
        Self::combined(nodes, None, threshold, at)
    }

    /// The reading of `nodes`' calls and the operator's metric, the worse of the two. None
    /// when neither gave a figure: no figure, no hold.
    pub fn combined(
        nodes: Vec<NodeQuality>,
        operator: Option<OperatorReading>,
        threshold: Mos,
        at: Timestamp,
    ) -> Option<QualityReading> {
        let canary_mos = lower_median(&nodes);
        let mos = match (canary_mos, &operator) {
            (Some(c), Some(o)) => c.min(o.mos),
            (Some(c), None) => c,
            (None, Some(o)) => o.mos,
            (None, None) => return None,
        };
        Some(QualityReading {
            mos,
            threshold,
            hold_scale_in: mos < threshold,
            measured_at: at,
            nodes,
            canary_mos,
            operator,
            measured_by: MeasuredBy::ScaleIn,
        })
    }

    pub fn by(mut self, who: MeasuredBy) -> QualityReading {
        self.measured_by = who;
        self
    }
}

/// The lower median of the calls' scores (with an even sample, the worse of the middle
/// two), a failed call counting as [`Mos::WORST`]. None without calls.
fn lower_median(nodes: &[NodeQuality]) -> Option<Mos> {
    let mut scores: Vec<Mos> = nodes.iter().map(|n| n.mos.unwrap_or(Mos::WORST)).collect();
    scores.sort();
    scores.get(scores.len().checked_sub(1)? / 2).copied()
}

/// Which of `candidates` to call for a quality reading: up to `sample` of them, spread over
/// the list (the first, the last and between), so that the same few nodes are not always the
/// fleet's voice.
pub fn quality_sample<T: Clone>(candidates: &[T], sample: u32) -> Vec<T> {
    let n = candidates.len();
    let k = (sample as usize).min(n);
    if k == 0 {
        return Vec::new();
    }
    if k == 1 {
        return vec![candidates[0].clone()];
    }
    (0..k)
        .map(|i| candidates[i * (n - 1) / (k - 1)].clone())
        .collect()
}

#[cfg(test)]
mod tests;
