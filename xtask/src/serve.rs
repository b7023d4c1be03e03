//! The local stack: the functions' handlers in one process behind one HTTP port, against moto.
//!
//! It uses `AWS_ENDPOINT_URL` when set (an emulator you run) or starts its own moto, provisions the
//! table, queues and key, prints the environment to point `inboxctl` at it, and serves until Ctrl-C.
//! Routes are the ones the deployed HTTP API has: a request is handed to the function's own handler as
//! the `lambda_http::Request` API Gateway would deliver, so what works here works deployed.
//!
//! Every request and every poll of a queue is one invocation of the shared runner
//! (`inbox_shared::runner`), as on Lambda: its span with a request id made here, the function's own
//! timeout as its deadline, the metrics flushed at its end. The functions' JSON log lines go to stderr
//! (level from `RUST_LOG`, default `info`: each message's ingest and ai-reply lines are what a
//! developer watching the stack wants to see).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use ai_reply::Replier;
use anyhow::{Context, Result};
use channel_connect::ChannelConnect;
use console_api::ConsoleApi;
use data_deletion::DataDeletion;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use inbox_shared::aws::AwsClients;
use inbox_shared::clock;
use inbox_shared::config::Config;
use inbox_shared::identity::{self, Verifier};
use inbox_shared::ids::random_bytes;
use inbox_shared::provision::{self, ProvisionPlan, Provisioned};
use inbox_shared::runner::{self, Emf, Function, Invocation};
use inbox_shared::secret::AppSecret;
use retention_sweep::{SweepEvent, Sweeper};
use tokio::net::TcpListener;
use webhook_ingest::Ingest;

use crate::moto::Moto;

/// (method, path, what serves it)
const ROUTES: &[(&str, &str, &str)] = &[
    (
        "GET",
        "/webhooks/meta",
        "webhook-ingest: Meta subscribe handshake",
    ),
    (
        "POST",
        "/webhooks/meta",
        "webhook-ingest: Messenger, Instagram, WhatsApp",
    ),
    ("POST", "/webhooks/line", "webhook-ingest: LINE"),
    (
        "POST",
        "/meta/data-deletion",
        "data-deletion: Meta data-deletion callback",
    ),
    (
        "POST",
        "/meta/deauthorize",
        "data-deletion: Meta deauthorize callback",
    ),
    (
        "GET",
        "/meta/deletion-status",
        "data-deletion: status page (?code=)",
    ),
    (
        "GET",
        "/privacy/data-deletion",
        "data-deletion: instructions page",
    ),
    (
        "GET",
        "/connect/meta/start",
        "channel-connect: a connect link → Facebook Login (?state=)",
    ),
    (
        "GET",
        "/connect/meta/callback",
        "channel-connect: Facebook Login callback",
    ),
    (
        "GET",
        "/connect/instagram/start",
        "channel-connect: a connect link → Instagram Login (?state=)",
    ),
    (
        "GET",
        "/connect/instagram/callback",
        "channel-connect: Instagram Login callback",
    ),
    (
        "GET",
        "/connect/whatsapp",
        "channel-connect: WhatsApp Embedded Signup page (?state=)",
    ),
    (
        "POST",
        "/connect/whatsapp",
        "channel-connect: Embedded Signup result",
    ),
    (
        "POST",
        "/_local/sweep",
        "retention-sweep: run the daily schedule's fan-out now",
    ),
    (
        "*",
        "/v1/…",
        "console-api (Bearer: an ID token of `inboxctl user login`; checked here as the JWT authorizer does)",
    ),
    ("GET", "/_local/health", "the local stack itself"),
];

/// How often the ai-reply poller looks at an empty inbound queue. Short polls, not long ones: the
/// local moto serves one request at a time, and a long poll would stall every other call.
const POLL_IDLE: std::time::Duration = std::time::Duration::from_millis(500);
/// A failed record comes back after this (Lambda would wait for the visibility timeout).
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// Local values for the secrets a deployed stack reads from its parameters, used when the environment
/// does not set them, so signed test requests can be made at once.
const LOCAL_DEFAULTS: &[(&str, &str)] = &[
    ("META_APP_SECRET", "local-app-secret"),
    ("META_VERIFY_TOKEN", "local-verify-token"),
];
/// Signs connect links; made up at start when the environment does not set it (channel-connect needs
/// one, and `inboxctl channel connect-link` the same one).
const CONNECT_STATE_SECRET: &str = "CONNECT_STATE_SECRET";

