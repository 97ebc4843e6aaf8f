//! `serve` and the Host check over real sockets on `127.0.0.1:0`: silent, trickling and
//! idle clients are closed and cannot keep a prompt client out; requests in progress are
//! never cut; shutdown is graceful.

use std::sync::Arc;
use std::time::Duration;

use aqs_http::{AllowedHosts, Closed, ConnectionLimits, ConnectionStats, HostCheckLayer, serve};
use axum::Router;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::task::JoinHandle;

struct Server {
    address: String,
    stats: Arc<ConnectionStats>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(router: Router, limits: ConnectionLimits) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let stats = Arc::new(ConnectionStats::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            router,
            limits,
            Arc::clone(&stats),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            address,
            stats,
            stop: Some(stop),
            task,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(&self.address).await.expect("connect")
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve task")
            .expect("serve");
    }
}

fn hello() -> Router {
    Router::new().route("/", get(|| async { "hello" }))
}

fn limits(max_connections: usize, header_ms: u64, idle_ms: u64) -> ConnectionLimits {
    ConnectionLimits {
        max_connections,
        header_timeout: Duration::from_millis(header_ms),
        idle_timeout: Duration::from_millis(idle_ms),
    }
}

/// Sends one GET on `stream` (kept alive) and reads the answer; its status and body.
async fn get_on(stream: &mut TcpStream, host: &str, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    let mut buffer = [0_u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("an answer within 10 s")
            .expect("read");
        assert!(read > 0, "closed before a full answer: {answer:?}");
        answer.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if body.len() >= length {
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .expect("status");
                return (status, body.to_owned());
            }
        }
    }
}

