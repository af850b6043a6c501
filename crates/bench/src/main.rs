//! `siemgate-bench`: measurements anyone can rerun with one command.
//!
//! Every figure is printed beside a baseline measured in the same run, on the
//! same rows, interleaved with it where possible, so that a noisy shared
//! machine moves both alike and the ratio stays meaningful.

mod api;
mod backends;
mod pull;
mod report;
mod store;
mod tokens;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "siemgate-bench", about = "Benchmarks of siemgate, each beside its baseline")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// The store: ingest, newest-20 latency, window streaming and its memory.
    Store(store::StoreBench),
    /// The SIEM API over HTTP: requests/s beside nginx, a window fetched whole, memory.
    Api(api::ApiBench),
    /// The server the api benchmark starts in a process of its own.
    #[command(hide = true)]
    ApiServer(api::ServerArgs),
    /// The puller: a window pulled into an NDJSON file beside curl, and its memory.
    Pull(pull::PullBench),
    /// The puller the pull benchmark starts in a process of its own.
    #[command(hide = true)]
    PullClient(pull::ClientArgs),
    /// Bearer-token checks: a token's first presentation and its repeats.
    Tokens(tokens::TokensBench),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let passed = match cli.bench {
        Bench::Store(args) => runtime.block_on(store::run(args))?,
        Bench::Api(args) => runtime.block_on(api::run(args))?,
        Bench::ApiServer(args) => runtime.block_on(api::serve(args)).map(|()| true)?,
        Bench::Pull(args) => runtime.block_on(pull::run(args))?,
        Bench::PullClient(args) => runtime.block_on(pull::client(args)).map(|()| true)?,
        Bench::Tokens(args) => tokens::run(args)?,
    };
    // A missed floor is a result, not a crash; the exit code lets scripts notice it.
    if !passed {
        std::process::exit(1);
    }
    Ok(())
}
