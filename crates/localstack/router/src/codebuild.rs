//! CodeBuild's `StartBuild`, `BatchGetBuilds` and `StopBuild` (JSON 1.1,
//! `X-Amz-Target: CodeBuild_20161006.*`) over local commands. A build runs its project's
//! command in its own process group with the project's environment plus the build's
//! overrides; its stdout and stderr go to one log file under the state dir. moto's own builds
//! succeed at once and cannot fail, so the router answers these three operations itself.
//!
//! CloudWatch Logs' `GetLogEvents` on a build's log (group `/aws/codebuild/<project>`, stream
//! the build id's uuid, as CodeBuild names them) is answered from that file, one event a line.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::process::Command;
use tokio::sync::{watch, RwLock};

use crate::config::{ProjectConfig, ACCOUNT};
use crate::faults::Faults;
use crate::http::{self, Body};

pub const TARGET_PREFIX: &str = "CodeBuild_20161006.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const H_ERROR_TYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");
const H_REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");

/// CodeBuild returns the same build for the same token within this window.
const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(5 * 60);

/// A stopped build's process group gets SIGTERM, then SIGKILL after this.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The three operations the router serves; any other CodeBuild call goes to moto.
pub fn is_served(operation: &str) -> bool {
    matches!(operation, "StartBuild" | "BatchGetBuilds" | "StopBuild")
}

/// CloudWatch Logs' read of a build's log, which the router answers from the build's file.
pub const LOGS_TARGET: &str = "Logs_20140328.GetLogEvents";
/// CodeBuild's log group of a project: this prefix and the project's name.
pub const LOG_GROUP_PREFIX: &str = "/aws/codebuild/";
/// GetLogEvents' largest page.
const MAX_LOG_EVENTS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BuildStatus {
    InProgress,
    Succeeded,
    Failed,
    Stopped,
}

/// One entry of `environmentVariablesOverride` (and of a build's `environmentVariables`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
    #[serde(rename = "type", default = "plaintext")]
    pub kind: String,
}

