//! The Runtime API of one execution environment: an HTTP/1.1 server on `127.0.0.1:0` that
//! hands one event at a time to the runtime's long-poll and takes back its result.
//!
//! Each process gets its own server. When a process dies, hyper does not notice that a
//! long-poll's client went away, so a server shared across processes could hand the next
//! event to a dead connection; a fresh server per process cannot.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::{EmuError, FunctionError};

/// Lambda's limit on a synchronous response (and on a request) is 6 MB; a little slack lets
/// the JSON framing through.
const MAX_BODY: usize = 6 * 1024 * 1024 + 1024;

/// Header names as the Runtime API sends them (HTTP header names are case-insensitive;
/// hyper wants them lower-case).
const H_REQUEST_ID: &str = "lambda-runtime-aws-request-id";
const H_DEADLINE_MS: &str = "lambda-runtime-deadline-ms";
const H_FUNCTION_ARN: &str = "lambda-runtime-invoked-function-arn";
const H_TRACE_ID: &str = "lambda-runtime-trace-id";
const H_ERROR_TYPE: &str = "lambda-runtime-function-error-type";

const PREFIX: &str = "/2018-06-01/runtime/";

/// An event waiting for the runtime's next `GET /next`.
#[derive(Debug)]
pub(crate) struct Pending {
    pub id: String,
    pub body: Bytes,
    pub timeout: Duration,
    pub reply: oneshot::Sender<Outcome>,
    pub delivered: oneshot::Sender<Instant>,
}

/// What the runtime posted for an invocation.
#[derive(Debug)]
pub(crate) enum Outcome {
    Response(Bytes),
    Error(FunctionError),
}

#[derive(Debug)]
struct ApiState {
    events: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    inflight: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: watch::Sender<Option<FunctionError>>,
    first_next: OnceLock<Instant>,
    first_response: OnceLock<Instant>,
    arn: String,
}

/// A running Runtime API server; dropping it stops the server and its connections.
#[derive(Debug)]
pub(crate) struct RuntimeApi {
    addr: SocketAddr,
    state: Arc<ApiState>,
    events: mpsc::Sender<Pending>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    pub(crate) async fn start(arn: String) -> Result<Self, EmuError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(EmuError::Bind)?;
        let addr = listener.local_addr().map_err(EmuError::Bind)?;
        // One slot: invocations are serialised by the caller, so at most one event waits.
        let (events, rx) = mpsc::channel(1);
        let state = Arc::new(ApiState {
            events: tokio::sync::Mutex::new(rx),
            inflight: Mutex::new(HashMap::new()),
            init_error: watch::channel(None).0,
            first_next: OnceLock::new(),
            first_response: OnceLock::new(),
            arn,
        });
        let server = tokio::spawn(serve(listener, state.clone()));
        Ok(Self {
            addr,
            state,
            events,
            server,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queue an event for the runtime. Fails only if one is already waiting.
    pub(crate) fn submit(&self, pending: Pending) -> Result<(), EmuError> {
        self.events
            .try_send(pending)
            .map_err(|_| EmuError::Internal("an event was already waiting for the runtime"))
    }

    pub(crate) fn init_errors(&self) -> watch::Receiver<Option<FunctionError>> {
        self.state.init_error.subscribe()
    }

    pub(crate) fn first_next(&self) -> Option<Instant> {
        self.state.first_next.get().copied()
    }

    pub(crate) fn first_response(&self) -> Option<Instant> {
        self.state.first_response.get().copied()
    }
}

async fn serve(listener: TcpListener, state: Arc<ApiState>) {
    // The connections live in this task's JoinSet, so aborting the task closes them all.
    let mut conns = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // EMFILE and friends: back off rather than spin.
                tracing::warn!(%error, "runtime API accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        while conns.try_join_next().is_some() {}
        let state = state.clone();
        conns.spawn(async move {
            let svc = service_fn(move |req| handle(state.clone(), req));
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(%error, "runtime API connection ended");
            }
        });
    }
}

type Resp = Response<Full<Bytes>>;

async fn handle(state: Arc<ApiState>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let method = req.method().clone();
    let Some(route) = req.uri().path().strip_prefix(PREFIX).map(str::to_owned) else {
        return Ok(status_json(
            StatusCode::NOT_FOUND,
            "InvalidPath",
            "unknown path",
        ));
    };
    let resp = match (method, route.as_str()) {
        (Method::GET, "invocation/next") => next(&state).await,
        (Method::POST, "init/error") => match read_error(req).await {
            Ok(error) => {
                tracing::debug!(error_type = %error.error_type, "runtime reported an init error");
                state.init_error.send_replace(Some(error));
                accepted()
            }
            Err(resp) => resp,
        },
        (Method::POST, route) => match route.strip_prefix("invocation/") {
            Some(rest) => {
                if let Some(id) = rest.strip_suffix("/response") {
                    let id = id.to_owned();
                    match read_body(req).await {
                        Ok(body) => complete(&state, &id, Outcome::Response(body)),
                        Err(resp) => resp,
                    }
                } else if let Some(id) = rest.strip_suffix("/error") {
                    let id = id.to_owned();
                    match read_error(req).await {
                        Ok(error) => complete(&state, &id, Outcome::Error(error)),
                        Err(resp) => resp,
                    }
                } else {
                    status_json(StatusCode::NOT_FOUND, "InvalidPath", "unknown path")
                }
            }
            None => status_json(StatusCode::NOT_FOUND, "InvalidPath", "unknown path"),
        },
        _ => status_json(StatusCode::NOT_FOUND, "InvalidPath", "unknown path"),
    };
    Ok(resp)
}

/// The long-poll: wait for an event, remember where its result goes, hand it over.
async fn next(state: &ApiState) -> Resp {
    state.first_next.get_or_init(Instant::now);
    let pending = state.events.lock().await.recv().await;
    let Some(pending) = pending else {
        return status_json(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            "emulator shutting down",
        );
    };
    let deadline_ms = (SystemTime::now() + pending.timeout)
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let trace_id = trace_id(&pending.id);
    let headers = [
        (H_REQUEST_ID, pending.id.clone()),
        (H_DEADLINE_MS, deadline_ms.to_string()),
        (H_FUNCTION_ARN, state.arn.clone()),
        (H_TRACE_ID, trace_id),
    ];
    let mut resp = Response::new(Full::new(pending.body));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        match HeaderValue::from_str(&value) {
            Ok(value) => {
                resp.headers_mut()
                    .insert(HeaderName::from_static(name), value);
            }
            Err(_) => {
                tracing::warn!(
                    header = name,
                    "invalid header value; dropping the invocation"
                );
                return status_json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ServiceException",
                    "bad header",
                );
            }
        }
    }
    lock(&state.inflight).insert(pending.id, pending.reply);
    let _ = pending.delivered.send(Instant::now());
    resp
}

