//! Lambda's `Invoke` API over local processes: each registered function has a small pool of
//! execution environments (`pairscale-lambda-emu` [`Function`]s), grown on demand up to the
//! function's `max_concurrency`; further invocations wait for a free one, as they would wait
//! for Lambda to scale out.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{HeaderMap, Response, StatusCode};
use pairscale_lambda_emu::{EmuError, Function, FunctionSpec, Invocation};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{RwLock, Semaphore};

use crate::config::{FunctionConfig, ACCOUNT};
use crate::faults::{CrashPoint, Faults, LambdaInjection};
use crate::http::{self, Body};

/// The path prefix and suffix of `Invoke` (REST, API version 2015-03-31).
pub const INVOKE_PREFIX: &str = "/2015-03-31/functions/";
pub const INVOKE_SUFFIX: &str = "/invocations";

const H_INVOCATION_TYPE: &str = "x-amz-invocation-type";
const H_FUNCTION_ERROR: HeaderName = HeaderName::from_static("x-amz-function-error");
const H_EXECUTED_VERSION: HeaderName = HeaderName::from_static("x-amz-executed-version");
const H_ERROR_TYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");
const H_REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");

/// How long a replaced or deleted function's in-flight invocations may run on before the
/// registration call returns; their processes are stopped in the background after that.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// A function reference as `Invoke` accepts it: a name, a partial ARN (`acct:function:name`)
/// or a full ARN, each optionally with a `:qualifier`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub qualifier: Option<String>,
    pub region: Option<String>,
}

/// Parse an already URL-decoded function reference.
pub fn parse_target(raw: &str) -> Option<Target> {
    let parts: Vec<&str> = raw.split(':').collect();
    let (name, qualifier, region) = match parts.as_slice() {
        [name] => (*name, None, None),
        [name, qualifier] => (*name, Some(*qualifier), None),
        [_, "function", name] => (*name, None, None),
        [_, "function", name, qualifier] => (*name, Some(*qualifier), None),
        ["arn", _, "lambda", region, _, "function", name] => (*name, None, Some(*region)),
        ["arn", _, "lambda", region, _, "function", name, qualifier] => {
            (*name, Some(*qualifier), Some(*region))
        }
        _ => return None,
    };
    if crate::config::validate_function_name(name).is_err() || qualifier.is_some_and(str::is_empty)
    {
        return None;
    }
    Some(Target {
        name: name.to_owned(),
        qualifier: qualifier.map(str::to_owned),
        region: region.filter(|r| !r.is_empty()).map(str::to_owned),
    })
}

/// The name of a function reference, for APIs that take either.
pub fn function_name(raw: &str) -> Option<String> {
    parse_target(raw).map(|t| t.name)
}

pub fn function_arn(region: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{ACCOUNT}:function:{name}")
}

/// A registered function: its environments and the permits that bound them.
#[derive(Debug)]
struct Pool {
    name: String,
    config: FunctionConfig,
    spec: FunctionSpec,
    permits: Semaphore,
    idle: Mutex<Vec<Arc<Function>>>,
    all: Mutex<Vec<Arc<Function>>>,
    busy: AtomicUsize,
}

/// A permit and an environment, returned to the pool when dropped.
struct Lease<'a> {
    pool: &'a Pool,
    function: Option<Arc<Function>>,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.pool.busy.fetch_sub(1, Ordering::Relaxed);
        if let Some(function) = self.function.take() {
            lock(&self.pool.idle).push(function);
        }
    }
}

impl Pool {
    fn new(name: &str, config: FunctionConfig) -> Self {
        let mut spec = FunctionSpec::new(name, &config.binary).timeout(config.timeout());
        for (k, v) in &config.env {
            spec = spec.env(k, v);
        }
        Self {
            name: name.to_owned(),
            permits: Semaphore::new(config.max_concurrency),
            spec,
            config,
            idle: Mutex::new(Vec::new()),
            all: Mutex::new(Vec::new()),
            busy: AtomicUsize::new(0),
        }
    }

