use std::process::ExitCode;

use clap::Parser;
use keydates::cli::Cli;
use keydates::config::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    // A reader that stops early (`keydates agenda | head`) ends the output
    // quietly, as for any command-line tool, instead of a panic.
    // SAFETY: restoring a signal's default disposition at start, before any thread reads it.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
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
    keydates::telemetry::init(&settings.log.level, format);
    match keydates::commands::run(cli, settings).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", keydates::db::explain(&e).replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
