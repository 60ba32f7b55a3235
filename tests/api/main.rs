//! One integration-test binary: the real keydates binary, real SQLite files,
//! and a real SMTP server on 127.0.0.1.

mod accessible;
mod calendars;
mod commands;
mod config;
mod console;
mod daemon;
mod delivery;
mod demo;
mod documents;
mod exposure;
mod forms;
mod handbooks;
mod helpers;
mod import;
mod instances;
mod mail;
mod pg;
mod planning;
mod postfix;
mod properties;
mod relay;
mod relays;
mod safety;
mod schema;
mod smtp;
mod systemd;
mod truth;
