//! A TCP proxy a test puts between a client and a shared service, to take the service away
//! from that client only: cut (connections closed, new ones refused) or hung (connections
//! accepted, nothing forwarded), and back. The service itself is never touched.
//!
//! ```no_run
//! let proxy = aqs_testkit::FaultProxy::start("127.0.0.1:18123").expect("proxy");
//! let url = format!("http://{}", proxy.address());   // give this to the client
//! proxy.cut();                                       // the service is away
//! proxy.hang();                                      // the service hangs
//! proxy.pass();                                      // back
//! ```

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

const PASS: u8 = 0;
const CUT: u8 = 1;
const HANG: u8 = 2;

/// How often a waiting connection looks at the mode again.
const TICK: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
struct Shared {
    mode: AtomicU8,
    stopped: AtomicBool,
    /// Every socket of a connection still open, to close them at a cut.
    sockets: Mutex<Vec<TcpStream>>,
}

impl Shared {
    fn mode(&self) -> u8 {
        self.mode.load(Ordering::SeqCst)
    }

    fn track(&self, socket: &TcpStream) {
        if let Ok(clone) = socket.try_clone() {
            self.sockets
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(clone);
        }
    }

    fn close_all(&self) {
        let sockets =
            std::mem::take(&mut *self.sockets.lock().unwrap_or_else(PoisonError::into_inner));
        for socket in sockets {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// A proxy on a loopback port of its own, forwarding to one upstream address.
#[derive(Debug)]
pub struct FaultProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Listens on `127.0.0.1:0` and forwards every connection to `upstream`.
    pub fn start(upstream: impl ToSocketAddrs) -> std::io::Result<Self> {
        let upstream = upstream
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "no upstream address"))?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accepting = Arc::clone(&shared);
        thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || accept_loop(&listener, upstream, &accepting))?;
        Ok(Self { address, shared })
    }

    /// Where clients connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Forwards everything (again); connections held by a hang go on.
    pub fn pass(&self) {
        self.shared.mode.store(PASS, Ordering::SeqCst);
    }

    /// The service goes away: open connections are closed, new ones closed at once.
    pub fn cut(&self) {
        self.shared.mode.store(CUT, Ordering::SeqCst);
        self.shared.close_all();
    }

    /// The service hangs: connections stay open and new ones are accepted, but no byte
    /// goes either way until [`pass`](Self::pass) (or [`cut`](Self::cut)).
    pub fn hang(&self) {
        self.shared.mode.store(HANG, Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.close_all();
        // Wakes the accepting thread so that it sees the stop.
        let _ = TcpStream::connect(self.address);
    }
}

fn accept_loop(listener: &TcpListener, upstream: SocketAddr, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let shared = Arc::clone(shared);
        let _ = thread::Builder::new()
            .name("fault-proxy-conn".into())
            .spawn(move || connect(client, upstream, &shared));
    }
}

/// Holds a new connection while the service hangs, drops it while cut, joins it to the
/// upstream otherwise.
fn connect(client: TcpStream, upstream: SocketAddr, shared: &Arc<Shared>) {
    shared.track(&client);
    loop {
        match shared.mode() {
            CUT => {
                let _ = client.shutdown(Shutdown::Both);
                return;
            }
            HANG => thread::sleep(TICK),
            _ => break,
        }
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
    }
    let Ok(server) = TcpStream::connect(upstream) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    shared.track(&server);
    let (Ok(client_read), Ok(server_read)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let forward = Arc::clone(shared);
    let _ = thread::Builder::new()
        .name("fault-proxy-up".into())
        .spawn(move || pump(client_read, server, &forward));
    pump(server_read, client, shared);
}

/// Copies `from` to `to` while the mode lets it; stops at a cut or when either side ends.
fn pump(mut from: TcpStream, mut to: TcpStream, shared: &Shared) {
    let _ = from.set_read_timeout(Some(TICK));
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        match shared.mode() {
            CUT => break,
            HANG => {
                // Nothing read: the bytes wait in the kernel until the service is back.
                thread::sleep(TICK);
                continue;
            }
            _ => {}
        }
        match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => {
                if shared.mode() == CUT || to.write_all(&buffer[..read]).is_err() {
                    break;
                }
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that answers each line with the same line.
    fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || {
                    let mut stream = stream;
                    let mut buffer = [0_u8; 256];
                    while let Ok(read) = stream.read(&mut buffer) {
                        if read == 0 || stream.write_all(&buffer[..read]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        address
    }

    fn round_trip(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
        stream.write_all(b"ping")?;
        let mut answer = [0_u8; 4];
        stream.read_exact(&mut answer)?;
        Ok(answer.to_vec())
    }

    #[test]
    fn the_proxy_forwards_cuts_hangs_and_comes_back() {
        let proxy = FaultProxy::start(echo()).expect("proxy");
        let mut stream = TcpStream::connect(proxy.address()).expect("connect");
        assert_eq!(round_trip(&mut stream).expect("forwarded"), b"ping");

        proxy.cut();
        assert!(
            round_trip(&mut stream).is_err(),
            "an open connection is closed"
        );
        let mut fresh = TcpStream::connect(proxy.address()).expect("accepted");
        assert!(
            round_trip(&mut fresh).is_err(),
            "a new one is closed at once"
        );

        proxy.hang();
        let mut hung = TcpStream::connect(proxy.address()).expect("accepted");
        hung.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let error = round_trip(&mut hung).expect_err("no answer while hung");
        assert!(matches!(
            error.kind(),
            ErrorKind::WouldBlock | ErrorKind::TimedOut
        ));

        proxy.pass();
        hung.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut answer = [0_u8; 4];
        hung.read_exact(&mut answer)
            .expect("the held request goes on");
        assert_eq!(&answer, b"ping");
        let mut again = TcpStream::connect(proxy.address()).expect("connect");
        assert_eq!(round_trip(&mut again).expect("forwarded"), b"ping");
    }
}
