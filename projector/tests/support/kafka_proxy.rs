//! A TCP proxy of the test's own between Kafka clients and a real broker, which can hang the
//! connections one client has open (by the client id its requests carry) while the broker
//! and every other client go on: the state of a client whose fetcher waits for an answer
//! that never comes, made on purpose.
//!
//! A client learns the brokers' addresses from metadata answers and then connects to them
//! directly; to keep every connection on the proxy, the proxy writes its own port in place
//! of the broker's wherever an answer names the broker's address (metadata, group
//! coordinator). Requests and answers are forwarded whole, one frame (size, then body) at a
//! time; nothing else is changed.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

/// How often a hung connection looks whether the proxy stopped.
const TICK: Duration = Duration::from_millis(20);
/// Largest frame taken (Kafka's default `socket.request.max.bytes` is 100 MiB).
const MAX_FRAME: usize = 104_857_600;

/// One proxied connection.
#[derive(Debug)]
struct Connection {
    /// The client id of its first request, once read.
    client_id: Mutex<Option<String>>,
    hung: AtomicBool,
    sockets: Vec<TcpStream>,
}

#[derive(Debug, Default)]
struct Shared {
    stopped: AtomicBool,
    connections: Mutex<Vec<Arc<Connection>>>,
}

/// The proxy; stops (closing every connection) on drop.
#[derive(Debug)]
pub struct KafkaProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
}

impl KafkaProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`, a
    /// broker's `host:port` as it advertises itself.
    pub fn start(upstream: &str) -> std::io::Result<Self> {
        let upstream = upstream
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "no upstream address"))?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accepting = Arc::clone(&shared);
        thread::Builder::new()
            .name("kafka-proxy".into())
            .spawn(move || {
                for client in listener.incoming() {
                    if accepting.stopped.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    join(client, upstream, address.port(), &accepting);
                }
            })?;
        Ok(Self { address, shared })
    }

    /// Where clients connect (their `bootstrap.servers`).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Hangs every connection open now whose requests carry `client_id`: from now on nothing
    /// goes either way on them. The client's later connections pass. Returns how many.
    pub fn hang_connections_of(&self, client_id: &str) -> usize {
        let connections = self
            .shared
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut hung = 0;
        for connection in connections.iter() {
            let named = connection
                .client_id
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_deref()
                == Some(client_id);
            if named {
                connection.hung.store(true, Ordering::SeqCst);
                hung += 1;
            }
        }
        hung
    }
}

impl Drop for KafkaProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        for connection in self
            .shared
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            for socket in &connection.sockets {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
        // Wakes the accepting thread so that it sees the stop.
        let _ = TcpStream::connect(self.address);
    }
}

fn join(client: TcpStream, upstream: SocketAddr, own_port: u16, shared: &Arc<Shared>) {
    let Ok(server) = TcpStream::connect(upstream) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(client_read), Ok(server_read), Ok(client_keep), Ok(server_keep)) = (
        client.try_clone(),
        server.try_clone(),
        client.try_clone(),
        server.try_clone(),
    ) else {
        return;
    };
    let connection = Arc::new(Connection {
        client_id: Mutex::new(None),
        hung: AtomicBool::new(false),
        sockets: vec![client_keep, server_keep],
    });
    shared
        .connections
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Arc::clone(&connection));
    let address = address_bytes(upstream, own_port);
    let (requests, answers) = (Arc::clone(&connection), Arc::clone(&connection));
    let (stop_requests, stop_answers) = (Arc::clone(shared), Arc::clone(shared));
    let _ = thread::Builder::new()
        .name("kafka-proxy-requests".into())
        .spawn(move || {
            forward(
                client_read,
                server,
                &requests,
                &stop_requests,
                |frame, connection| {
                    let mut id = connection
                        .client_id
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    if id.is_none() {
                        *id = client_id(frame);
                    }
                },
            );
        });
    let _ = thread::Builder::new()
        .name("kafka-proxy-answers".into())
        .spawn(move || {
            forward(server_read, client, &answers, &stop_answers, |frame, _| {
                if let Some((from, to)) = &address {
                    replace_all(frame, from, to);
                }
            });
        });
}

/// Copies frames from `from` to `to`, each looked at (and maybe changed) by `inspect`
/// first; holds them while the connection is hung.
fn forward(
    mut from: TcpStream,
    mut to: TcpStream,
    connection: &Connection,
    shared: &Shared,
    inspect: impl Fn(&mut Vec<u8>, &Connection),
) {
    loop {
        let mut size = [0u8; 4];
        if from.read_exact(&mut size).is_err() {
            break;
        }
        let length = i32::from_be_bytes(size);
        let Ok(length) = usize::try_from(length) else {
            break;
        };
        if length > MAX_FRAME {
            break;
        }
        let mut frame = vec![0u8; length];
        if from.read_exact(&mut frame).is_err() {
            break;
        }
        inspect(&mut frame, connection);
        while connection.hung.load(Ordering::SeqCst) {
            if shared.stopped.load(Ordering::SeqCst) {
                return;
            }
            thread::sleep(TICK);
        }
        let length = i32::try_from(frame.len()).unwrap_or(i32::MAX);
        if to.write_all(&length.to_be_bytes()).is_err() || to.write_all(&frame).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// The client id of a request frame (request header v1 and v2 both carry it as a
/// non-compact nullable string after api key, version and correlation id).
fn client_id(frame: &[u8]) -> Option<String> {
    let length = i16::from_be_bytes(frame.get(8..10)?.try_into().ok()?);
    let length = usize::try_from(length).ok()?;
    let bytes = frame.get(10..10 + length)?;
    String::from_utf8(bytes.to_vec()).ok()
}

/// The broker's address as answers write it (the host's text, then the port as a 32-bit
/// integer), and the same with the proxy's port.
fn address_bytes(upstream: SocketAddr, own_port: u16) -> Option<(Vec<u8>, Vec<u8>)> {
    let host = match upstream.ip() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(_) => return None,
    };
    let mut from = host.clone().into_bytes();
    from.extend_from_slice(&i32::from(upstream.port()).to_be_bytes());
    let mut to = host.into_bytes();
    to.extend_from_slice(&i32::from(own_port).to_be_bytes());
    Some((from, to))
}

fn replace_all(frame: &mut [u8], from: &[u8], to: &[u8]) {
    debug_assert_eq!(from.len(), to.len());
    let mut at = 0;
    while at + from.len() <= frame.len() {
        if &frame[at..at + from.len()] == from {
            frame[at..at + from.len()].copy_from_slice(to);
            at += from.len();
        } else {
            at += 1;
        }
    }
}
