//! A TCP proxy in front of a real server whose connections a test can cut,
//! as a network failure or a load balancer would.

use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards each connection to its upstream until [`Proxy::cut`].
#[derive(Debug, Clone)]
pub struct Proxy {
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    cuts: Arc<watch::Sender<u64>>,
}

impl Proxy {
    /// A proxy to `upstream` (`host:port`), listening on a free port.
    pub async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cuts, _) = watch::channel(0);
        let cuts = Arc::new(cuts);
        let sender = Arc::clone(&cuts);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = sender.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    // Both sockets are dropped when cut: the client sees its
                    // connection reset, the server a client gone.
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { port, cuts }
    }

    /// Close every connection open now; later ones go through again.
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    /// `url` with its host and port replaced by this proxy's.
    pub fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let user = authority
            .rsplit_once('@')
            .map(|(user, _)| format!("{user}@"));
        format!(
            "{scheme}://{}127.0.0.1:{}{path}",
            user.unwrap_or_default(),
            self.port
        )
    }
}

/// The `host:port` of a server URL (its scheme's default port when it
/// names none).
pub fn host_port(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host_port.contains(':') {
        true => host_port.to_owned(),
        false if scheme.starts_with("postgres") => format!("{host_port}:5432"),
        false => format!("{host_port}:3306"),
    }
}
