//! The `tickflow` binary: parses arguments, sets up logging, calls the library, maps errors
//! to an exit code.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tickflow::cluster::{self, Output};
use tickflow::config::Config;

#[derive(Parser)]
#[command(name = "tickflow", version, about = "Real-time market analytics on timely dataflow")]
struct Cli {
    /// Log lines as `text` (coloured only on a terminal, never with `NO_COLOR`) or `json`
    /// (one object per line). The level comes from `RUST_LOG` (default `info`).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: tickflow::cli::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start process N of the cluster described in a config file.
    Run {
        /// The cluster config.
        #[arg(long, default_value = "cluster.toml")]
        config: PathBuf,
        /// Which process of `cluster.processes` this is.
        #[arg(long, default_value_t = 0)]
        process: usize,
        /// Ignore existing checkpoints: start from the source's configured start.
        #[arg(long, conflicts_with = "from_checkpoint")]
        fresh: bool,
        /// Resume from this checkpoint (an id from `tickflow checkpoints list`) instead of
        /// the newest complete one.
        #[arg(long, value_name = "ID")]
        from_checkpoint: Option<u64>,
    },
    /// One-shot back-test: files → the same dataflow → one output file; exits when done.
    Replay {
        /// Input files (NDJSON or CSV), repeatable.
        #[arg(long = "input", required = true)]
        inputs: Vec<PathBuf>,
        /// Output file: `.csv` or `.ndjson` (`.jsonl`, `.json`). Candles, signal changes, late
        /// bars and dead letters go to `<FILE>.d/`. With several workers, each worker's rows
        /// come in blocks of about 1 MiB (each symbol's in event-time order); `--sorted` orders them.
        #[arg(long)]
        output: PathBuf,
        /// Sort the output file by event time, then symbol (for diffing runs of other shapes).
        #[arg(long)]
        sorted: bool,
        /// The unit of `ts` in the results (`output.ts-unit`): input (the input's own unit,
        /// the default), s, ms or rfc3339.
        #[arg(long, value_parser = ["input", "s", "ms", "rfc3339"])]
        ts_unit: Option<String>,
        /// The symbol of CSV inputs without a symbol column.
        #[arg(long)]
        symbol: Option<String>,
        /// Worker threads.
        #[arg(long)]
        workers: Option<usize>,
        /// Replay at this many bars per second (default: as fast as possible).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Take indicators, rules, windows and time settings from this config.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Serve POST /ingest: validate bars and produce them to Kafka.
    Gateway(tickflow::gateway::GatewayArgs),
    /// A synthetic market to the gateway, Kafka, a file or stdout.
    Generate(tickflow::generate::GenerateArgs),
    /// Poll an exchange's OHLC API (Nobitex, Alpha Vantage) and produce its closed bars to Kafka.
    Connect(tickflow::connectors::ConnectorArgs),
    /// Check a config file and print every problem.
    Check {
        /// The cluster config.
        #[arg(long, default_value = "cluster.toml")]
        config: PathBuf,
        /// Print only the number of processes (for scripts).
        #[arg(long)]
        processes: bool,
    },
    /// Print the status of every process of the cluster (from their /status endpoints).
    Status {
        /// The cluster config.
        #[arg(long, default_value = "cluster.toml")]
        config: PathBuf,
    },
    /// A live view of every process and worker: rates, lags, sink backlog, busy (q quits).
    Top(tickflow::top::TopArgs),
    /// List the checkpoints in the checkpoint store, or show one.
    Checkpoints(tickflow::checkpoint::cli::CheckpointsArgs),
}

fn load(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    match path {
        None => Ok(Config::parse("")?),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| tickflow::cli::UsageError(format!("--config {}: {e}", p.display())))?;
            // Keeps the error's type (exit code 2) under the file name.
            Ok(Config::parse(&text).map_err(anyhow::Error::new).with_context(|| p.display().to_string())?)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tickflow::cli::init_logging(cli.log_format);
    match real_main(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = tickflow::cli::exit_code(&e);
            if let Some(e) = e.downcast_ref::<tickflow::checkpoint::cli::CheckpointsError>() {
                eprintln!("tickflow checkpoints: {e}");
            } else {
                eprintln!("tickflow: {}", tickflow::cli::error_text(&e));
            }
            ExitCode::from(code)
        }
    }
}

