//! `mfe-cache-server`: see the library docs and `--help`.
use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use mfe_cache_server::{run, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    // Logs go to stderr (colour only on a terminal); stdout carries only the `listening on` line.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "server stopped");
            eprintln!("mfe-cache-server: {err}");
            ExitCode::FAILURE
        }
    }
}
