//! A function: one execution environment at a time (a child process and its Runtime API),
//! invoked one event at a time, replaced after a crash or a timeout.

use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, Mutex};

use crate::api::{Outcome, Pending, RuntimeApi};
use crate::logs::{LogBuffer, Stream};
use crate::EmuError;

/// How long a new process may take to ask for its first event, as Lambda's init phase.
pub const INIT_LIMIT: Duration = Duration::from_secs(10);

/// Lambda's default function timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// Lines of process output kept per function.
pub const LOG_LINES: usize = 2000;

/// The account id in the ARNs the emulator makes up; the local AWS emulator's default.
const ACCOUNT: &str = "123456789012";
const MEMORY_MB: &str = "128";

/// What to run and how.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The function name: `AWS_LAMBDA_FUNCTION_NAME` and the last part of its ARN.
    pub name: String,
    /// A handler binary built with `lambda_runtime`.
    pub binary: PathBuf,
    /// Added to (and overriding) the parent's environment and the `AWS_LAMBDA_*` variables.
    pub env: Vec<(String, String)>,
    /// The per-invocation timeout, counted from the moment the runtime takes the event.
    pub timeout: Duration,
}

impl FunctionSpec {
    pub fn new(name: impl Into<String>, binary: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            binary: binary.into(),
            env: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A handler's own error, as it posted it to `/invocation/{id}/error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    pub error_type: String,
    pub error_message: String,
}

/// The result of an invocation that ran to completion: what Lambda's `Invoke` returns, with
/// `FunctionError` set or not.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    Ok(Value),
    Error(FunctionError),
}

impl Invocation {
    pub fn into_result(self) -> Result<Value, FunctionError> {
        match self {
            Invocation::Ok(v) => Ok(v),
            Invocation::Error(e) => Err(e),
        }
    }
}

/// Timings of the current process, measured from the moment it was spawned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColdStart {
    /// Spawn to the first `GET /invocation/next`: the init phase.
    pub init: Option<Duration>,
    /// Spawn to the first posted result (response or error).
    pub first_response: Option<Duration>,
}

/// One execution environment: a process and the Runtime API it talks to.
#[derive(Debug)]
struct Environment {
    api: RuntimeApi,
    child: Child,
    started: Instant,
}

impl Environment {
    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
    }

    fn cold_start(&self) -> ColdStart {
        ColdStart {
            init: self
                .api
                .first_next()
                .map(|t| t.duration_since(self.started)),
            first_response: self
                .api
                .first_response()
                .map(|t| t.duration_since(self.started)),
        }
    }
}

/// A Lambda function backed by a local process. Invocations are serialised, as one
/// execution environment serves one event at a time; share it behind an `Arc`.
pub struct Function {
    spec: FunctionSpec,
    arn: String,
    env: Mutex<Option<Environment>>,
    logs: LogBuffer,
    starts: AtomicU32,
}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.spec.name)
            .field("binary", &self.spec.binary)
            .field("starts", &self.starts())
            .finish_non_exhaustive()
    }
}