/// 64 hex characters (256 random bits): a connect-state secret for this stack only.
fn random_secret() -> String {
    [random_bytes(), random_bytes()]
        .iter()
        .flatten()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn run() -> Result<ExitCode> {
    inbox_shared::telemetry::init_json_logs_at("info");
    let runtime = tokio::runtime::Runtime::new()?;
    let own_moto = Moto::unless_endpoint_set()?;
    if let Some(moto) = &own_moto {
        println!("moto (started for this stack) at {}", moto.url);
    }
    let mut generated: Vec<(&'static str, String)> = Vec::new();
    let connect_state_secret = random_secret();
    for (name, value) in LOCAL_DEFAULTS
        .iter()
        .copied()
        .chain([(CONNECT_STATE_SECRET, connect_state_secret.as_str())])
    {
        if std::env::var_os(name).is_none() {
            // SAFETY: as above, no other thread reads the environment yet.
            unsafe { std::env::set_var(name, value) };
            generated.push((name, value.to_owned()));
        }
    }
    let result = runtime.block_on(serve(&generated));
    drop(own_moto);
    result
}

/// The HTTP functions, each built once as its Lambda's `main` would.
struct LocalStack {
    ingest: Ingest,
    data_deletion: DataDeletion,
    channel_connect: ChannelConnect,
    console: ConsoleApi,
    /// What API Gateway's JWT authorizer does in AWS: the console's tokens checked against the pool.
    verifier: Verifier,
    sweeper: Arc<Sweeper>,
    /// Print each request's metrics line, as Lambda would log it, or drop it.
    emf: Emf,
}

impl LocalStack {
    async fn route(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_owned();
        match (request.method().as_str(), path.as_str()) {
            ("GET", "/_local/health") => text(StatusCode::OK, "ok\n".to_owned()),
            ("POST", "/_local/sweep") => match runner::invoke_events(
                &*self.sweeper,
                SweepEvent::Schedule,
                invocation::<Sweeper>(self.emf),
            )
            .await
            {
                Ok(done) => text(
                    StatusCode::OK,
                    format!(
                        "{}\n",
                        serde_json::to_string(&done).expect("a summary serialises")
                    ),
                ),
                Err(err) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("sweep fan-out failed: {err}\n"),
                ),
            },
            (_, "/webhooks/meta" | "/webhooks/line") => match to_lambda(request).await {
                Ok(request) => from_lambda(
                    runner::invoke_http(&self.ingest, request, invocation::<Ingest>(self.emf))
                        .await,
                ),
                Err(err) => text(StatusCode::BAD_REQUEST, format!("unreadable body: {err}\n")),
            },
            (
                _,
                "/meta/data-deletion"
                | "/meta/deauthorize"
                | "/meta/deletion-status"
                | "/privacy/data-deletion",
            ) => match to_lambda(request).await {
                Ok(request) => from_lambda(
                    runner::invoke_http(
                        &self.data_deletion,
                        request,
                        invocation::<DataDeletion>(self.emf),
                    )
                    .await,
                ),
                Err(err) => text(StatusCode::BAD_REQUEST, format!("unreadable body: {err}\n")),
            },
            (
                _,
                "/connect/meta/start"
                | "/connect/meta/callback"
                | "/connect/instagram/start"
                | "/connect/instagram/callback"
                | "/connect/whatsapp",
            ) => match to_lambda(request).await {
                Ok(request) => from_lambda(
                    runner::invoke_http(
                        &self.channel_connect,
                        request,
                        invocation::<ChannelConnect>(self.emf),
                    )
                    .await,
                ),
                Err(err) => text(StatusCode::BAD_REQUEST, format!("unreadable body: {err}\n")),
            },
            (method, path) if path.starts_with("/v1/") => {
                // The authorizer's exemptions in the template: the API document and CORS preflights.
                let open = path == "/v1/openapi.json" || method == "OPTIONS";
                let authorization = request
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let claims = if open {
                    None
                } else {
                    match self.verifier.verify_bearer(authorization.as_deref()).await {
                        Ok(claims) => Some(claims),
                        // As API Gateway answers a refused token: the function never sees it.
                        Err(err) if err.is_unavailable() => {
                            return text(StatusCode::SERVICE_UNAVAILABLE, format!("{err}\n"));
                        }
                        Err(err) => {
                            return text(
                                StatusCode::UNAUTHORIZED,
                                format!("Unauthorized: {err}\n"),
                            );
                        }
                    }
                };
                match to_lambda(request).await {
                    Ok(request) => {
                        let request = match claims {
                            Some(claims) => identity::with_claims(request, claims),
                            None => request,
                        };
                        from_lambda(
                            runner::invoke_http(
                                &self.console,
                                request,
                                invocation::<ConsoleApi>(self.emf),
                            )
                            .await,
                        )
                    }
                    Err(err) => text(StatusCode::BAD_REQUEST, format!("unreadable body: {err}\n")),
                }
            }
            (method, path) => text(
                StatusCode::NOT_FOUND,
                format!("no route for {method} {path}\n"),
            ),
        }
    }
}

/// A running local stack: the HTTP routes on `addr` and both queue pollers, stopped when dropped.
pub struct Stack {
    pub addr: SocketAddr,
    pub config: Config,
    pub provisioned: Provisioned,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|task| task.abort());
    }
}

