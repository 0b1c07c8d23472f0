//! `holdless`: run the server, or check a configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use holdless::config::{Config, ConfigError};

/// mimalloc: the SIP engine allocates per message, and glibc's allocator showed in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "holdless",
    version,
    about = "SIP callback server for contact centers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve until SIGINT or SIGTERM.
    Run {
        /// Configuration file.
        #[arg(long, default_value = "configs/holdless.toml")]
        config: PathBuf,
    },
    /// Validate a configuration file: exit 0, or print every error and exit 1.
    CheckConfig {
        /// Configuration file.
        path: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { path } => match Config::load(&path) {
            Ok(cfg) => {
                if let Some(files) = &cfg.sip.tls_files {
                    let now = chrono::Utc::now().timestamp();
                    match holdless::tls::TlsContext::load(files, now) {
                        Ok(ctx) => {
                            for w in &ctx.warnings {
                                eprintln!("{}: warning: {w}", path.display());
                            }
                        }
                        Err(e) => {
                            eprintln!("{}: {e}", path.display());
                            return ExitCode::FAILURE;
                        }
                    }
                }
                if cfg.sip.tls_ca.is_some() {
                    let files = cfg.sip.tls_files.as_ref();
                    if let Err(e) = holdless::tls::client_config(files, cfg.sip.tls_ca.as_deref()) {
                        eprintln!("{}: {e}", path.display());
                        return ExitCode::FAILURE;
                    }
                }
                match holdless::call::inbound_targets(&cfg) {
                    Ok(_) => {
                        println!("{}: ok", path.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("{}: {e}", path.display());
                        ExitCode::FAILURE
                    }
                }
            }
            Err(e) => report(e),
        },
        Command::Run { config } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => return report(e),
            };
            init_logging();
            raise_fd_limit();
            match run(cfg) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("holdless: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn report(e: ConfigError) -> ExitCode {
    eprintln!("{e}");
    ExitCode::FAILURE
}

/// Every bridged call holds four media sockets: lift the soft open-files limit to the hard
/// one (a service's soft limit is often 1024, which would cap it at ~250 calls).
fn raise_fd_limit() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0;
    if ok && r.rlim_cur < r.rlim_max {
        r.rlim_cur = r.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
            tracing::warn!("could not raise the open-files limit");
        }
    }
    tracing::info!(
        open_files = r.rlim_cur,
        "open-files limit (4 per bridged call)"
    );
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn run(cfg: Config) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        // Calls in progress may go on for `[calls] drain_secs`, then are hung up (up to
        // DRAIN_DEADLINE): the process waits for all of it.
        let drain = cfg.calls.drain;
        let mut server = tokio::spawn(holdless::runtime::serve(cfg, stop_rx));
        tokio::select! {
            r = &mut server => return r?.map_err(anyhow::Error::from),
            _ = shutdown_signal() => {}
        }
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
        let grace = drain + holdless::runtime::DRAIN_DEADLINE + std::time::Duration::from_secs(5);
        if let Ok(r) = tokio::time::timeout(grace, server).await {
            r?.map_err(anyhow::Error::from)?;
        }
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