    /// Wait for a free permit, then reuse an idle environment or start a new one. `None`
    /// when the function was replaced or deleted meanwhile.
    async fn lease(&self) -> Option<Result<Lease<'_>, EmuError>> {
        let permit = self.permits.acquire().await.ok()?;
        self.busy.fetch_add(1, Ordering::Relaxed);
        let idle = lock(&self.idle).pop();
        let function = match idle {
            Some(function) => function,
            None => match Function::spawn(self.spec.clone()).await {
                Ok(function) => {
                    let function = Arc::new(function);
                    lock(&self.all).push(function.clone());
                    tracing::info!(function = %self.name, processes = lock(&self.all).len(), "new execution environment");
                    function
                }
                Err(error) => {
                    self.busy.fetch_sub(1, Ordering::Relaxed);
                    return Some(Err(error));
                }
            },
        };
        Some(Ok(Lease {
            pool: self,
            function: Some(function),
            _permit: permit,
        }))
    }

    /// Refuse new invocations and stop every process; in-flight ones finish first.
    async fn stop(&self) {
        self.permits.close();
        let all: Vec<_> = lock(&self.all).clone();
        for function in all {
            function.stop().await;
        }
    }

    fn status(&self, region: &str) -> FunctionStatus {
        let all = lock(&self.all);
        FunctionStatus {
            name: self.name.clone(),
            arn: function_arn(region, &self.name),
            config: self.config.clone(),
            environments: all.len(),
            busy: self.busy.load(Ordering::Relaxed),
            cold_starts: all.iter().map(|f| f.starts()).sum(),
        }
    }

    fn logs(&self) -> String {
        let all = lock(&self.all);
        let mut out = String::new();
        for (i, function) in all.iter().enumerate() {
            out.push_str(&format!("--- environment {i}\n"));
            out.push_str(&function.logs().render());
        }
        out
    }
}

/// A function as `GET /_router/functions` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionStatus {
    pub name: String,
    pub arn: String,
    #[serde(flatten)]
    pub config: FunctionConfig,
    /// Execution environments created so far (each may have restarted its process).
    pub environments: usize,
    pub busy: usize,
    /// Processes started over all environments.
    pub cold_starts: u32,
}

/// Every registered function, and the `Invoke` front.
#[derive(Debug)]
pub struct Functions {
    pools: RwLock<BTreeMap<String, Arc<Pool>>>,
    faults: Arc<Faults>,
    region: String,
}

impl Functions {
    pub fn new(faults: Arc<Faults>, region: String) -> Self {
        Self {
            pools: RwLock::new(BTreeMap::new()),
            faults,
            region,
        }
    }

    /// Register (or replace) `name`; a replaced function's processes are stopped.
    /// The caller has validated `config`.
    pub async fn put(&self, name: &str, config: FunctionConfig) -> FunctionStatus {
        let pool = Arc::new(Pool::new(name, config));
        let status = pool.status(&self.region);
        let old = self.pools.write().await.insert(name.to_owned(), pool);
        if let Some(old) = old {
            retire(old).await;
        }
        tracing::info!(function = name, binary = %status.config.binary.display(), "function registered");
        status
    }

    pub async fn delete(&self, name: &str) -> bool {
        let old = self.pools.write().await.remove(name);
        match old {
            Some(old) => {
                retire(old).await;
                true
            }
            None => false,
        }
    }

    pub async fn list(&self) -> Vec<FunctionStatus> {
        self.pools
            .read()
            .await
            .values()
            .map(|p| p.status(&self.region))
            .collect()
    }

    pub async fn get(&self, name: &str) -> Option<FunctionStatus> {
        self.pools
            .read()
            .await
            .get(name)
            .map(|p| p.status(&self.region))
    }

    pub async fn logs(&self, name: &str) -> Option<String> {
        self.pools.read().await.get(name).map(|p| p.logs())
    }

    /// Stop every function's processes (at shutdown).
    pub async fn stop_all(&self) {
        let pools: Vec<_> = std::mem::take(&mut *self.pools.write().await)
            .into_values()
            .collect();
        let stops = pools
            .into_iter()
            .map(|pool| async move { pool.stop().await });
        let _ = tokio::time::timeout(STOP_WAIT, futures_join_all(stops)).await;
    }

