//! A generated stretch of events, decoded as the projector reads them, each with the digest
//! of its line.

use aqs_projector::ledger::digest;
use aqs_schemas::generator::{GeneratorConfig, generate};
use aqs_schemas::{Decoder, Event};

pub fn generated(config: &GeneratorConfig) -> Vec<(Event, u64)> {
    let mut bytes = Vec::new();
    generate(config, &mut bytes).expect("generate");
    bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            (
                Decoder::standard().decode(line).expect("valid"),
                digest(line),
            )
        })
        .collect()
}
