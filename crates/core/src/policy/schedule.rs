//! Scheduled minimums: a floor in force on some days between two wall-clock times of a time
//! zone. Judged by the zone's wall clock at the instant (its rules bundled with the build, so
//! daylight saving changes need no network): a window from 08:00 starts at 08:00 local on
//! the day the clocks go forward as on any other, and a local time the change skips or
//! repeats is in force exactly when the wall clock shows a time inside the window.

use crate::error::{Error, Result};
use crate::fleet::FleetConfig;
use crate::ids::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A day of the week, as a schedule names it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    fn of(w: jiff::civil::Weekday) -> Day {
        use jiff::civil::Weekday as W;
        match w {
            W::Monday => Day::Mon,
            W::Tuesday => Day::Tue,
            W::Wednesday => Day::Wed,
            W::Thursday => Day::Thu,
            W::Friday => Day::Fri,
            W::Saturday => Day::Sat,
            W::Sunday => Day::Sun,
        }
    }

    fn before(self) -> Day {
        match self {
            Day::Mon => Day::Sun,
            Day::Tue => Day::Mon,
            Day::Wed => Day::Tue,
            Day::Thu => Day::Wed,
            Day::Fri => Day::Thu,
            Day::Sat => Day::Fri,
            Day::Sun => Day::Sat,
        }
    }
}

/// A wall-clock time, `HH:MM` (00:00-23:59).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema)]
#[schemars(with = "String")]
pub struct LocalTime {
    /// Minutes after midnight.
    minutes: u16,
}

impl LocalTime {
    pub fn parse(s: &str) -> Option<LocalTime> {
        let (h, m) = s.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(LocalTime {
            minutes: h * 60 + m,
        })
    }

    pub fn minutes(self) -> u16 {
        self.minutes
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.minutes / 60, self.minutes % 60)
    }
}

impl Serialize for LocalTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LocalTime::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("'{s}' is not a time HH:MM (00:00-23:59)"))
        })
    }
}

/// A scheduled minimum: at least `min_pairs` on `days`, from `from` to `to` (exclusive) by
/// the wall clock of `time_zone`. A `to` at or before `from` ends the next day (a night
/// window from 22:00 to 06:00 belongs to the day it starts on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub name: String,
    pub days: Vec<Day>,
    pub from: LocalTime,
    pub to: LocalTime,
    /// An IANA time zone name (`Europe/Berlin`, `America/New_York`, `UTC`).
    pub time_zone: String,
    pub min_pairs: u32,
}

impl Schedule {
    pub(super) fn validate(&self, field: &str, fleet: &FleetConfig) -> Result<()> {
        let ok_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok_name {
            return Err(Error::invalid(
                format!("{field}.name"),
                &self.name,
                "must be 1-64 characters of A-Z, a-z, 0-9, '-', '_' and '.'",
            ));
        }
        if self.days.is_empty() {
            return Err(Error::invalid(
                format!("{field}.days"),
                "[]",
                "must name at least one day",
            ));
        }
        if self.from == self.to {
            return Err(Error::invalid(
                format!("{field}.to"),
                self.to,
                "must differ from from (a window of no time, or of a whole day: name the days instead)",
            ));
        }
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            return Err(Error::invalid(
                format!("{field}.time_zone"),
                &self.time_zone,
                "must be an IANA time zone name, such as Europe/Berlin or UTC",
            ));
        }
        if self.min_pairs < fleet.min_pairs || self.min_pairs > fleet.max_pairs {
            return Err(Error::invalid(
                format!("{field}.min_pairs"),
                self.min_pairs,
                format!(
                    "must be within the fleet's min_pairs and max_pairs ({}-{})",
                    fleet.min_pairs, fleet.max_pairs
                ),
            ));
        }
        Ok(())
    }

    /// Whether the window is in force at `at`.
    pub fn in_force(&self, at: Timestamp) -> Result<bool> {
        let tz = jiff::tz::TimeZone::get(&self.time_zone).map_err(|e| {
            Error::invalid(
                "time_zone",
                &self.time_zone,
                format!("unknown time zone: {e}"),
            )
        })?;
        let instant = jiff::Timestamp::from_millisecond(at.0)
            .map_err(|e| Error::invalid("now", at.0, format!("not an instant: {e}")))?;
        let local = instant.to_zoned(tz);
        let t = local.time();
        let minutes = (t.hour() as u16) * 60 + t.minute() as u16;
        let day = Day::of(local.weekday());
        let (from, to) = (self.from.minutes, self.to.minutes);
        Ok(if from < to {
            self.days.contains(&day) && (from..to).contains(&minutes)
        } else {
            // Overnight: the evening part belongs to today, the morning part to yesterday.
            (minutes >= from && self.days.contains(&day))
                || (minutes < to && self.days.contains(&day.before()))
        })
    }
}

/// The highest floor in force at `at`, with its schedule's name.
pub(super) fn in_force(schedules: &[Schedule], at: Timestamp) -> Result<Option<(String, u32)>> {
    let mut best: Option<(String, u32)> = None;
    for s in schedules {
        if s.in_force(at)? && best.as_ref().is_none_or(|(_, m)| s.min_pairs > *m) {
            best = Some((s.name.clone(), s.min_pairs));
        }
    }
    Ok(best)
}
