//! The listener and the dispatch: `/_router/` to the control API, Lambda `Invoke` and the
//! three CodeBuild build operations to the local fronts, everything else to moto.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::codebuild::{self, CodeBuild};
use crate::config::ConfigFile;
use crate::control;
use crate::error::RouterError;
use crate::faults::Faults;
use crate::http::{self, Body};
use crate::lambda::{self, Functions};
use crate::proxy::Proxy;
use crate::state::Shared;

/// How the router starts.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    /// A loopback address; port 0 picks a free one.
    pub listen: SocketAddr,
    /// moto's base URL, `http://127.0.0.1:PORT`.
    pub moto: String,
    /// Functions and projects registered before the router answers.
    pub config: ConfigFile,
    /// Where build logs go.
    pub state_dir: PathBuf,
    /// The region of the ARNs the router makes up when a request does not name one.
    pub region: String,
}

/// A bound router, not yet serving.
#[derive(Debug)]
pub struct Router {
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Router {
    /// Check the options, register the configured functions and projects, and bind.
    pub async fn bind(options: RouterOptions) -> Result<Self, RouterError> {
        if !options.listen.ip().is_loopback() {
            return Err(RouterError::NotLoopback(options.listen));
        }
        let proxy = Proxy::new(&options.moto)?;
        std::fs::create_dir_all(&options.state_dir).map_err(|source| RouterError::StateDir {
            path: options.state_dir.clone(),
            source,
        })?;
        let faults = Arc::new(Faults::default());
        let functions = Arc::new(Functions::new(faults.clone(), options.region.clone()));
        let codebuild = CodeBuild::new(&options.state_dir, faults.clone(), options.region.clone());
        for (name, function) in options.config.functions {
            function.validate(&name)?;
            functions.put(&name, function).await;
        }
        for (name, project) in options.config.codebuild.projects {
            project.validate(&name)?;
            codebuild.put_project(&name, project).await;
        }
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| RouterError::Bind {
                    addr: options.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| RouterError::Bind {
            addr: options.listen,
            source,
        })?;
        tracing::info!(%addr, moto = %proxy.base(), state_dir = %options.state_dir.display(), "router bound");
        Ok(Self {
            listener,
            addr,
            shared: Arc::new(Shared {
                functions,
                codebuild,
                faults,
                proxy,
            }),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve until `shutdown` completes, then stop every function process and running build.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let mut conns = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // EMFILE and friends: back off rather than spin.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            while conns.try_join_next().is_some() {}
            let shared = self.shared.clone();
            conns.spawn(async move {
                let svc = service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(route(&shared, req).await) }
                });
                if let Err(error) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await
                {
                    tracing::debug!(%error, "connection ended");
                }
            });
        }
        tracing::info!("shutting down: stopping function processes and builds");
        drop(self.listener);
        conns.abort_all();
        let shared = self.shared;
        tokio::join!(shared.functions.stop_all(), shared.codebuild.stop_all());
        tracing::info!("stopped");
    }
}

async fn route(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();

    if path.starts_with(control::PREFIX) {
        let Some(body) = http::read_body(req.into_body()).await else {
            return http::control_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body too large or unreadable",
            );
        };
        return control::handle(shared, &method, &path, body).await;
    }

    if method == Method::POST {
        if let Some(function) = path
            .strip_prefix(lambda::INVOKE_PREFIX)
            .and_then(|rest| rest.strip_suffix(lambda::INVOKE_SUFFIX))
            .filter(|f| !f.is_empty() && !f.contains('/'))
        {
            let function = function.to_owned();
            let query = req.uri().query().map(str::to_owned);
            let (parts, body) = req.into_parts();
            let Some(body) = http::read_body(body).await else {
                return http::control_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request payload over 6 MB",
                );
            };
            return shared
                .functions
                .invoke(&function, query.as_deref(), &parts.headers, body)
                .await;
        }

        let operation = req
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| {
                if t == codebuild::LOGS_TARGET {
                    // The only logs the local stack keeps: its builds'.
                    Some("GetLogEvents")
                } else {
                    t.strip_prefix(codebuild::TARGET_PREFIX)
                        .filter(|op| codebuild::is_served(op))
                }
            })
            .map(str::to_owned);
        if let Some(operation) = operation {
            let region = http::signed_region(req.headers());
            let Some(body) = http::read_body(req.into_body()).await else {
                return http::control_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body too large or unreadable",
                );
            };
            return shared.codebuild.handle(&operation, region, &body).await;
        }
    }

    shared.proxy.forward(req.map(|b| b.boxed())).await
}
