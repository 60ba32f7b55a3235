//! keydates: plans and sends the dated emails that follow an Ofsted inspection
//! of a local authority's children's services.
//!
//! One direction of flow, and the folders follow it from the bottom up:
//! domain and calendar, config, db, records -> plan -> outbox (and the
//! agenda drawn from it) -> delivery (compose with annexes, then transport)
//! -> web and service -> commands. The planner and the composer are pure
//! functions of records, rules, calendar and "now"; the database, the mail
//! server, HTTP and signals live around them.

pub mod agenda;
pub mod calendar;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod delivery;
pub mod domain;
pub mod outbox;
pub mod plan;
pub mod records;
pub mod service;
pub mod web;
