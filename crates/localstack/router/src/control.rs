//! The router's own API under `/_router/`, for tests and the test setup:
//!
//! - `GET health`
//! - `GET functions`, `GET|PUT|DELETE functions/{name}`, `GET functions/{name}/logs`
//! - `GET codebuild/projects`, `GET|PUT|DELETE codebuild/projects/{name}`
//! - `GET builds`
//! - `GET|POST|DELETE faults`, `DELETE faults/lambda/{function}`

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::config::{FunctionConfig, ProjectConfig};
use crate::error::RouterError;
use crate::faults::FaultRequest;
use crate::http::{self, control_error, json, Body};
use crate::lambda;
use crate::state::Shared;

pub const PREFIX: &str = "/_router/";

pub(crate) async fn handle(
    shared: &Shared,
    method: &Method,
    path: &str,
    body: Bytes,
) -> Response<Body> {
    let route: Vec<&str> = path
        .trim_start_matches(PREFIX)
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match (method, route.as_slice()) {
        (&Method::GET, ["health"]) => json(StatusCode::OK, &json!({ "status": "ok" })),

        (&Method::GET, ["functions"]) => json(
            StatusCode::OK,
            &json!({ "functions": shared.functions.list().await }),
        ),
        (&Method::GET, ["functions", name]) => match shared.functions.get(name).await {
            Some(status) => json(StatusCode::OK, &status),
            None => control_error(StatusCode::NOT_FOUND, format!("no function {name:?}")),
        },
        (&Method::GET, ["functions", name, "logs"]) => match shared.functions.logs(name).await {
            Some(text) => {
                let mut resp = http::with_status(StatusCode::OK, http::full(text));
                resp.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                resp
            }
            None => control_error(StatusCode::NOT_FOUND, format!("no function {name:?}")),
        },
        (&Method::PUT, ["functions", name]) => {
            let config: FunctionConfig = match parse(&body) {
                Ok(config) => config,
                Err(error) => return refused(error),
            };
            if let Err(error) = config.validate(name) {
                return refused(error);
            }
            json(StatusCode::OK, &shared.functions.put(name, config).await)
        }
        (&Method::DELETE, ["functions", name]) => {
            if shared.functions.delete(name).await {
                json(StatusCode::OK, &json!({ "deleted": name }))
            } else {
                control_error(StatusCode::NOT_FOUND, format!("no function {name:?}"))
            }
        }

        (&Method::GET, ["codebuild", "projects"]) => json(
            StatusCode::OK,
            &json!({ "projects": shared.codebuild.projects().await }),
        ),
        (&Method::GET, ["codebuild", "projects", name]) => {
            match shared.codebuild.projects().await.remove(*name) {
                Some(project) => json(StatusCode::OK, &project),
                None => control_error(StatusCode::NOT_FOUND, format!("no project {name:?}")),
            }
        }
        (&Method::PUT, ["codebuild", "projects", name]) => {
            let config: ProjectConfig = match parse(&body) {
                Ok(config) => config,
                Err(error) => return refused(error),
            };
            if let Err(error) = config.validate(name) {
                return refused(error);
            }
            shared.codebuild.put_project(name, config.clone()).await;
            json(StatusCode::OK, &config)
        }
        (&Method::DELETE, ["codebuild", "projects", name]) => {
            if shared.codebuild.delete_project(name).await {
                json(StatusCode::OK, &json!({ "deleted": name }))
            } else {
                control_error(StatusCode::NOT_FOUND, format!("no project {name:?}"))
            }
        }

        (&Method::GET, ["builds"]) => json(
            StatusCode::OK,
            &json!({ "builds": shared.codebuild.builds() }),
        ),

        (&Method::GET, ["faults"]) => json(StatusCode::OK, &shared.faults.list()),
        (&Method::POST, ["faults"]) => {
            let request: FaultRequest = match parse(&body) {
                Ok(request) => request,
                Err(error) => return refused(error),
            };
            match shared.faults.add(request, lambda::function_name) {
                Ok(()) => json(StatusCode::OK, &shared.faults.list()),
                Err(error) => refused(error),
            }
        }
        (&Method::DELETE, ["faults"]) => {
            shared.faults.clear();
            json(StatusCode::OK, &shared.faults.list())
        }
        (&Method::DELETE, ["faults", "lambda", function]) => {
            let name = lambda::function_name(function).unwrap_or_else(|| function.to_string());
            shared.faults.clear_function(&name);
            json(StatusCode::OK, &shared.faults.list())
        }

        _ => control_error(
            StatusCode::NOT_FOUND,
            format!("no route {method} {path}; see the router's documentation"),
        ),
    }
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, RouterError> {
    serde_json::from_slice(body).map_err(RouterError::BadRequest)
}

fn refused(error: RouterError) -> Response<Body> {
    tracing::info!(%error, "control request refused");
    control_error(StatusCode::BAD_REQUEST, error)
}
