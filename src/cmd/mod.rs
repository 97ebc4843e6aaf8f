//! One module per subcommand: argument parsing and wiring only; the work lives in the crates.

pub mod generate;
pub mod schema;
pub mod validate;
