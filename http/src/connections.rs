//! Serving a router to untrusted clients: a cap on open connections, a header timeout and
//! a keep-alive idle timeout, and a graceful shutdown.
//!
//! `axum::serve` has none of these: a client that opens connections and sends nothing holds
//! them for ever, and enough of them stop the server accepting. Here every connection is
//! tracked while it lives:
//! - a connection must bring a complete request header within the **header timeout** of
//!   opening, and later requests within the header timeout of their first byte;
//! - a kept-alive connection that stays without a request for the **idle timeout** is
//!   closed;
//! - at most **max connections** are open. One more closes the open connection that has
//!   waited longest without a request in progress (a silent or trickling client, or an idle
//!   keep-alive), so a client that sends a request promptly is served even while the cap is
//!   taken by clients that send nothing; when every connection is busy with a request, the
//!   newcomer waits up to [`CONNECTION_WAIT`] for one to end, and is closed otherwise.
//!
//! A connection with a request in progress is never cut by these rules: bounding the time a
//! request may take (its body, the work behind it) is the application's part.
//!
//! Every request carries its client's address as axum's `ConnectInfo<SocketAddr>`, as
//! `axum::serve` with `into_make_service_with_connect_info` gives it (limits per client).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tower::ServiceExt as _;
use tracing::{debug, info, trace, warn};

use crate::exposition::Exposition;

/// How long a connection over the cap waits for another one to close before it is closed.
pub const CONNECTION_WAIT: Duration = Duration::from_secs(1);
/// A connection that has served a request is not evicted within this time after its last
/// answer, so that the answer's last bytes are surely written first.
const EVICTION_GRACE: Duration = Duration::from_millis(500);
/// Pause after an accept error that is not about one connection (e.g. out of descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The limits of [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Longest wait for a complete request header, from the connection's opening or from
    /// the first byte of a later request.
    pub header_timeout: Duration,
    /// Longest wait for the next request on a kept-alive connection.
    pub idle_timeout: Duration,
}

/// Counts of the connections of one server, for its metrics.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    open: AtomicI64,
    accepted: AtomicU64,
    refused: AtomicU64,
    header_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    evicted: AtomicU64,
}

/// Why the server closed a connection on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// No complete request header in time.
    HeaderTimeout,
    /// Kept alive without a request for too long.
    IdleTimeout,
    /// Closed to make room for a new connection at the cap.
    Evicted,
    /// Over the cap, and no connection made room in time.
    Refused,
}

impl Closed {
    pub const ALL: [Closed; 4] = [
        Closed::HeaderTimeout,
        Closed::IdleTimeout,
        Closed::Evicted,
        Closed::Refused,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header_timeout",
            Closed::IdleTimeout => "idle_timeout",
            Closed::Evicted => "evicted",
            Closed::Refused => "refused",
        }
    }
}

impl ConnectionStats {
    /// Connections open now.
    pub fn open(&self) -> i64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections accepted and served so far (refused ones not included).
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Connections the server closed for this reason so far.
    pub fn closed(&self, reason: Closed) -> u64 {
        self.counter(reason).load(Ordering::Relaxed)
    }

    fn counter(&self, reason: Closed) -> &AtomicU64 {
        match reason {
            Closed::HeaderTimeout => &self.header_timeouts,
            Closed::IdleTimeout => &self.idle_timeouts,
            Closed::Evicted => &self.evicted,
            Closed::Refused => &self.refused,
        }
    }

