//! Where the `aqs` binary is: the bench runs the services it measures end to end (`aqs up`,
//! `aqs projector`) as the shipped binary, in processes of their own.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Names the `aqs` binary to run; unset, the one beside this executable is run.
pub const AQS_BIN: &str = "AQS_BIN";

/// The `aqs` binary: `AQS_BIN` when set, else `aqs` in this executable's folder (both are
/// built into `target/<profile>/`). Fails with what to do when it is not there.
pub fn aqs_binary() -> anyhow::Result<PathBuf> {
    let own = std::env::current_exe().context("locating the aqs-bench executable")?;
    locate(std::env::var_os(AQS_BIN).map(PathBuf::from), &own)
}

fn locate(configured: Option<PathBuf>, own: &Path) -> anyhow::Result<PathBuf> {
    if let Some(path) = configured.filter(|path| !path.as_os_str().is_empty()) {
        anyhow::ensure!(
            path.is_file(),
            "{AQS_BIN} names {}, which is not a file: point it at a built aqs binary",
            path.display()
        );
        return Ok(path);
    }
    let folder = own.parent().unwrap_or(Path::new("."));
    let beside = folder.join(format!("aqs{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        beside.is_file(),
        "no aqs binary at {}: this benchmark runs aqs itself. Build it with the same profile \
         (`cargo build --release -p aqs -p aqs-bench`) or set {AQS_BIN} to an aqs binary",
        beside.display()
    );
    Ok(beside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_beside_this_one_is_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let aqs = dir
            .path()
            .join(format!("aqs{}", std::env::consts::EXE_SUFFIX));
        std::fs::write(&aqs, b"").expect("write");
        let found = locate(None, &dir.path().join("aqs-bench")).expect("found");
        assert_eq!(found, aqs);
    }

    #[test]
    fn aqs_bin_wins_over_the_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let chosen = dir.path().join("my-aqs");
        std::fs::write(&chosen, b"").expect("write");
        let found = locate(Some(chosen.clone()), Path::new("/nowhere/aqs-bench")).expect("found");
        assert_eq!(found, chosen);
    }

    #[test]
    fn a_missing_binary_says_how_to_build_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = locate(None, &dir.path().join("aqs-bench"))
            .expect_err("nothing there")
            .to_string();
        assert!(
            error.contains("cargo build --release -p aqs -p aqs-bench"),
            "{error}"
        );
        assert!(error.contains("AQS_BIN"), "{error}");

        let error = locate(Some(dir.path().join("absent")), Path::new("/x/aqs-bench"))
            .expect_err("AQS_BIN names nothing")
            .to_string();
        assert!(error.contains("AQS_BIN names"), "{error}");
    }
}
