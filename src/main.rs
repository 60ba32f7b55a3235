use std::process::ExitCode;

use clap::Parser;
use keydates::cli::Cli;
use keydates::config::Settings;

#[tokio::main]
async fn main() -> ExitCode {
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
