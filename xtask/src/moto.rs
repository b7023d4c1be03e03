//! The moto server (DynamoDB, SQS, KMS emulation) on a free loopback port, one request at a time (see
//! `moto_serial.py`), stopped when dropped.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::tooling;

pub struct Moto {
    child: Child,
    pub url: String,
}

impl Moto {
    pub fn start() -> Result<Self> {
        let bin = tooling::ensure_venv(&tooling::MOTO)?;
        let port = free_port()?;
        let log = std::env::temp_dir().join(format!("inbox-moto-{port}.log"));
        let launcher = tooling::repo_root().join("xtask").join("moto_serial.py");
        let child = Command::new(bin.join("python"))
            .arg(launcher)
            .args(["127.0.0.1", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::create(&log)?.try_clone()?)
            .spawn()
            .context("starting the moto server")?;
        let mut moto = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = moto.child.try_wait()? {
                bail!(
                    "the moto server exited with {status}; see {}",
                    log.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "the moto server did not listen within 30 s; see {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(moto)
    }

    /// The emulator at `AWS_ENDPOINT_URL` when one is set (used as it is: `None`), or a new one whose
    /// address and dummy credentials are put in this process's environment for the SDK to find.
    /// Call it before starting any thread that reads the environment.
    pub fn unless_endpoint_set() -> Result<Option<Self>> {
        if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
            return Ok(None);
        }
        let moto = Self::start()?;
        for (name, value) in moto.env() {
            // SAFETY: the caller has started no other thread that reads the environment yet.
            unsafe { std::env::set_var(name, value) };
        }
        Ok(Some(moto))
    }

    /// Environment for processes that use this emulator.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
