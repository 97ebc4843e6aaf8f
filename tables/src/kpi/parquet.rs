//! The KPI table as Parquet files: one file per run, replaced atomically.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;

use super::{KpiSink, KpiTableError};

/// The KPIs as one Parquet file, replaced atomically.
#[derive(Debug, Clone)]
pub struct ParquetKpiSink {
    path: PathBuf,
}

impl ParquetKpiSink {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl KpiSink for ParquetKpiSink {
    fn write(&mut self, kpis: &mut DataFrame, _as_of: NaiveDate) -> Result<(), KpiTableError> {
        write_parquet(kpis, &self.path)
    }

    fn target(&self) -> String {
        self.path.display().to_string()
    }
}

/// Writes `frame` to `path` atomically: readers see the old file or the new one, never half.
pub fn write_parquet(frame: &mut DataFrame, path: &Path) -> Result<(), KpiTableError> {
    let io = |source| KpiTableError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let partial = path.with_extension("parquet.partial");
    let file = std::fs::File::create(&partial).map_err(io)?;
    ParquetWriter::new(file)
        .finish(frame)
        .map_err(|source| KpiTableError::Parquet {
            path: path.to_path_buf(),
            source,
        })?;
    std::fs::rename(&partial, path).map_err(io)?;
    Ok(())
}
