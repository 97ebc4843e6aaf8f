use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use aqs_schemas::schema::{all_schema_documents, render_document};

#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Write every schema document into this folder instead of printing the event schema.
    #[arg(long, value_name = "DIR")]
    write: Option<PathBuf>,
}

pub fn run(args: SchemaArgs) -> anyhow::Result<ExitCode> {
    let documents = all_schema_documents();
    match args.write {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for (name, document) in &documents {
                let path = dir.join(name);
                std::fs::write(&path, render_document(document))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            eprintln!(
                "wrote {} schema documents to {}",
                documents.len(),
                dir.display()
            );
        }
        None => {
            let bundle: serde_json::Map<String, serde_json::Value> =
                documents.into_iter().collect();
            println!("{}", serde_json::to_string_pretty(&bundle)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