impl Function {
    /// Start the process now (its init runs while the caller prepares the first event).
    pub async fn spawn(spec: FunctionSpec) -> Result<Self, EmuError> {
        let region = spec
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "AWS_REGION")
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_owned());
        let arn = format!("arn:aws:lambda:{region}:{ACCOUNT}:function:{}", spec.name);
        let function = Self {
            spec,
            arn,
            env: Mutex::new(None),
            logs: LogBuffer::new(LOG_LINES),
            starts: AtomicU32::new(0),
        };
        let env = function.start().await?;
        *function.env.lock().await = Some(env);
        Ok(function)
    }

    pub fn spec(&self) -> &FunctionSpec {
        &self.spec
    }

    /// The ARN handed to the runtime as `Lambda-Runtime-Invoked-Function-Arn`.
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// The process's recent stdout and stderr, with the emulator's own notes.
    pub fn logs(&self) -> &LogBuffer {
        &self.logs
    }

    /// How many processes have been started: 1 after `spawn`, one more per cold start.
    pub fn starts(&self) -> u32 {
        self.starts.load(Ordering::Relaxed)
    }

    /// Timings of the current process; `None` when none is running.
    pub async fn cold_start(&self) -> Option<ColdStart> {
        self.env.lock().await.as_ref().map(Environment::cold_start)
    }

    /// Stop the current process; the next invoke is a cold start.
    pub async fn stop(&self) {
        if let Some(env) = self.env.lock().await.take() {
            env.kill().await;
            self.logs.push(Stream::Emulator, "stopped".to_owned());
        }
    }

    /// Invoke the function with `payload` and wait for its result.
    ///
    /// A process that exited since the last invocation is replaced first, silently, as
    /// Lambda does. A crash or a timeout during this invocation is an error, and the next
    /// invoke starts a new process.
    pub async fn invoke(&self, payload: Value) -> Result<Invocation, EmuError> {
        let body = Bytes::from(serde_json::to_vec(&payload).map_err(EmuError::Payload)?);
        let mut slot = self.env.lock().await;
        let mut env = match slot.take() {
            Some(mut env) => {
                if env.exited() {
                    self.logs.push(
                        Stream::Emulator,
                        "process had exited; starting a new one".to_owned(),
                    );
                    self.start().await?
                } else {
                    env
                }
            }
            None => self.start().await?,
        };
        let result = self.run(&mut env, body).await;
        match &result {
            Err(EmuError::Crashed { status }) => {
                self.logs
                    .push(Stream::Emulator, format!("process exited: {status}"));
            }
            Err(EmuError::Timeout { after }) => {
                self.logs.push(
                    Stream::Emulator,
                    format!("timed out after {after:?}; killing"),
                );
                env.kill().await;
            }
            Err(e @ (EmuError::InitFailed { .. } | EmuError::Wait(_) | EmuError::Internal(_))) => {
                self.logs.push(Stream::Emulator, format!("{e}; killing"));
                env.kill().await;
            }
            _ => *slot = Some(env),
        }
        result
    }

    async fn run(&self, env: &mut Environment, body: Bytes) -> Result<Invocation, EmuError> {
        let (reply, mut replied) = oneshot::channel();
        let (delivered_tx, mut delivered) = oneshot::channel();
        env.api.submit(Pending {
            id: uuid::Uuid::new_v4().to_string(),
            body,
            timeout: self.spec.timeout,
            reply,
            delivered: delivered_tx,
        })?;
        let mut init_errors = env.api.init_errors();

        // Until the runtime takes the event: the init phase on a cold start, immediate on a
        // warm one.
        let delivered_at = tokio::select! {
            biased;
            at = &mut delivered => at.map_err(|_| EmuError::Internal("the Runtime API dropped the event"))?,
            // Before the exit: a runtime reports its init error and then exits.
            error = init_errors.wait_for(Option::is_some) => {
                let error = error
                    .ok()
                    .and_then(|e| e.clone())
                    .unwrap_or_else(|| FunctionError { error_type: "Unknown".into(), error_message: String::new() });
                return Err(EmuError::InitFailed { error_type: error.error_type, error_message: error.error_message });
            }
            status = env.child.wait() => {
                return Err(EmuError::Crashed { status: status.map_err(EmuError::Wait)? });
            }
            _ = tokio::time::sleep(INIT_LIMIT) => return Err(EmuError::Timeout { after: INIT_LIMIT }),
        };

        let deadline = tokio::time::Instant::from_std(delivered_at + self.spec.timeout);
        tokio::select! {
            // A result posted just before the process exits still counts.
            biased;
            outcome = &mut replied => match outcome {
                Ok(Outcome::Response(bytes)) => serde_json::from_slice(&bytes)
                    .map(Invocation::Ok)
                    .map_err(EmuError::ResponseNotJson),
                Ok(Outcome::Error(error)) => Ok(Invocation::Error(error)),
                Err(_) => Err(EmuError::Internal("the Runtime API dropped the result")),
            },
            status = env.child.wait() => Err(EmuError::Crashed { status: status.map_err(EmuError::Wait)? }),
            _ = tokio::time::sleep_until(deadline) => Err(EmuError::Timeout { after: self.spec.timeout }),
        }
    }

    async fn start(&self) -> Result<Environment, EmuError> {
        let api = RuntimeApi::start(self.arn.clone()).await?;
        let name = &self.spec.name;
        let mut cmd = Command::new(&self.spec.binary);
        cmd.env("AWS_LAMBDA_RUNTIME_API", api.addr().to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", MEMORY_MB)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!("local/[$LATEST]{}", uuid::Uuid::new_v4().simple()),
            )
            .envs(self.spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|source| EmuError::Spawn {
            binary: self.spec.binary.clone(),
            source,
        })?;
        let n = self.starts.fetch_add(1, Ordering::Relaxed) + 1;
        self.logs.push(
            Stream::Emulator,
            format!(
                "start #{n}: pid {} on {}",
                child.id().unwrap_or_default(),
                api.addr()
            ),
        );
        if let Some(out) = child.stdout.take() {
            tokio::spawn(self.logs.clone().capture(Stream::Stdout, out));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(self.logs.clone().capture(Stream::Stderr, err));
        }
        Ok(Environment {
            api,
            child,
            started,
        })
    }
}