fn plaintext() -> String {
    "PLAINTEXT".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartBuildInput {
    project_name: String,
    #[serde(default)]
    environment_variables_override: Vec<EnvVar>,
    #[serde(default)]
    idempotency_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetLogEventsInput {
    #[serde(default)]
    log_group_name: Option<String>,
    log_stream_name: String,
    #[serde(default)]
    start_from_head: Option<bool>,
    #[serde(default)]
    limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct BatchGetBuildsInput {
    ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct StopBuildInput {
    id: String,
}

#[derive(Debug, Clone)]
struct Progress {
    status: BuildStatus,
    end: Option<SystemTime>,
    exit_code: Option<i32>,
    pid: Option<u32>,
    /// Why the build ended as it did, when it was not the command's own exit.
    note: Option<String>,
}

#[derive(Debug)]
struct Build {
    id: String,
    arn: String,
    number: u64,
    project: String,
    start: SystemTime,
    project_env: BTreeMap<String, String>,
    overrides: Vec<EnvVar>,
    log_path: PathBuf,
    progress: Mutex<Progress>,
    stop: watch::Sender<bool>,
    done: watch::Sender<bool>,
}

impl Build {
    /// The log stream CodeBuild names after the build: its id's uuid.
    fn stream(&self) -> &str {
        self.id
            .rsplit_once(':')
            .map_or(self.id.as_str(), |(_, uuid)| uuid)
    }

    fn progress(&self) -> Progress {
        lock(&self.progress).clone()
    }

    /// The `Build` object of the CodeBuild API.
    fn to_api(&self) -> Value {
        let p = self.progress();
        let mut env_vars: Vec<EnvVar> = self
            .project_env
            .iter()
            .filter(|(k, _)| !self.overrides.iter().any(|o| &o.name == *k))
            .map(|(k, v)| EnvVar {
                name: k.clone(),
                value: v.clone(),
                kind: plaintext(),
            })
            .collect();
        env_vars.extend(self.overrides.iter().cloned());
        let complete = p.status != BuildStatus::InProgress;
        let mut build = json!({
            "id": self.id,
            "arn": self.arn,
            "buildNumber": self.number,
            "startTime": epoch(self.start),
            "currentPhase": if complete { "COMPLETED" } else { "BUILD" },
            "buildStatus": p.status,
            "projectName": self.project,
            "buildComplete": complete,
            "initiator": "pairscale-router",
            "timeoutInMinutes": 60,
            "queuedTimeoutInMinutes": 480,
            "environment": {
                "type": "LINUX_CONTAINER",
                "image": "local",
                "computeType": "BUILD_GENERAL1_SMALL",
                "environmentVariables": env_vars,
            },
            "logs": {
                "groupName": format!("{LOG_GROUP_PREFIX}{}", self.project),
                "streamName": self.stream(),
                "deepLink": format!("file://{}", self.log_path.display()),
            },
        });
        if let (Some(end), Some(obj)) = (p.end, build.as_object_mut()) {
            obj.insert("endTime".to_owned(), json!(epoch(end)));
        }
        build
    }

    /// The entry of `GET /_router/builds`.
    fn to_record(&self) -> BuildRecord {
        let p = self.progress();
        BuildRecord {
            id: self.id.clone(),
            project: self.project.clone(),
            build_number: self.number,
            status: p.status,
            exit_code: p.exit_code,
            log_path: self.log_path.clone(),
            env_overrides: self.overrides.clone(),
            start_time: epoch(self.start),
            end_time: p.end.map(epoch),
            note: p.note,
        }
    }
}

/// A build as the control API lists it, for tests.
#[derive(Debug, Clone, Serialize)]
pub struct BuildRecord {
    pub id: String,
    pub project: String,
    pub build_number: u64,
    pub status: BuildStatus,
    pub exit_code: Option<i32>,
    pub log_path: PathBuf,
    pub env_overrides: Vec<EnvVar>,
    pub start_time: f64,
    pub end_time: Option<f64>,
    pub note: Option<String>,
}

#[derive(Debug, Default)]
struct Table {
    /// In start order.
    builds: Vec<Arc<Build>>,
    numbers: HashMap<String, u64>,
    tokens: HashMap<(String, String), (Arc<Build>, Instant)>,
}

/// The registered projects and every build since start.
#[derive(Debug)]
pub struct CodeBuild {
    projects: RwLock<BTreeMap<String, ProjectConfig>>,
    table: Mutex<Table>,
    log_dir: PathBuf,
    faults: Arc<Faults>,
    region: String,
}

impl CodeBuild {
    pub fn new(state_dir: &Path, faults: Arc<Faults>, region: String) -> Self {
        Self {
            projects: RwLock::new(BTreeMap::new()),
            table: Mutex::new(Table::default()),
            log_dir: state_dir.join("builds"),
            faults,
            region,
        }
    }

    /// Register or replace a project; running builds keep the command they started with.
    pub async fn put_project(&self, name: &str, config: ProjectConfig) {
        tracing::info!(project = name, command = ?config.command, "project registered");
        self.projects.write().await.insert(name.to_owned(), config);
    }

    pub async fn delete_project(&self, name: &str) -> bool {
        self.projects.write().await.remove(name).is_some()
    }

    pub async fn projects(&self) -> BTreeMap<String, ProjectConfig> {
        self.projects.read().await.clone()
    }

    pub fn builds(&self) -> Vec<BuildRecord> {
        lock(&self.table)
            .builds
            .iter()
            .map(|b| b.to_record())
            .collect()
    }

    /// Stop every running build and wait for it (at shutdown).
    pub async fn stop_all(&self) {
        let running: Vec<_> = lock(&self.table)
            .builds
            .iter()
            .filter(|b| b.progress().status == BuildStatus::InProgress)
            .cloned()
            .collect();
        for build in running {
            stop_and_wait(&build).await;
        }
    }

    /// Serve one JSON 1.1 operation.
    pub async fn handle(
        &self,
        operation: &str,
        region: Option<String>,
        body: &Bytes,
    ) -> Response<Body> {
        let region = region.unwrap_or_else(|| self.region.clone());
        let result = match operation {
            "StartBuild" => match parse::<StartBuildInput>(body) {
                Ok(input) => self.start_build(input, &region).await,
                Err(error) => Err(error),
            },
            "BatchGetBuilds" => parse::<BatchGetBuildsInput>(body).and_then(|i| self.batch_get(i)),
            "GetLogEvents" => parse::<GetLogEventsInput>(body).and_then(|i| self.log_events(i)),
            "StopBuild" => match parse::<StopBuildInput>(body) {
                Ok(input) => self.stop_build(input).await,
                Err(error) => Err(error),
            },
            other => Err(api_error(
                "InvalidInputException",
                &format!("operation {other} is not served by the router"),
            )),
        };
        let mut resp = match result {
            Ok(value) => http::json_as(StatusCode::OK, CONTENT_TYPE, &value),
            Err(error) => error.into_response(),
        };
        if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
            resp.headers_mut().insert(H_REQUEST_ID, id);
        }
        resp
    }

    async fn start_build(&self, input: StartBuildInput, region: &str) -> Result<Value, ApiError> {
        let project_arn = format!(
            "arn:aws:codebuild:{region}:{ACCOUNT}:project/{}",
            input.project_name
        );
        let Some(project) = self.projects.read().await.get(&input.project_name).cloned() else {
            return Err(api_error(
                "ResourceNotFoundException",
                &format!("Project cannot be found: {project_arn}"),
            ));
        };
        for var in &input.environment_variables_override {
            if var.name.is_empty()
                || var.name.contains('=')
                || var.name.contains('\0')
                || var.value.contains('\0')
            {
                return Err(api_error(
                    "InvalidInputException",
                    &format!("Invalid environment variable name {:?}", var.name),
                ));
            }
            if var.kind != "PLAINTEXT" {
                // Only the value itself is available locally; a test that relies on the
                // lookup should pass PLAINTEXT.
                tracing::warn!(name = %var.name, kind = %var.kind, "environment variable passed as its literal value");
            }
        }
        let build = {
            let mut table = lock(&self.table);
            let token_key = input
                .idempotency_token
                .clone()
                .filter(|t| !t.is_empty())
                .map(|t| (input.project_name.clone(), t));
            table
                .tokens
                .retain(|_, (_, at)| at.elapsed() < IDEMPOTENCY_WINDOW);
            if let Some((existing, _)) = token_key.as_ref().and_then(|k| table.tokens.get(k)) {
                tracing::info!(build = %existing.id, "same idempotency token: same build");
                return Ok(json!({ "build": existing.to_api() }));
            }
            let number = {
                let n = table.numbers.entry(input.project_name.clone()).or_insert(0);
                *n += 1;
                *n
            };
            let uuid = uuid::Uuid::new_v4();
            let id = format!("{}:{uuid}", input.project_name);
            let build = Arc::new(Build {
                arn: format!("arn:aws:codebuild:{region}:{ACCOUNT}:build/{id}"),
                id,
                number,
                project: input.project_name.clone(),
                start: SystemTime::now(),
                project_env: project.env.clone(),
                overrides: input.environment_variables_override,
                log_path: self
                    .log_dir
                    .join(format!("{}-{number}-{uuid}.log", input.project_name)),
                progress: Mutex::new(Progress {
                    status: BuildStatus::InProgress,
                    end: None,
                    exit_code: None,
                    pid: None,
                    note: None,
                }),
                stop: watch::channel(false).0,
                done: watch::channel(false).0,
            });
            table.builds.push(build.clone());
            if let Some(key) = token_key {
                table.tokens.insert(key, (build.clone(), Instant::now()));
            }
            build
        };
        let injection = self.faults.take_build(&build.project);
        let command = if injection.fail {
            None
        } else {
            Some(self.command(&project, &build))
        };
        tracing::info!(build = %build.id, fail = injection.fail, min_secs = injection.min_duration.as_secs_f64(), "build started");
        let answer = json!({ "build": build.to_api() });
        tokio::spawn(run(
            build,
            command,
            injection.fail_log,
            injection.min_duration,
            self.log_dir.clone(),
        ));
        Ok(answer)
    }

    fn command(&self, project: &ProjectConfig, build: &Build) -> Command {
        let mut cmd = Command::new(&project.command[0]);
        cmd.args(&project.command[1..])
            .envs(&project.env)
            .env("CODEBUILD_BUILD_ID", &build.id)
            .env("CODEBUILD_BUILD_ARN", &build.arn)
            .env("CODEBUILD_BUILD_NUMBER", build.number.to_string())
            .env("CODEBUILD_INITIATOR", "pairscale-router")
            .envs(build.overrides.iter().map(|v| (&v.name, &v.value)))
            .stdin(Stdio::null())
            // Its own group, so that StopBuild reaches whatever the command started.
            .process_group(0)
            .kill_on_drop(false);
        if let Some(dir) = &project.workdir {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// A build's log file as CloudWatch Logs events: the first or last `limit` lines.
    fn log_events(&self, input: GetLogEventsInput) -> Result<Value, ApiError> {
        let group = input.log_group_name.unwrap_or_default();
        let project = group.strip_prefix(LOG_GROUP_PREFIX).ok_or_else(|| {
            api_error(
                "ResourceNotFoundException",
                &format!("the local stack keeps only CodeBuild's log groups ({LOG_GROUP_PREFIX}*), not {group:?}"),
            )
        })?;
        let build = lock(&self.table)
            .builds
            .iter()
            .find(|b| b.project == project && b.stream() == input.log_stream_name)
            .cloned()
            .ok_or_else(|| {
                api_error(
                    "ResourceNotFoundException",
                    &format!(
                        "The specified log stream does not exist: {group} {}",
                        input.log_stream_name
                    ),
                )
            })?;
        let limit = input
            .limit
            .unwrap_or(MAX_LOG_EVENTS)
            .clamp(1, MAX_LOG_EVENTS);
        // A build that has written nothing yet has no file.
        let text = std::fs::read_to_string(&build.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let page = if input.start_from_head.unwrap_or(false) {
            &lines[..limit.min(lines.len())]
        } else {
            &lines[lines.len().saturating_sub(limit)..]
        };
        let at = (epoch(build.start) * 1000.0) as i64;
        let events: Vec<Value> = page
            .iter()
            .map(|l| json!({"timestamp": at, "message": format!("{l}\n"), "ingestionTime": at}))
            .collect();
        Ok(json!({"events": events, "nextForwardToken": "f/0", "nextBackwardToken": "b/0"}))
    }

    fn batch_get(&self, input: BatchGetBuildsInput) -> Result<Value, ApiError> {
        if input.ids.is_empty() || input.ids.len() > 100 {
            return Err(api_error(
                "InvalidInputException",
                "ids must hold 1 to 100 build ids",
            ));
        }
        let table = lock(&self.table);
        let mut builds = Vec::new();
        let mut not_found = Vec::new();
        for id in input.ids {
            match table.builds.iter().find(|b| b.id == id || b.arn == id) {
                Some(build) => builds.push(build.to_api()),
                None => not_found.push(id),
            }
        }
        Ok(json!({ "builds": builds, "buildsNotFound": not_found }))
    }

    async fn stop_build(&self, input: StopBuildInput) -> Result<Value, ApiError> {
        let build = lock(&self.table)
            .builds
            .iter()
            .find(|b| b.id == input.id || b.arn == input.id)
            .cloned();
        let Some(build) = build else {
            return Err(api_error(
                "ResourceNotFoundException",
                &format!("Build {} does not exist", input.id),
            ));
        };
        stop_and_wait(&build).await;
        Ok(json!({ "build": build.to_api() }))
    }
}

/// Ask a running build to stop and wait until it has ended; a finished build is left as is.
async fn stop_and_wait(build: &Build) {
    let mut done = build.done.subscribe();
    if *done.borrow() {
        return;
    }
    build.stop.send_replace(true);
    let _ = tokio::time::timeout(STOP_GRACE * 3, done.wait_for(|d| *d)).await;
}

/// Run one build to its end: the command (or an injected failure), then whatever remains
/// of the injected minimum duration; a stop cuts either short.
async fn run(
    build: Arc<Build>,
    command: Option<Command>,
    fail_log: Option<String>,
    min_duration: Duration,
    log_dir: PathBuf,
) {
    let started = Instant::now();
    let mut stop = build.stop.subscribe();
    let mut ended = match command {
        None => {
            let log = fail_log.unwrap_or_else(|| {
                "build failed by an injected fault; the command did not run".to_owned()
            });
            write_log(&build.log_path, &log_dir, &format!("{log}\n"));
            End::Failed {
                exit_code: None,
                note: Some("injected fault: fail_next".to_owned()),
            }
        }
        Some(command) => run_command(&build, command, &log_dir, &mut stop).await,
    };
    if !matches!(ended, End::Stopped) {
        let rest = min_duration.saturating_sub(started.elapsed());
        if !rest.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(rest) => {}
                () = stopped(&mut stop) => ended = End::Stopped,
            }
        }
    }
    let (status, exit_code, note) = match ended {
        End::Exited(status) => {
            let code = status.code();
            let note = code.is_none().then(|| format!("command ended by {status}"));
            let ok = status.success();
            (
                if ok {
                    BuildStatus::Succeeded
                } else {
                    BuildStatus::Failed
                },
                code,
                note,
            )
        }
        End::Failed { exit_code, note } => (BuildStatus::Failed, exit_code, note),
        End::Stopped => (
            BuildStatus::Stopped,
            None,
            Some("stopped by StopBuild".to_owned()),
        ),
    };
    {
        let mut p = lock(&build.progress);
        p.status = status;
        p.end = Some(SystemTime::now());
        p.exit_code = exit_code.or(p.exit_code);
        p.note = note;
        p.pid = None;
    }
    build.done.send_replace(true);
    tracing::info!(build = %build.id, status = ?status, exit_code, "build ended");
}

enum End {
    Exited(ExitStatus),
    Failed {
        exit_code: Option<i32>,
        note: Option<String>,
    },
    Stopped,
}

async fn run_command(
    build: &Build,
    mut command: Command,
    log_dir: &Path,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let log = std::fs::create_dir_all(log_dir).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&build.log_path)
    });
    let (out, err) = match log.and_then(|f| Ok((f.try_clone()?, f))) {
        Ok(pair) => pair,
        Err(error) => {
            return End::Failed {
                exit_code: None,
                note: Some(format!(
                    "cannot open the log file {}: {error}",
                    build.log_path.display()
                )),
            }
        }
    };
    command.stdout(Stdio::from(out)).stderr(Stdio::from(err));
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            let note = format!("cannot start the command: {error}");
            write_log(&build.log_path, log_dir, &format!("{note}\n"));
            return End::Failed {
                exit_code: None,
                note: Some(note),
            };
        }
    };
    let pid = child.id();
    lock(&build.progress).pid = pid;
    tokio::select! {
        status = child.wait() => match status {
            Ok(status) => End::Exited(status),
            Err(error) => End::Failed { exit_code: None, note: Some(format!("cannot wait for the command: {error}")) },
        },
        () = stopped(stop) => {
            if let Some(pid) = pid {
                signal_group(pid, "TERM");
                if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
                    signal_group(pid, "KILL");
                    let _ = child.wait().await;
                }
                // The leader may be gone with the rest of its group still running.
                signal_group(pid, "KILL");
            }
            End::Stopped
        }
    }
}