impl Stack {
    /// Provisions what `config` names, builds every function as its Lambda's `main` would, and serves
    /// them on `listener`. `verbose` prints each poll that handled jobs (and the metrics lines).
    pub async fn start(
        listener: TcpListener,
        config: Config,
        clients: &AwsClients,
        verbose: bool,
    ) -> Result<Self> {
        let addr = listener.local_addr()?;
        let provisioned =
            provision::provision(clients, &ProvisionPlan::from_config(&config)).await?;
        // Functions read the provisioned names, not the defaults the config started from; the status
        // page links and the connect links' redirects point at this stack unless PUBLIC_BASE_URL says
        // otherwise, and connect links are signed with a secret of this stack's own unless
        // CONNECT_STATE_SECRET gives one.
        // The console's user pool, unless the environment names one.
        let identity = match (&config.cognito_user_pool_id, &config.cognito_client_id) {
            (Some(_), Some(_)) => None,
            _ => Some(
                provision::provision_identity(
                    &identity::directory::cognito_client_from_env().await,
                    &provision::user_pool_name(&ProvisionPlan::from_config(&config)),
                )
                .await?,
            ),
        };
        let config = Config {
            cognito_user_pool_id: identity
                .as_ref()
                .map(|i| i.user_pool_id.clone())
                .or(config.cognito_user_pool_id.clone()),
            cognito_client_id: identity
                .as_ref()
                .map(|i| i.client_id.clone())
                .or(config.cognito_client_id.clone()),
            cognito_issuer: identity
                .as_ref()
                .map(|i| i.issuer.clone())
                .or(config.cognito_issuer.clone()),
            console_cursor_secret: config
                .console_cursor_secret
                .clone()
                .or_else(|| Some(AppSecret::new(random_secret()))),
            table_name: provisioned.table_name.clone(),
            kms_key_id: provisioned.kms_alias.clone(),
            inbound_queue_url: Some(provisioned.inbound_queue_url.clone()),
            erasure_queue_url: Some(provisioned.erasure_queue_url.clone()),
            public_base_url: config
                .public_base_url
                .clone()
                .or_else(|| Some(format!("http://{addr}"))),
            connect_state_secret: config
                .connect_state_secret
                .clone()
                .or_else(|| Some(AppSecret::new(random_secret()))),
            ..config
        };
        let sweeper = Arc::new(Sweeper::new(&config, clients, clock::system())?);
        let routes = Arc::new(LocalStack {
            ingest: Ingest::new(&config, clients, clock::system())?,
            data_deletion: DataDeletion::new(&config, clients, clock::system())?,
            channel_connect: ChannelConnect::new(&config, clients, clock::system())?,
            console: ConsoleApi::new(&config, clients, clock::system())?,
            verifier: Verifier::from_config(&config, clock::system())?,
            sweeper: sweeper.clone(),
            emf: emf(verbose),
        });
        let tasks = vec![
            tokio::spawn(poll_inbound(
                Replier::new(&config, clients, clock::system()),
                clients.sqs.clone(),
                provisioned.inbound_queue_url.clone(),
                verbose,
            )),
            tokio::spawn(poll_erasure(
                sweeper,
                clients.sqs.clone(),
                provisioned.erasure_queue_url.clone(),
                verbose,
            )),
            tokio::spawn(crate::http::serve(listener, move |request| {
                let routes = routes.clone();
                async move { routes.route(request).await }
            })),
        ];
        Ok(Self {
            addr,
            config,
            provisioned,
            tasks,
        })
    }
}

