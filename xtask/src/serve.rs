//! The local stack: the functions' handlers in one process behind one HTTP port, against moto.
//!
//! It uses `AWS_ENDPOINT_URL` when set (an emulator you run) or starts its own moto, provisions the
//! table, queues and key, prints the environment to point `inboxctl` at it, and serves until Ctrl-C.
//! Routes are the ones the deployed HTTP API has; each function issue mounts its handler here.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use inbox_shared::aws::AwsClients;
use inbox_shared::config::Config;
use inbox_shared::provision::{self, ProvisionPlan};
use tokio::net::TcpListener;

use crate::moto::Moto;

/// (method, path, what serves it)
const ROUTES: &[(&str, &str, &str)] = &[("GET", "/_local/health", "the local stack itself")];

pub fn run() -> Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    let own_moto = if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        let moto = Moto::start()?;
        for (name, value) in moto.env() {
            // SAFETY: set before the runtime starts any thread that reads the environment.
            unsafe { std::env::set_var(name, value) };
        }
        println!("moto (started for this stack) at {}", moto.url);
        Some(moto)
    } else {
        None
    };
    let result = runtime.block_on(serve());
    drop(own_moto);
    result
}

async fn serve() -> Result<ExitCode> {
    let config = Config::from_env()?;
    let clients = AwsClients::from_env().await;
    let provisioned = provision::provision(&clients, &ProvisionPlan::from_config(&config)).await?;
    println!(
        "provisioned: {}",
        serde_json::to_string_pretty(&provisioned)?
    );
    println!("\nto use inboxctl against this stack:");
    for (name, value) in [
        (
            "AWS_ENDPOINT_URL",
            std::env::var("AWS_ENDPOINT_URL").unwrap_or_default(),
        ),
        (
            "AWS_REGION",
            std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        ),
        ("TABLE_NAME", provisioned.table_name.clone()),
        ("KMS_KEY_ID", provisioned.kms_alias.clone()),
        ("INBOUND_QUEUE_URL", provisioned.inbound_queue_url.clone()),
        ("ERASURE_QUEUE_URL", provisioned.erasure_queue_url.clone()),
    ] {
        println!("  export {name}={value}");
    }

    let port: u16 = std::env::var("PORT")
        .ok()
        .map(|p| p.parse())
        .transpose()
        .context("PORT must be a port number")?
        .unwrap_or(3000);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    println!("\nlistening on http://{addr}");
    for (method, path, what) in ROUTES {
        println!("  {method:6} {path:28} {what}");
    }
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                tokio::spawn(async move {
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(route)).await;
                });
            }
            _ = tokio::signal::ctrl_c() => {
                println!("stopping");
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

async fn route(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match (request.method().as_str(), request.uri().path()) {
        ("GET", "/_local/health") => (StatusCode::OK, "ok\n".to_owned()),
        (method, path) => (
            StatusCode::NOT_FOUND,
            format!("no route for {method} {path}\n"),
        ),
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response"))
}
