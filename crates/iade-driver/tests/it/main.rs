//! The driver without the CLI.