/// `generated`: the local secrets this stack set itself, the only ones it prints.
async fn serve(generated: &[(&'static str, String)]) -> Result<ExitCode> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .map(|p| p.parse())
        .transpose()
        .context("PORT must be a port number")?
        .unwrap_or(3000);
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    let clients = AwsClients::from_env().await;
    let stack = Stack::start(listener, Config::from_env()?, &clients, true).await?;
    let provisioned = &stack.provisioned;
    println!(
        "provisioned: {}",
        serde_json::to_string_pretty(provisioned)?
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
        (
            "PUBLIC_BASE_URL",
            stack.config.public_base_url.clone().unwrap_or_default(),
        ),
        (
            "COGNITO_USER_POOL_ID",
            stack
                .config
                .cognito_user_pool_id
                .clone()
                .unwrap_or_default(),
        ),
        (
            "COGNITO_CLIENT_ID",
            stack.config.cognito_client_id.clone().unwrap_or_default(),
        ),
    ] {
        println!("  export {name}={value}");
    }
    // A secret from the environment is the operator's: never echoed.
    let secret = |name: &str| match generated.iter().find(|(generated, _)| *generated == name) {
        Some((_, value)) => println!("  {name}={value}"),
        None => println!("  {name}: from the environment (not printed)"),
    };
    println!("\nwebhook secrets of this stack:");
    for (name, _) in LOCAL_DEFAULTS {
        secret(name);
    }
    println!("\nconnect-link secret of this stack (inboxctl channel connect-link needs the same):");
    secret(CONNECT_STATE_SECRET);

    println!("\nlistening on http://{}", stack.addr);
    for (method, path, what) in ROUTES {
        println!("  {method:6} {path:28} {what}");
    }
    println!(
        "  ai-reply polls {} (LLM: {})",
        provisioned.inbound_queue_url,
        llm_summary(&stack.config)
    );
    println!(
        "  retention-sweep polls {} (erasure and sweep jobs)",
        provisioned.erasure_queue_url
    );
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    Ok(ExitCode::SUCCESS)
}

/// A locally made invocation of `F`, with the function's deployed timeout as its deadline.
fn invocation<F: Function>(emf: Emf) -> Invocation {
    Invocation::local(crate::bench::deployed(F::NAME).timeout, emf)
}

fn emf(verbose: bool) -> Emf {
    if verbose { Emf::Stdout } else { Emf::Discard }
}

/// ai-reply as Lambda's SQS event source would run it: a batch at a time, failures back after a pause.
async fn poll_inbound(
    replier: Replier,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    verbose: bool,
) {
    loop {
        let invocation = invocation::<Replier>(emf(verbose));
        match replier
            .poll_once(&sqs, &queue_url, RETRY_AFTER, invocation)
            .await
        {
            Ok(polled) if polled.received > 0 => {
                if verbose {
                    println!(
                        "ai-reply: handled {} inbound job(s), {} to retry",
                        polled.received, polled.failed
                    );
                }
            }
            Ok(_) => tokio::time::sleep(POLL_IDLE).await,
            Err(err) => {
                eprintln!("ai-reply poller: {err}");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

/// retention-sweep's erasure-queue consumer, as Lambda's SQS event source would run it.
async fn poll_erasure(
    sweeper: Arc<Sweeper>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    verbose: bool,
) {
    loop {
        let invocation = invocation::<Sweeper>(emf(verbose));
        match sweeper
            .poll_once(&sqs, &queue_url, RETRY_AFTER, invocation)
            .await
        {
            Ok(0) => tokio::time::sleep(POLL_IDLE).await,
            Ok(handled) => {
                if verbose {
                    println!("retention-sweep: handled {handled} job(s)");
                }
            }
            Err(err) => {
                eprintln!("retention-sweep poller: {err}");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

fn llm_summary(config: &Config) -> String {
    let mut configured = Vec::new();
    if config.anthropic_api_key.is_some() {
        configured.push("anthropic");
    }
    if config.openai_api_key.is_some() {
        configured.push("openai");
    }
    configured.push("offline");
    configured.join(" → ")
}

/// The request as lambda_http hands it to a function: same method, URI, headers and body bytes.
async fn to_lambda(request: Request<Incoming>) -> Result<lambda_http::Request, hyper::Error> {
    let (parts, body) = request.into_parts();
    let bytes = body.collect().await?.to_bytes();
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else {
        lambda_http::Body::Binary(bytes.to_vec())
    };
    Ok(lambda_http::Request::from_parts(parts, body))
}

fn from_lambda(response: lambda_http::Response<lambda_http::Body>) -> Response<Full<Bytes>> {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        lambda_http::Body::Text(text) => Bytes::from(text),
        lambda_http::Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    Response::from_parts(parts, Full::new(bytes))
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}
