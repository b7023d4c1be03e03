//! A stand-in for the Lambda Runtime API (`/2018-06-01/runtime/…`) on a loopback port, so a function's
//! real release binary runs here as it does on Lambda: it starts, polls `invocation/next`, handles the
//! event it is given and posts the response. The harness measures what Lambda would bill or limit: the
//! time from process start to the first poll (ready for the first invocation), each invocation's wall
//! time, the CPU time the process spent, its peak RSS, and the bytes it logged.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, oneshot};

/// What the function answered for one invocation.
pub enum Answer {
    Response(serde_json::Value),
    Error(String),
}

struct Shared {
    /// Events waiting for the function's next poll: (request id, deadline, payload).
    events: tokio::sync::Mutex<mpsc::Receiver<(String, SystemTime, Vec<u8>)>>,
    /// Where each request id's answer goes.
    waiting: Mutex<Vec<(String, oneshot::Sender<Answer>)>>,
    first_poll: Mutex<Option<Instant>>,
    polled: Notify,
    init_error: Mutex<Option<String>>,
}

/// A function process attached to its own Runtime API stand-in.
pub struct LambdaProcess {
    child: Child,
    started: Instant,
    shared: Arc<Shared>,
    events: mpsc::Sender<(String, SystemTime, Vec<u8>)>,
    log_bytes: Arc<AtomicU64>,
    next_id: u64,
    /// The function's timeout: each invocation's deadline, and how long the harness waits for it.
    timeout: Duration,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for LambdaProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.server.abort();
    }
}

impl LambdaProcess {
    /// Starts `binary` with Lambda's environment (as `deployed`, the Runtime API address) plus `env`.
    pub async fn start(
        binary: &Path,
        deployed: &super::Deployed,
        env: &[(String, String)],
    ) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (events, receiver) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            events: tokio::sync::Mutex::new(receiver),
            waiting: Mutex::new(Vec::new()),
            first_poll: Mutex::new(None),
            polled: Notify::new(),
            init_error: Mutex::new(None),
        });
        let routed = shared.clone();
        let server = tokio::spawn(crate::http::serve(listener, move |request| {
            let shared = routed.clone();
            async move { route(request, &shared).await }
        }));
        let started = Instant::now();
        let mut child = Command::new(binary)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(lambda_environment(
                addr,
                deployed.function,
                deployed.memory_mb,
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let log_bytes = Arc::new(AtomicU64::new(0));
        for mut stream in [
            Box::new(child.stdout.take().expect("piped")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("piped")),
        ] {
            let log_bytes = log_bytes.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 8192];
                while let Ok(n @ 1..) = stream.read(&mut buffer) {
                    log_bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
        }
        Ok(Self {
            child,
            started,
            shared,
            events,
            log_bytes,
            next_id: 0,
            timeout: deployed.timeout,
            server,
        })
    }

    /// Waits for the first poll of `invocation/next` and returns the time from process start to it.
    pub async fn ready(&mut self) -> Result<Duration> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let polled = self.shared.polled.notified();
            if let Some(at) = *self.shared.first_poll.lock().unwrap() {
                return Ok(at - self.started);
            }
            if let Some(error) = self.shared.init_error.lock().unwrap().clone() {
                bail!("the function failed to initialise: {error}");
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("the function exited with {status} before polling for an invocation");
            }
            if Instant::now() > deadline {
                bail!("the function did not poll for an invocation within 10 s");
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), polled).await;
        }
    }

    /// Hands `payload` to the function and waits for its answer; returns it and the wall time.
    pub async fn invoke(&mut self, payload: &serde_json::Value) -> Result<(Answer, Duration)> {
        self.next_id += 1;
        let id = format!("bench-{:08}", self.next_id);
        let (sender, receiver) = oneshot::channel();
        self.shared
            .waiting
            .lock()
            .unwrap()
            .push((id.clone(), sender));
        let sent = Instant::now();
        let deadline = SystemTime::now() + self.timeout;
        self.events
            .send((id, deadline, serde_json::to_vec(payload)?))
            .await
            .context("the Runtime API stand-in stopped")?;
        let answer = tokio::time::timeout(self.timeout, receiver)
            .await
            .with_context(|| format!("the invocation did not finish within {:?}", self.timeout))?
            .context("the Runtime API stand-in stopped")?;
        Ok((answer, sent.elapsed()))
    }

    /// Peak resident set size so far (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .context("reading /proc (Linux only)")?;
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc/PID/status")?;
        Ok(kib * 1024)
    }

    /// CPU time (user + system) the process has used so far.
    pub fn cpu_time(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command name (which may hold spaces) start at ") "; utime and stime are the
        // 14th and 15th fields of the line, in clock ticks of 1/100 s (USER_HZ on Linux).
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .context("unreadable /proc/PID/stat")?
            .1
            .split(' ')
            .collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        Ok(Duration::from_millis(ticks * 10))
    }

    /// Bytes the process has written to stdout and stderr (what CloudWatch Logs would ingest).
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes.load(Ordering::Relaxed)
    }
}

fn lambda_environment(
    runtime_api: SocketAddr,
    function: &str,
    memory_mb: u32,
) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".into()),
    ]
}

async fn route(request: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return status(404);
    };
    if rest == "invocation/next" {
        shared
            .first_poll
            .lock()
            .unwrap()
            .get_or_insert_with(Instant::now);
        shared.polled.notify_waiters();
        // Held until the harness has an event, as Lambda holds the poll of an idle function.
        let Some((id, deadline, payload)) = shared.events.lock().await.recv().await else {
            return status(410);
        };
        let deadline_ms = deadline
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        return Response::builder()
            .header("lambda-runtime-aws-request-id", &id)
            .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench",
            )
            .header("lambda-runtime-trace-id", format!("Root=1-bench-{id}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(payload)))
            .expect("a valid response");
    }
    if rest == "init/error" {
        *shared.init_error.lock().unwrap() = Some(String::from_utf8_lossy(&body).into_owned());
        return status(202);
    }
    let answer = rest
        .strip_prefix("invocation/")
        .and_then(|r| r.split_once('/'));
    let Some((id, kind)) = answer else {
        return status(404);
    };
    let answer = match kind {
        "response" => Answer::Response(serde_json::from_slice(&body).unwrap_or_default()),
        "error" => Answer::Error(String::from_utf8_lossy(&body).into_owned()),
        _ => return status(404),
    };
    let mut waiting = shared.waiting.lock().unwrap();
    if let Some(position) = waiting.iter().position(|(waiting_id, _)| waiting_id == id) {
        let (_, sender) = waiting.swap_remove(position);
        let _ = sender.send(answer);
    }
    status(202)
}

fn status(code: u16) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .body(Full::new(Bytes::new()))
        .expect("a valid response")
}
