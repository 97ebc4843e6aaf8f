use std::collections::HashSet;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use aqs_ingest::ndjson;
use aqs_schemas::Decoder;

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// NDJSON file of events; `-` reads standard input.
    file: PathBuf,
    /// Print each rejected line as a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let reader: Box<dyn std::io::BufRead> = if args.file.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(&args.file)
            .with_context(|| format!("opening {}", args.file.display()))?;
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let (mut valid, mut rejected, mut repeated) = (0_u64, 0_u64, 0_u64);
    let mut seen_ids = HashSet::new();
    for line in ndjson::lines(reader, Decoder::standard()) {
        let line = line?;
        match line.outcome {
            Ok(event) => {
                valid += 1;
                if !seen_ids.insert(event.event_id) {
                    repeated += 1;
                }
            }
            Err(rejection) => {
                rejected += 1;
                if args.json {
                    let report = serde_json::json!({ "line": line.number, "rejection": rejection });
                    println!("{report}");
                } else {
                    println!("line {}: {rejection}", line.number);
                }
            }
        }
    }
    eprintln!("{valid} valid ({repeated} repeating an earlier event_id), {rejected} rejected");
    Ok(if rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