    /// The Prometheus text of these counts, named `aqs_<component>_...`.
    pub fn render(&self, component: &str, metrics: &mut Exposition) {
        let open = format!("aqs_{component}_open_connections");
        metrics
            .gauge(&open, "Connections open now.")
            .value(self.open());
        let accepted = format!("aqs_{component}_connections_accepted_total");
        metrics
            .counter(&accepted, "Connections accepted.")
            .value(self.accepted());
        let closed = format!("aqs_{component}_connections_closed_total");
        let mut family = metrics.counter(
            &closed,
            "Connections the server closed on its own, by reason (refused: over the connection cap).",
        );
        for reason in Closed::ALL {
            family.sample(&[("reason", reason.as_str())], self.closed(reason));
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes; then stops
/// accepting, closes the connections without a request in progress, lets the others finish
/// their request, and returns once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stats: Arc<ConnectionStats>,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let max = limits.max_connections.max(1);
    let registry = Arc::new(Registry::new(max, limits, Arc::clone(&stats)));
    let (stopping, stop_seen) = watch::channel(false);
    let reaper = tokio::spawn(reap(Arc::clone(&registry), stop_seen.clone()));
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => {
                    trace!(%error, "connection failed before it was accepted");
                    continue;
                }
                Err(error) => {
                    warn!(%error, "cannot accept connections; retrying");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let Some(slot) = registry.admit().await else {
            stats
                .counter(Closed::Refused)
                .fetch_add(1, Ordering::Relaxed);
            debug!(%peer, max, "connection refused: at the connection cap");
            drop(stream);
            continue;
        };
        let tracked = registry.track();
        tokio::spawn(serve_connection(
            stream,
            peer,
            router.clone(),
            tracked,
            Arc::clone(&registry),
            slot,
            stop_seen.clone(),
        ));
    }
    drop(listener);
    let _ = stopping.send(true);
    reaper.abort();
    let open = stats.open();
    if open > 0 {
        info!(
            open,
            "no new connections; closing idle ones, finishing requests in progress"
        );
    }
    // Every connection holds one slot until it ends.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = registry.slots.acquire_many(all).await;
    Ok(())
}

/// Errors of one incoming connection, after which accepting goes on at once.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The open connections and their slots.
struct Registry {
    slots: Arc<Semaphore>,
    connections: Mutex<HashMap<u64, Arc<Tracked>>>,
    next_id: AtomicU64,
    limits: ConnectionLimits,
    stats: Arc<ConnectionStats>,
    started: Instant,
}

impl Registry {
    fn new(max: usize, limits: ConnectionLimits, stats: Arc<ConnectionStats>) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max)),
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            limits,
            stats,
            started: Instant::now(),
        }
    }

    /// Milliseconds since the registry started, at least 1 (0 means "never").
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// A slot for a new connection: at once when free; at the cap, after closing the
    /// connection that waited longest without a request, or when one ends within
    /// [`CONNECTION_WAIT`]; `None` otherwise.
    async fn admit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() {
            return Some(slot);
        }
        self.evict_one();
        tokio::time::timeout(CONNECTION_WAIT, Arc::clone(&self.slots).acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
    }

    fn track(&self) -> Arc<Tracked> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let now = self.now();
        let tracked = Arc::new(Tracked {
            id,
            requests: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since: AtomicU64::new(now),
            request_bytes_since: AtomicU64::new(0),
            close: Notify::new(),
            close_reason: Mutex::new(None),
        });
        self.lock().insert(id, Arc::clone(&tracked));
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        tracked
    }

    fn forget(&self, id: u64) {
        if self.lock().remove(&id).is_some() {
            self.stats.open.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Tracked>>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks the connection that has waited longest without a request to close.
    fn evict_one(&self) -> bool {
        let now = self.now();
        let grace = millis(EVICTION_GRACE);
        let candidate = self
            .lock()
            .values()
            .filter(|c| c.requests.load(Ordering::Acquire) == 0 && !c.closing())
            .filter(|c| {
                c.served.load(Ordering::Relaxed) == 0
                    || now.saturating_sub(c.idle_since.load(Ordering::Relaxed)) >= grace
            })
            .min_by_key(|c| (c.idle_since.load(Ordering::Relaxed), c.id))
            .cloned();
        match candidate {
            Some(connection) => {
                connection.request_close(Closed::Evicted);
                true
            }
            None => false,
        }
    }

    /// Closes the connections past their header or idle timeout.
    fn close_expired(&self) {
        let now = self.now();
        let header = millis(self.limits.header_timeout);
        let idle = millis(self.limits.idle_timeout);
        for connection in self.lock().values() {
            if connection.requests.load(Ordering::Acquire) > 0 || connection.closing() {
                continue;
            }
            let first_byte = connection.request_bytes_since.load(Ordering::Relaxed);
            let waiting_since = connection.idle_since.load(Ordering::Relaxed);
            let expired = if first_byte != 0 {
                (now.saturating_sub(first_byte) > header).then_some(Closed::HeaderTimeout)
            } else if connection.served.load(Ordering::Relaxed) == 0 {
                (now.saturating_sub(waiting_since) > header).then_some(Closed::HeaderTimeout)
            } else {
                (now.saturating_sub(waiting_since) > idle).then_some(Closed::IdleTimeout)
            };
            if let Some(reason) = expired {
                connection.request_close(reason);
            }
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Looks for expired connections a few times per timeout.
async fn reap(registry: Arc<Registry>, mut stop: watch::Receiver<bool>) {
    let shortest = registry
        .limits
        .header_timeout
        .min(registry.limits.idle_timeout);
    let tick = (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => registry.close_expired(),
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
    }
}

/// What the server knows of one open connection.
#[derive(Debug)]
struct Tracked {
    id: u64,
    /// Requests in progress: from the call of the service until the answer's body is done.
    requests: AtomicUsize,
    /// Requests answered.
    served: AtomicU64,
    /// When the connection opened or its last answer ended (registry milliseconds).
    idle_since: AtomicU64,
    /// When the first byte of the next request arrived; 0 when none has yet.
    request_bytes_since: AtomicU64,
    close: Notify,
    close_reason: Mutex<Option<Closed>>,
}

impl Tracked {
    fn request_close(&self, reason: Closed) {
        let mut slot = self
            .close_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(reason);
            self.close.notify_one();
        }
    }

    fn closing(&self) -> bool {
        self.close_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    fn close_reason(&self) -> Option<Closed> {
        *self
            .close_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    tracked: Arc<Tracked>,
    registry: Arc<Registry>,
    slot: tokio::sync::OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) {
    let io = TokioIo::new(Watched {
        inner: stream,
        tracked: Arc::clone(&tracked),
        registry: Arc::clone(&registry),
    });
    let service = Tracking {
        router,
        peer,
        tracked: Arc::clone(&tracked),
        registry: Arc::clone(&registry),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Header and idle time are watched by the registry, which tells the two apart.
    builder.timer(TokioTimer::new()).header_read_timeout(None);
    let connection = builder.serve_connection(io, service);
    let mut connection = pin!(connection);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    trace!(%error, "connection ended with an error");
                }
                break;
            }
            () = tracked.close.notified() => {
                // Set before the notification; a request may have started since the
                // decision: then it is finished first.
                let reason = tracked.close_reason();
                if tracked.requests.load(Ordering::Acquire) == 0 {
                    if let Some(reason) = reason {
                        registry.stats.counter(reason).fetch_add(1, Ordering::Relaxed);
                        debug!(reason = reason.as_str(), "connection closed");
                    }
                    break;
                }
                connection.as_mut().graceful_shutdown();
            }
            _ = stop.wait_for(|stopping| *stopping), if !stopping => {
                stopping = true;
                if tracked.requests.load(Ordering::Acquire) == 0 {
                    break;
                }
                connection.as_mut().graceful_shutdown();
            }
        }
    }
    registry.forget(tracked.id);
    drop(slot);
}

/// The connection's socket, noting when the bytes of a next request start to arrive.
struct Watched {
    inner: TcpStream,
    tracked: Arc<Tracked>,
    registry: Arc<Registry>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before
            && self.tracked.requests.load(Ordering::Acquire) == 0
            && self.tracked.request_bytes_since.load(Ordering::Relaxed) == 0
        {
            let now = self.registry.now();
            self.tracked
                .request_bytes_since
                .store(now, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router, marking each request in progress until its answer's body is done.
#[derive(Clone)]
struct Tracking {
    router: Router,
    peer: SocketAddr,
    tracked: Arc<Tracked>,
    registry: Arc<Registry>,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Tracking {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.tracked.requests.fetch_add(1, Ordering::AcqRel);
        self.tracked.request_bytes_since.store(0, Ordering::Relaxed);
        let guard = InProgress {
            tracked: Arc::clone(&self.tracked),
            registry: Arc::clone(&self.registry),
        };
        let router = self.router.clone();
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        Box::pin(async move {
            let response = router.oneshot(request).await?;
            Ok(response.map(|body| {
                Body::new(GuardedBody {
                    inner: body,
                    _guard: guard,
                })
            }))
        })
    }
}

/// A request in progress; dropping it (with the answer's body, or with the request when the
/// connection ends first) ends it.
struct InProgress {
    tracked: Arc<Tracked>,
    registry: Arc<Registry>,
}

impl Drop for InProgress {
    fn drop(&mut self) {
        let now = self.registry.now();
        self.tracked.idle_since.store(now, Ordering::Relaxed);
        self.tracked.served.fetch_add(1, Ordering::Relaxed);
        self.tracked.requests.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body that ends its request when dropped.
struct GuardedBody {
    inner: Body,
    _guard: InProgress,
}

impl HttpBody for GuardedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
