//! Faults tests ask for because emulators cannot produce them: a build that fails or takes
//! long, a handler that crashes or errors on one action. Each is consumed as it fires.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::RouterError;

/// What a Lambda fault does to a matching invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LambdaFaultMode {
    /// The function's process is killed and the caller sees `Runtime.ExitError`; the next
    /// invocation is a cold start.
    Crash,
    /// The caller sees a function error of `error_type`; the handler does not run.
    Error,
}

/// When a crash lands, relative to the handler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashPoint {
    /// The handler runs to completion (its side effects happen), then the process dies
    /// before the result reaches the caller: the case that tests a caller's retry against a
    /// handler's idempotency.
    #[default]
    AfterHandler,
    /// The process dies before the handler sees the event.
    BeforeHandler,
}

/// `{"function", "when_action"?, "mode", "times"?, "error_type"?, "error_message"?, "at"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaFault {
    /// A function name (an ARN is reduced to its name).
    pub function: String,
    /// Fire only when the payload's `action` field equals this; on every invocation if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_action: Option<String>,
    pub mode: LambdaFaultMode,
    /// How many matching invocations it hits.
    #[serde(default = "one")]
    pub times: u32,
    /// Required for `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// For `crash` only.
    #[serde(default)]
    pub at: CrashPoint,
}

fn one() -> u32 {
    1
}

/// `{"project", "fail_next"?, "fail_log"?, "delay_secs"?}`: replaces the project's earlier
/// fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodebuildFault {
    pub project: String,
    /// The next this many builds end FAILED without running the command.
    #[serde(default)]
    pub fail_next: u32,
    /// What those failed builds write to their log (a Terraform error, to test how a run
    /// reads it); by default a line naming the injected fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_log: Option<String>,
    /// Every build takes at least this long (until the faults are cleared).
    #[serde(default)]
    pub delay_secs: f64,
}

/// One or several of a kind in one request.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

/// The body of `POST /_router/faults`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    #[serde(default)]
    codebuild: Option<OneOrMany<CodebuildFault>>,
    #[serde(default)]
    lambda: Option<OneOrMany<LambdaFault>>,
}

/// What is left, as `GET /_router/faults` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FaultList {
    pub codebuild: Vec<CodebuildFault>,
    pub lambda: Vec<LambdaFault>,
}

/// A fault that fired on an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LambdaInjection {
    Crash(CrashPoint),
    Error {
        error_type: String,
        error_message: String,
    },
}

/// What a build must do, decided when it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildInjection {
    pub fail: bool,
    /// A failed build's log.
    pub fail_log: Option<String>,
    pub min_duration: Duration,
}

#[derive(Debug, Default)]
struct State {
    lambda: Vec<LambdaFault>,
    codebuild: BTreeMap<String, CodebuildFault>,
}

