use std::process::ExitCode;

use clap::Parser;
use keydates::cli::Cli;
use keydates::config::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    // SIGPIPE stays ignored, as Rust sets it: a relay or database that
    // closes its socket is an error to handle, never the end of the daemon.
    // Commands print through `commands::out`, which ends quietly when the
    // reader of their output has gone.
    let cli = Cli::parse();
    if let Some(code) = keydates::commands::without_config(&cli) {
        return code;
    }
    let settings = match Settings::load(&cli.config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let format = cli
        .log_format
        .map(Into::into)
        .unwrap_or(settings.log.format);
    keydates::service::telemetry::init(&settings.log.level, format);
    match keydates::commands::run(cli, settings).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", keydates::db::explain(&e).replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
