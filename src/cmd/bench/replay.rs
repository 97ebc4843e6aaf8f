//! Projector replay from the embedded log, beside merely reading and decoding it.

use std::path::Path;
use std::process::ExitCode;

use super::{machine, prepare, run_child};

pub fn replay(work: &Path, sizes: &[u64]) -> anyhow::Result<ExitCode> {
    println!("Projector replay from the embedded log — {}\n", machine());
    println!(
        "| events | append (events/s) | read + decode (events/s, the limit) | replay (events/s) | replay / limit | replay peak RSS (MiB) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for &size in sizes {
        let days = 30;
        let agents = (size / (5 * u64::from(days))).max(10) as u32;
        let dir = work.join(format!("replay-{size}"));
        let (events, append_rate) = prepare(&dir, agents, days)?;
        let decode = run_child("decode", &dir, None)?;
        let project = run_child("project", &dir, None)?;
        let limit = decode.items as f64 / decode.seconds;
        let rate = project.items as f64 / project.seconds;
        println!(
            "| {events} | {append_rate:.0} | {limit:.0} | {rate:.0} | {:.2} | {:.0} |",
            rate / limit,
            project.peak_rss_mib
        );
    }
    Ok(ExitCode::SUCCESS)
}
