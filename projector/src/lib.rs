//! See README.md: this crate is being built up; it holds no logic yet.