    /// `POST /2015-03-31/functions/{function}/invocations[?Qualifier=q]`.
    pub async fn invoke(
        self: &Arc<Self>,
        raw_function: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response<Body> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let region = http::signed_region(headers).unwrap_or_else(|| self.region.clone());
        let decoded = urlencoding::decode(raw_function)
            .map(|s| s.into_owned())
            .unwrap_or_else(|_| raw_function.to_owned());
        let Some(target) = parse_target(&decoded) else {
            return service_error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                &format!("1 validation error detected: Value '{decoded}' at 'functionName' failed to satisfy constraint"),
                &request_id,
            );
        };
        // `?Qualifier=` and a `:qualifier` suffix name the same thing; there are no published
        // versions locally, so any qualifier runs the registered code.
        let _qualifier = target
            .qualifier
            .clone()
            .or_else(|| query_param(query, "Qualifier"));
        let region = target.region.clone().unwrap_or(region);
        let pool = self.pools.read().await.get(&target.name).cloned();
        let Some(pool) = pool else {
            return service_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                &format!(
                    "Function not found: {}",
                    function_arn(&region, &target.name)
                ),
                &request_id,
            );
        };
        let payload: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => {
                    return service_error(
                        StatusCode::BAD_REQUEST,
                        "InvalidRequestContentException",
                        &format!("Could not parse request body into json: {e}"),
                        &request_id,
                    )
                }
            }
        };
        let invocation_type = headers
            .get(H_INVOCATION_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("RequestResponse");
        match invocation_type {
            "RequestResponse" => {
                let outcome = self.run(&pool, payload, &request_id).await;
                outcome.into_response(&request_id)
            }
            "Event" => {
                let this = self.clone();
                let id = request_id.clone();
                tokio::spawn(async move {
                    match this.run(&pool, payload, &id).await {
                        Outcome::Ok(_) => {}
                        Outcome::FunctionError { error_type, .. } => {
                            tracing::info!(function = %pool.name, request_id = %id, error_type, "async invocation failed");
                        }
                        Outcome::Service { message, .. } => {
                            tracing::warn!(function = %pool.name, request_id = %id, message, "async invocation not run");
                        }
                    }
                });
                with_request_id(
                    http::with_status(StatusCode::ACCEPTED, http::empty()),
                    &request_id,
                )
            }
            "DryRun" => with_request_id(
                http::with_status(StatusCode::NO_CONTENT, http::empty()),
                &request_id,
            ),
            other => service_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                &format!("Unsupported invocation type {other:?}"),
                &request_id,
            ),
        }
    }

    async fn run(&self, pool: &Pool, payload: Value, request_id: &str) -> Outcome {
        let injection = self.faults.take_lambda(&pool.name, &payload);
        if let Some(LambdaInjection::Error {
            error_type,
            error_message,
        }) = injection
        {
            tracing::info!(function = %pool.name, request_id, error_type, "fault: function error");
            return Outcome::FunctionError {
                error_type,
                error_message,
            };
        }
        let lease = match pool.lease().await {
            Some(Ok(lease)) => lease,
            Some(Err(error)) => return Outcome::from_emu(error, request_id, pool),
            None => {
                return Outcome::Service {
                    status: StatusCode::CONFLICT,
                    error_type: "ResourceConflictException",
                    message: format!("The function {} was replaced or deleted", pool.name),
                }
            }
        };
        let Some(function) = lease.function.clone() else {
            return Outcome::Service {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                error_type: "ServiceException",
                message: "no execution environment".to_owned(),
            };
        };
        let crash = match injection {
            Some(LambdaInjection::Crash(at)) => Some(at),
            _ => None,
        };
        if crash == Some(CrashPoint::BeforeHandler) {
            function.stop().await;
            tracing::info!(function = %pool.name, request_id, "fault: crash before the handler");
            return Outcome::exit_error(request_id, "signal: 9 (SIGKILL)");
        }
        let result = function.invoke(payload).await;
        if crash == Some(CrashPoint::AfterHandler) {
            function.stop().await;
            tracing::info!(function = %pool.name, request_id, "fault: crash after the handler");
            return Outcome::exit_error(request_id, "signal: 9 (SIGKILL)");
        }
        drop(lease);
        match result {
            Ok(Invocation::Ok(value)) => Outcome::Ok(value),
            Ok(Invocation::Error(e)) => Outcome::FunctionError {
                error_type: e.error_type,
                error_message: e.error_message,
            },
            Err(error) => Outcome::from_emu(error, request_id, pool),
        }
    }
}

/// Stop a replaced or deleted function, waiting a little for in-flight invocations.
async fn retire(pool: Arc<Pool>) {
    let stopping = tokio::spawn(async move { pool.stop().await });
    let _ = tokio::time::timeout(STOP_WAIT, stopping).await;
}

async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    futures: impl IntoIterator<Item = F>,
) {
    let mut set = tokio::task::JoinSet::new();
    for f in futures {
        set.spawn(f);
    }
    while set.join_next().await.is_some() {}
}

/// What an invocation came to, before it becomes an HTTP answer.
#[derive(Debug)]
enum Outcome {
    Ok(Value),
    /// Lambda's `FunctionError: Unhandled` with `{"errorType","errorMessage"}`.
    FunctionError {
        error_type: String,
        error_message: String,
    },
    /// The invocation never reached a handler.
    Service {
        status: StatusCode,
        error_type: &'static str,
        message: String,
    },
}

impl Outcome {
    fn exit_error(request_id: &str, status: &str) -> Self {
        Outcome::FunctionError {
            error_type: "Runtime.ExitError".to_owned(),
            error_message: format!(
                "RequestId: {request_id} Error: Runtime exited with error: {status}"
            ),
        }
    }

