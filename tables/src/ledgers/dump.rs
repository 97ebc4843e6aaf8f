//! The canonical dump of a ledger store: every live row of every table as text, sorted by
//! key, versions and tombstone flags left out. Two stores holding the same ledgers give the
//! same text, whatever their engine, because both print the rows through [`LedgerRow::values`].

use std::fmt::Write;

use rusqlite::types::Value;

use super::LedgerRow;

/// A value of a dumped row.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell(pub Value);

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Value::Null => f.write_str("NULL"),
            Value::Integer(value) => write!(f, "{value}"),
            Value::Real(value) => write!(f, "{value:?}"),
            Value::Text(text) => write!(f, "{text:?}"),
            Value::Blob(bytes) => write!(f, "{bytes:?}"),
        }
    }
}

/// Columns a dump leaves out: the version, and the flag that is 0 on every live row.
const LEFT_OUT: [&str; 2] = ["ver", "deleted"];

/// Appends `T`'s section to `out`: its name, then its `rows` (live, in key order), one a line.
pub(crate) fn dump_table<T: LedgerRow>(out: &mut String, rows: &[T]) {
    let keep: Vec<bool> = T::COLUMNS
        .split(',')
        .map(|column| !LEFT_OUT.contains(&column.trim()))
        .collect();
    let _ = writeln!(out, "## {}", T::TABLE);
    for row in rows {
        let cells: Vec<String> = row
            .values()
            .into_iter()
            .zip(&keep)
            .filter(|(_, keep)| **keep)
            .map(|(value, _)| Cell(value).to_string())
            .collect();
        let _ = writeln!(out, "{}", cells.join("|"));
    }
}