fn complete(state: &ApiState, id: &str, outcome: Outcome) -> Resp {
    let Some(reply) = lock(&state.inflight).remove(id) else {
        return status_json(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            "unknown or finished request id",
        );
    };
    state.first_response.get_or_init(Instant::now);
    // The invoker may have given up (a timeout); the result then has nowhere to go.
    let _ = reply.send(outcome);
    accepted()
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, Resp> {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(body) => Ok(body.to_bytes()),
        Err(_) => Err(status_json(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "body over the 6 MB limit or unreadable",
        )),
    }
}

/// An error body is the runtime's `Diagnostic` (`{"errorType","errorMessage"}`). A body that
/// is not one keeps its text as the message and takes the header's type, as Lambda does.
async fn read_error(req: Request<Incoming>) -> Result<FunctionError, Resp> {
    let header_type = req
        .headers()
        .get(H_ERROR_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_body(req).await?;
    Ok(
        match serde_json::from_slice::<lambda_runtime::Diagnostic>(&body) {
            Ok(d) => FunctionError {
                error_type: d.error_type,
                error_message: d.error_message,
            },
            Err(_) => FunctionError {
                error_type: header_type.unwrap_or_else(|| "Unhandled".to_owned()),
                error_message: String::from_utf8_lossy(&body).into_owned(),
            },
        },
    )
}

fn accepted() -> Resp {
    json(
        StatusCode::ACCEPTED,
        Bytes::from_static(br#"{"status":"OK"}"#),
    )
}

fn status_json(status: StatusCode, error_type: &str, message: &str) -> Resp {
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string();
    json(status, Bytes::from(body))
}

fn json(status: StatusCode, body: Bytes) -> Resp {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// An X-Ray style trace header; nothing reads it locally, but the runtime copies it into
/// `_X_AMZN_TRACE_ID` and handlers may log it.
fn trace_id(request_id: &str) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let hex: String = request_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(24)
        .collect();
    format!("Root=1-{secs:08x}-{hex:0>24};Sampled=0")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing holds this lock across a panic point that could leave the map half-written.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