/// The armed faults; shared by the Lambda and CodeBuild fronts.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Each update leaves the state whole; a panic elsewhere cannot half-write it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arm what `request` names; `function_name` reduces an ARN to the function's name.
    pub fn add(
        &self,
        request: FaultRequest,
        function_name: impl Fn(&str) -> Option<String>,
    ) -> Result<(), RouterError> {
        let lambda = request.lambda.map(OneOrMany::into_vec).unwrap_or_default();
        let codebuild = request
            .codebuild
            .map(OneOrMany::into_vec)
            .unwrap_or_default();
        let mut checked = Vec::with_capacity(lambda.len());
        for mut fault in lambda {
            fault.function = function_name(&fault.function).ok_or_else(|| {
                RouterError::invalid("lambda fault", format!("bad function {:?}", fault.function))
            })?;
            if fault.times == 0 {
                return Err(RouterError::invalid(
                    "lambda fault",
                    "times must be at least 1",
                ));
            }
            if fault.mode == LambdaFaultMode::Error
                && fault.error_type.as_deref().is_none_or(str::is_empty)
            {
                return Err(RouterError::invalid(
                    "lambda fault",
                    "mode \"error\" needs an error_type (e.g. \"Pairscale.Retryable\")",
                ));
            }
            checked.push(fault);
        }
        for fault in &codebuild {
            if !fault.delay_secs.is_finite() || fault.delay_secs < 0.0 || fault.delay_secs > 3600.0
            {
                return Err(RouterError::invalid(
                    "codebuild fault",
                    "delay_secs must be 0..=3600",
                ));
            }
        }
        let mut state = self.lock();
        state.lambda.extend(checked);
        for fault in codebuild {
            if fault.fail_next == 0 && fault.delay_secs == 0.0 {
                state.codebuild.remove(&fault.project);
            } else {
                state.codebuild.insert(fault.project.clone(), fault);
            }
        }
        Ok(())
    }

    pub fn clear(&self) {
        *self.lock() = State::default();
    }

    /// Disarm the Lambda faults of `function` only: what a test armed for its own functions
    /// and the run never reached, leaving the faults of tests running beside it.
    pub fn clear_function(&self, function: &str) {
        self.lock().lambda.retain(|f| f.function != function);
    }

    pub fn list(&self) -> FaultList {
        let state = self.lock();
        FaultList {
            codebuild: state.codebuild.values().cloned().collect(),
            lambda: state.lambda.clone(),
        }
    }

    /// The first armed fault for `function` that matches `payload`, consumed once.
    pub fn take_lambda(&self, function: &str, payload: &Value) -> Option<LambdaInjection> {
        let action = payload.get("action").and_then(Value::as_str);
        let mut state = self.lock();
        let index = state.lambda.iter().position(|f| {
            f.function == function && f.when_action.as_deref().is_none_or(|w| Some(w) == action)
        })?;
        let fault = &mut state.lambda[index];
        let injection = match fault.mode {
            LambdaFaultMode::Crash => LambdaInjection::Crash(fault.at),
            LambdaFaultMode::Error => LambdaInjection::Error {
                error_type: fault.error_type.clone().unwrap_or_default(),
                error_message: fault
                    .error_message
                    .clone()
                    .unwrap_or_else(|| "injected by the router's fault".to_owned()),
            },
        };
        fault.times -= 1;
        if fault.times == 0 {
            state.lambda.remove(index);
        }
        Some(injection)
    }

    /// What the next build of `project` must do; consumes one `fail_next`.
    pub fn take_build(&self, project: &str) -> BuildInjection {
        let mut state = self.lock();
        let Some(fault) = state.codebuild.get_mut(project) else {
            return BuildInjection {
                fail: false,
                fail_log: None,
                min_duration: Duration::ZERO,
            };
        };
        let fail = fault.fail_next > 0;
        fault.fail_next = fault.fail_next.saturating_sub(1);
        let min_duration = Duration::from_secs_f64(fault.delay_secs);
        let fail_log = fail.then(|| fault.fail_log.clone()).flatten();
        if fault.fail_next == 0 && fault.delay_secs == 0.0 {
            state.codebuild.remove(project);
        }
        BuildInjection {
            fail,
            fail_log,
            min_duration,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn request(value: Value) -> FaultRequest {
        serde_json::from_value(value).unwrap()
    }

    fn same_name(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn a_lambda_fault_fires_only_on_its_action_and_only_n_times() {
        let faults = Faults::default();
        faults
            .add(
                request(
                    json!({"lambda": {"function": "lock", "when_action": "commit", "mode": "error",
                                          "times": 2, "error_type": "Pairscale.Retryable"}}),
                ),
                same_name,
            )
            .unwrap();
        assert_eq!(
            faults.take_lambda("lock", &json!({"action": "acquire"})),
            None
        );
        assert_eq!(
            faults.take_lambda("other", &json!({"action": "commit"})),
            None
        );
        for _ in 0..2 {
            assert!(matches!(
                faults.take_lambda("lock", &json!({"action": "commit"})),
                Some(LambdaInjection::Error { error_type, .. }) if error_type == "Pairscale.Retryable"
            ));
        }
        assert_eq!(
            faults.take_lambda("lock", &json!({"action": "commit"})),
            None
        );
        assert_eq!(faults.list(), FaultList::default());
    }

    #[test]
    fn clearing_one_functions_faults_leaves_the_others_armed() {
        let faults = Faults::default();
        faults
            .add(
                request(json!({"lambda": [
                    {"function": "a-lock", "when_action": "heartbeat", "mode": "crash"},
                    {"function": "b-lock", "when_action": "heartbeat", "mode": "crash"},
                    {"function": "a-lock", "mode": "crash", "times": 3},
                ]})),
                same_name,
            )
            .unwrap();
        faults.clear_function("a-lock");
        let left = faults.list().lambda;
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0].function, "b-lock");
    }

    #[test]
    fn a_crash_fault_without_an_action_matches_every_payload() {
        let faults = Faults::default();
        faults
            .add(
                request(json!({"lambda": [{"function": "f", "mode": "crash"}]})),
                same_name,
            )
            .unwrap();
        assert_eq!(
            faults.take_lambda("f", &json!([1, 2])),
            Some(LambdaInjection::Crash(CrashPoint::AfterHandler))
        );
        assert_eq!(faults.take_lambda("f", &json!({})), None);
    }

    #[test]
    fn bad_faults_are_refused_whole() {
        let faults = Faults::default();
        let bad = [
            json!({"lambda": {"function": "f", "mode": "error"}}),
            json!({"lambda": {"function": "f", "mode": "explode"}}),
            json!({"lambda": {"function": "f", "mode": "crash", "times": 0}}),
            json!({"codebuild": {"project": "p", "delay_secs": -1.0}}),
        ];
        for value in bad {
            let parsed = serde_json::from_value::<FaultRequest>(value.clone());
            if let Ok(parsed) = parsed {
                assert!(faults.add(parsed, same_name).is_err(), "{value}");
            }
        }
        assert!(serde_json::from_value::<FaultRequest>(json!({"lamda": {}})).is_err());
        assert_eq!(faults.list(), FaultList::default());
    }

    #[test]
    fn a_build_fault_fails_the_next_n_and_keeps_its_delay() {
        let faults = Faults::default();
        faults
            .add(
                request(json!({"codebuild": {"project": "p", "fail_next": 1, "delay_secs": 0.5}})),
                same_name,
            )
            .unwrap();
        let first = faults.take_build("p");
        assert!(first.fail);
        assert_eq!(first.min_duration, Duration::from_millis(500));
        let second = faults.take_build("p");
        assert!(!second.fail);
        assert_eq!(second.min_duration, Duration::from_millis(500));
        assert!(!faults.take_build("q").fail);
        faults.clear();
        assert_eq!(faults.take_build("p").min_duration, Duration::ZERO);
    }
}