/// Whether the server closes `stream` within 10 s (reading gives end of file or a reset).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buffer = [0_u8; 64];
    match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "not within 10 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_at_the_cap_do_not_keep_a_prompt_client_out() {
    // Timeouts far away: only the cap is at work.
    let server = Server::start(hello(), limits(8, 60_000, 60_000)).await;
    let mut silent = Vec::new();
    for _ in 0..16 {
        silent.push(server.connect().await);
    }
    eventually("16 connections handled", || {
        server.stats.accepted() + server.stats.closed(Closed::Refused) >= 16
    })
    .await;
    assert!(server.stats.open() <= 8, "open: {}", server.stats.open());

    let mut prompt = server.connect().await;
    let (status, body) = get_on(&mut prompt, "127.0.0.1", "/").await;
    assert_eq!((status, body.as_str()), (200, "hello"));
    // Kept alive and busy answering: a second request on it is served too.
    assert_eq!(get_on(&mut prompt, "127.0.0.1", "/").await.0, 200);
    assert!(server.stats.closed(Closed::Evicted) >= 9);
    assert!(server.stats.open() <= 8);
    // Most of the silent connections were closed to make room.
    let mut closed = 0;
    for stream in &mut silent {
        if closed_by_server(stream).await {
            closed += 1;
        }
        if closed >= 9 {
            break;
        }
    }
    assert!(closed >= 9, "{closed} silent connections closed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_that_does_not_complete_in_time_is_cut_even_when_it_trickles() {
    let server = Server::start(hello(), limits(16, 300, 60_000)).await;
    // Connects and sends nothing.
    let mut silent = server.connect().await;
    // Sends a byte of its header every 50 ms, for ever.
    let mut trickling = server.connect().await;
    let trickle = tokio::spawn(async move {
        for byte in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
            .iter()
            .cycle()
        {
            if trickling.write_all(&[*byte]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    assert!(closed_by_server(&mut silent).await);
    assert!(
        tokio::time::timeout(Duration::from_secs(10), trickle)
            .await
            .expect("the trickling client is cut within 10 s")
            .expect("trickle task")
    );
    assert_eq!(server.stats.closed(Closed::HeaderTimeout), 2);
    // A prompt request is unaffected.
    let mut prompt = server.connect().await;
    assert_eq!(get_on(&mut prompt, "127.0.0.1", "/").await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_alive_connections_live_past_the_header_timeout_until_the_idle_timeout() {
    let server = Server::start(hello(), limits(16, 200, 2_000)).await;
    let mut kept = server.connect().await;
    assert_eq!(get_on(&mut kept, "127.0.0.1", "/").await.0, 200);
    // Longer than the header timeout, shorter than the idle timeout.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(get_on(&mut kept, "127.0.0.1", "/").await.0, 200);
    assert!(closed_by_server(&mut kept).await);
    assert_eq!(server.stats.closed(Closed::IdleTimeout), 1);
    assert_eq!(server.stats.closed(Closed::HeaderTimeout), 0);
    server.stop().await;
}

/// A router whose `/wait` answers once `release` gives it a permit.
fn waiting(release: Arc<Semaphore>, entered: Arc<Notify>) -> Router {
    hello().route(
        "/wait",
        get(move || {
            let (release, entered) = (Arc::clone(&release), Arc::clone(&entered));
            async move {
                entered.notify_one();
                let _ = release.acquire().await;
                "done"
            }
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_progress_are_never_cut_and_a_full_house_refuses_newcomers() {
    let (release, entered) = (Arc::new(Semaphore::new(0)), Arc::new(Notify::new()));
    // Timeouts shorter than the requests take.
    let server = Server::start(
        waiting(Arc::clone(&release), Arc::clone(&entered)),
        limits(2, 200, 200),
    )
    .await;
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut stream = server.connect().await;
        stream
            .write_all(b"GET /wait HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("send");
        entered.notified().await;
        busy.push(stream);
    }
    // Both slots busy with requests: a newcomer waits, then is closed.
    let mut newcomer = server.connect().await;
    assert!(closed_by_server(&mut newcomer).await);
    eventually("the newcomer counted as refused", || {
        server.stats.closed(Closed::Refused) == 1
    })
    .await;
    // Past every timeout, the requests in progress still get their answers.
    tokio::time::sleep(Duration::from_millis(600)).await;
    release.add_permits(2);
    for stream in &mut busy {
        let mut answer = String::new();
        let mut buffer = [0_u8; 1024];
        while !answer.ends_with("done") {
            let read = stream.read(&mut buffer).await.expect("read");
            assert!(read > 0, "cut: {answer}");
            answer.push_str(&String::from_utf8_lossy(&buffer[..read]));
        }
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    assert_eq!(server.stats.closed(Closed::Evicted), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_in_progress_and_closes_the_others() {
    let (release, entered) = (Arc::new(Semaphore::new(0)), Arc::new(Notify::new()));
    let mut server = Server::start(
        waiting(Arc::clone(&release), Arc::clone(&entered)),
        limits(16, 60_000, 60_000),
    )
    .await;
    let mut silent = server.connect().await;
    let mut kept = server.connect().await;
    assert_eq!(get_on(&mut kept, "localhost", "/").await.0, 200);
    let mut busy = server.connect().await;
    busy.write_all(b"GET /wait HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("send");
    entered.notified().await;

    let _ = server.stop.take().expect("running").send(());
    assert!(closed_by_server(&mut silent).await);
    assert!(closed_by_server(&mut kept).await);
    assert!(!server.task.is_finished());
    release.add_permits(1);
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), busy.read_to_string(&mut answer))
        .await
        .expect("busy answered and closed")
        .expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("done"), "{answer}");
    let address = server.address.clone();
    server.stop().await;
    // No longer listening.
    assert!(TcpStream::connect(&address).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_hosts_not_served_here_are_421() {
    let allowed = AllowedHosts::new(["aqs.example.com"]).expect("names");
    let layer = HostCheckLayer::new(allowed, "AQS_TEST_ALLOWED_HOSTS");
    let refused = layer.refused_counter();
    let server = Server::start(hello().layer(layer), limits(16, 60_000, 60_000)).await;
    let port = server.address.rsplit(':').next().expect("port").to_owned();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "aqs.example.com".to_owned(),
        format!("[::1]:{port}"),
    ] {
        let mut stream = server.connect().await;
        assert_eq!(
            get_on(&mut stream, &host, "/").await,
            (200, "hello".to_owned()),
            "{host}"
        );
    }
    // A rebinding page: the browser names the attacker's site.
    let mut stream = server.connect().await;
    let (status, body) = get_on(&mut stream, &format!("rebind.attacker.example:{port}"), "/").await;
    assert_eq!(status, 421);
    let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["error"], "misdirected_request");
    let message = body["message"].as_str().expect("message");
    assert!(message.contains("rebind.attacker.example"), "{message}");
    assert!(message.contains("AQS_TEST_ALLOWED_HOSTS"), "{message}");
    assert_eq!(refused.load(std::sync::atomic::Ordering::Relaxed), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_see_the_clients_address() {
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;
    let router = Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
    );
    let server = Server::start(router, limits(4, 2_000, 2_000)).await;
    let mut stream = server.connect().await;
    let local = stream.local_addr().expect("local address").to_string();
    let (status, body) = get_on(&mut stream, "localhost", "/peer").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.ends_with(&local),
        "the handler saw {body:?}, the client is {local}"
    );
    drop(stream);
    server.stop().await;
}
