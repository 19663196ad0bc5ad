//! A TCP proxy in front of the database that a test can slow down, cut and
//! restore, to simulate a database falling behind or lost without touching
//! the shared server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct CutProxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    /// Milliseconds every chunk waits before it is passed on.
    delay_ms: Arc<AtomicU64>,
}

impl CutProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (generation, _) = watch::channel(0u64);
        let delay = delay_ms.clone();
        let accept_up = up.clone();
        let cuts = generation.subscribe();
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                if !accept_up.load(Ordering::SeqCst) {
                    drop(inbound); // refused: the client sees the connection close at once
                    continue;
                }
                let mut cut = cuts.clone();
                cut.mark_unchanged();
                let delay = delay.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (from_client, to_client) = inbound.into_split();
                    let (from_server, to_server) = outbound.into_split();
                    tokio::select! {
                        _ = async {
                            tokio::join!(
                                pass_on(from_client, to_server, &delay),
                                pass_on(from_server, to_client, &delay),
                            )
                        } => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            port,
            up,
            generation,
            delay_ms,
        }
    }

    /// Holds every chunk, each way, `delay` before passing it on: each
    /// round trip to the database takes at least twice as long.
    pub fn slow_down(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// A connection string that reaches the database only through this proxy.
    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }
}

/// Copies one direction of a connection, each chunk after the current delay.
async fn pass_on(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin, delay_ms: &AtomicU64) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let delay = delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// The single host:port of a plain `mongodb://` URI, if it has exactly one.
pub fn single_host(uri: &str) -> Option<SocketAddr> {
    let rest = uri.strip_prefix("mongodb://")?;
    let authority = rest.split(['/', '?']).next()?;
    let hosts = authority.rsplit('@').next()?;
    if hosts.contains(',') {
        return None;
    }
    use std::net::ToSocketAddrs;
    let with_port = if hosts.contains(':') {
        hosts.to_owned()
    } else {
        format!("{hosts}:27017")
    };
    with_port.to_socket_addrs().ok()?.next()
}