/// Ctrl-C or SIGTERM: a run takes a savepoint and exits (without checkpoints: its sources
/// stop and the dataflow drains); connectors stop polling.
fn stop_on_signal(control: std::sync::Arc<tickflow::recovery::RunControl>) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                let Ok(mut term) = signal(SignalKind::terminate()) else { return };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
        });
        tracing::info!("stopping: taking a savepoint (or draining, without checkpoints)");
        control.request_stop();
        tickflow::connectors::STOP.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

fn real_main(command: Command) -> anyhow::Result<()> {
    let control = tickflow::recovery::RunControl::new();
    // `top` ends on its own keys (or the default signal action); the others stop gracefully.
    if !matches!(command, Command::Top(_)) {
        stop_on_signal(control.clone());
    }
    match command {
        Command::Check { config, processes } => {
            let built = load(Some(&config))?.build()?;
            if processes {
                println!("{}", built.processes.len());
            } else {
                println!(
                    "{}: ok ({} process(es) x {} worker(s); status on {} ..)",
                    config.display(),
                    built.processes.len(),
                    built.workers,
                    built.status_addr(0)
                );
            }
            Ok(())
        }
        Command::Gateway(args) => tickflow::gateway::run_gateway(args),
        Command::Generate(args) => tickflow::generate::run_generate(args),
        Command::Connect(args) => tickflow::connectors::run_connector(args),
        Command::Checkpoints(args) => {
            Ok(tickflow::checkpoint::cli::run_checkpoints(args, &mut std::io::stdout().lock())?)
        }
        Command::Top(args) => Ok(tickflow::top::run_top(args)?),
        Command::Status { config } => {
            let cfg = load(Some(&config))?;
            let built = cfg.build()?;
            let bad = tickflow::status_cli::print_status(&built, tickflow::status_cli::read_token(Some(&cfg)));
            if bad > 0 {
                anyhow::bail!("{bad} process(es) down or not ready");
            }
            Ok(())
        }
        Command::Run { config, process, fresh, from_checkpoint } => {
            let built = load(Some(&config))?.build()?;
            if process >= built.processes.len() {
                anyhow::bail!(
                    "--process {process}: the config has {} process(es) (0..{})",
                    built.processes.len(),
                    built.processes.len()
                );
            }
            tracing::info!(process, processes = built.processes.len(), workers = built.workers, "starting");
            let started = Instant::now();
            let resume = match (fresh, from_checkpoint) {
                (true, _) => tickflow::recovery::Resume::Fresh,
                (false, Some(id)) => tickflow::recovery::Resume::From(id),
                (false, None) => tickflow::recovery::Resume::Latest,
            };
            let opts = cluster::RunOptions { resume, control, progress: std::io::stderr().is_terminal() };
            let totals = cluster::run(built, process, Output::Configured, opts)?;
            report(&totals, started);
            Ok(())
        }
        Command::Replay { inputs, output, sorted, ts_unit, symbol, workers, config, rate } => {
            // Usage mistakes are reported before anything starts or is created.
            tickflow::cli::check_replay_paths(&inputs, &output)?;
            let mut cfg = load(config.as_ref())?;
            cfg.source.kind = "file".into();
            cfg.source.file.paths = inputs.iter().map(|p| p.display().to_string()).collect();
            cfg.source.file.symbol = symbol.clone();
            cfg.source.file.rate = rate;
            cfg.cluster.processes = vec!["127.0.0.1:2101".into()];
            cfg.cluster.workers = workers.unwrap_or(1);
            if let Some(f) = cfg.sinks.file.as_mut() {
                // The results go to --output; `[sinks.file]` only chooses columns here.
                f.dir.get_or_insert_with(|| tickflow::cluster::part_dir(&output).display().to_string());
            }
            if let Some(unit) = ts_unit {
                cfg.output.ts_unit = unit;
            }
            let built = cfg.build()?;
            let started = Instant::now();
            let opts = cluster::RunOptions {
                resume: tickflow::recovery::Resume::Fresh,
                control,
                progress: std::io::stderr().is_terminal(),
            };
            let totals = cluster::run(built, 0, Output::Replay(output.clone()), opts)?;
            if sorted {
                tickflow::sinks::sort::sort_rows(&output)
                    .map_err(|e| anyhow::anyhow!("sorting {}: {e}", output.display()))?;
            }
            report(&totals, started);
            Ok(())
        }
    }
}

fn report(t: &cluster::Totals, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "bars in {}, bars out {}, candles {}, signal changes {}, late {}, invalid {}; {secs:.3} s, {:.0} bars/s",
        t.bars_in,
        t.bars_out,
        t.candles_out,
        t.signal_changes,
        t.bars_late,
        t.bars_invalid,
        t.bars_in as f64 / secs.max(1e-9)
    );
}
