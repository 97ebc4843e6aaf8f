//! Child processes of the scenarios: free ports to give them, and stopping them cleanly.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A loopback address with a port free at the time of asking.
pub fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Asks `child` to stop (SIGTERM), so it can finish what it is writing.
pub fn ask_to_stop(child: &Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
}

/// Waits up to `grace` for `child` to exit, then kills it.
pub fn wait_or_kill(child: &mut Child, grace: Duration) {
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}