/// Resolves once a stop has been asked for (at once if it already was).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The Ref the wait yields must not live across an await.
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// Signal a whole process group. `kill(1)` does it without `unsafe` code.
fn signal_group(pgid: u32, signal: &str) {
    let result = std::process::Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(error) = result {
        tracing::warn!(pgid, signal, %error, "cannot run kill");
    }
}

fn write_log(path: &Path, dir: &Path, text: &str) {
    use std::io::Write as _;
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?
            .write_all(text.as_bytes())
    });
    if let Err(error) = written {
        tracing::warn!(path = %path.display(), %error, "cannot write the build log");
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| api_error("InvalidInputException", &e.to_string()))
}

/// A CodeBuild error, answered as JSON 1.1 does: 400 with `__type` in the body and in
/// `x-amzn-ErrorType`.
#[derive(Debug)]
struct ApiError {
    error_type: &'static str,
    message: String,
}

fn api_error(error_type: &'static str, message: &str) -> ApiError {
    ApiError {
        error_type,
        message: message.to_owned(),
    }
}

impl ApiError {
    fn into_response(self) -> Response<Body> {
        let mut resp = http::json_as(
            StatusCode::BAD_REQUEST,
            CONTENT_TYPE,
            &json!({ "__type": self.error_type, "message": self.message }),
        );
        resp.headers_mut()
            .insert(H_ERROR_TYPE, HeaderValue::from_static(self.error_type));
        resp
    }
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| (d.as_millis() as f64) / 1000.0)
        .unwrap_or_default()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update leaves the guarded value whole.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