    fn from_emu(error: EmuError, request_id: &str, pool: &Pool) -> Self {
        tracing::info!(function = %pool.name, request_id, %error, "invocation failed");
        match error {
            EmuError::Crashed { status } => Self::exit_error(request_id, &status.to_string()),
            EmuError::Timeout { after } => Outcome::FunctionError {
                error_type: "Sandbox.Timedout".to_owned(),
                error_message: format!(
                    "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                    after.as_secs_f64()
                ),
            },
            EmuError::InitFailed {
                error_type,
                error_message,
            } => Outcome::FunctionError {
                error_type,
                error_message,
            },
            EmuError::Spawn { binary, source } => Outcome::FunctionError {
                error_type: "Runtime.InvalidEntrypoint".to_owned(),
                error_message: format!(
                    "RequestId: {request_id} Error: cannot start {}: {source}",
                    binary.display()
                ),
            },
            EmuError::ResponseNotJson(e) => Outcome::FunctionError {
                error_type: "Runtime.InvalidResponse".to_owned(),
                error_message: format!("RequestId: {request_id} Error: {e}"),
            },
            EmuError::Payload(e) => Outcome::Service {
                status: StatusCode::BAD_REQUEST,
                error_type: "InvalidRequestContentException",
                message: e.to_string(),
            },
            other => Outcome::Service {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                error_type: "ServiceException",
                message: other.to_string(),
            },
        }
    }

    fn into_response(self, request_id: &str) -> Response<Body> {
        match self {
            Outcome::Ok(value) => invoke_response(http::json(StatusCode::OK, &value), request_id),
            Outcome::FunctionError {
                error_type,
                error_message,
            } => {
                let mut resp = invoke_response(
                    http::json(
                        StatusCode::OK,
                        &json!({ "errorType": error_type, "errorMessage": error_message }),
                    ),
                    request_id,
                );
                resp.headers_mut()
                    .insert(H_FUNCTION_ERROR, HeaderValue::from_static("Unhandled"));
                resp
            }
            Outcome::Service {
                status,
                error_type,
                message,
            } => service_error(status, error_type, &message, request_id),
        }
    }
}

fn invoke_response(resp: Response<Body>, request_id: &str) -> Response<Body> {
    let mut resp = with_request_id(resp, request_id);
    resp.headers_mut()
        .insert(H_EXECUTED_VERSION, HeaderValue::from_static("$LATEST"));
    resp
}

fn with_request_id(mut resp: Response<Body>, request_id: &str) -> Response<Body> {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert(H_REQUEST_ID, value);
    }
    resp
}

/// An error of the Lambda service itself (restJson1): the type in `x-amzn-ErrorType`, the
/// body `{"Type": "User"|"Service", "message"}`.
fn service_error(
    status: StatusCode,
    error_type: &str,
    message: &str,
    request_id: &str,
) -> Response<Body> {
    let kind = if status.is_client_error() {
        "User"
    } else {
        "Service"
    };
    let mut resp = http::json(status, &json!({ "Type": kind, "message": message }));
    if let Ok(value) = HeaderValue::from_str(error_type) {
        resp.headers_mut().insert(H_ERROR_TYPE, value);
    }
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    with_request_id(resp, request_id)
}

fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| {
            urlencoding::decode(v)
                .map(|s| s.into_owned())
                .unwrap_or_else(|_| v.to_owned())
        })
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded lists are whole after every push and pop.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn target(name: &str, qualifier: Option<&str>, region: Option<&str>) -> Option<Target> {
        Some(Target {
            name: name.into(),
            qualifier: qualifier.map(Into::into),
            region: region.map(Into::into),
        })
    }

    #[test]
    fn every_form_of_function_reference_names_the_function() {
        let table = [
            ("echo", target("echo", None, None)),
            ("echo:$LATEST", target("echo", Some("$LATEST"), None)),
            ("123456789012:function:echo", target("echo", None, None)),
            (
                "123456789012:function:echo:live",
                target("echo", Some("live"), None),
            ),
            (
                "arn:aws:lambda:eu-west-1:123456789012:function:echo",
                target("echo", None, Some("eu-west-1")),
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:echo:7",
                target("echo", Some("7"), Some("us-east-1")),
            ),
            ("arn:aws:s3:::bucket", None),
            ("echo:", None),
            ("bad name", None),
            ("", None),
        ];
        for (raw, want) in table {
            assert_eq!(parse_target(raw), want, "{raw}");
        }
    }

    #[test]
    fn the_qualifier_query_parameter_is_decoded() {
        assert_eq!(
            query_param(Some("Qualifier=%24LATEST"), "Qualifier").as_deref(),
            Some("$LATEST")
        );
        assert_eq!(
            query_param(Some("a=b&Qualifier=7"), "Qualifier").as_deref(),
            Some("7")
        );
        assert_eq!(query_param(None, "Qualifier"), None);
    }
}
