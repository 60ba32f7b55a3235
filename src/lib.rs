//! keydates: plans and sends the dated emails that follow an Ofsted inspection
//! of a local authority's children's services.
//!
//! One direction of flow: records -> plan -> outbox -> mail. The planner is a
//! pure function; the database, the mail server and signals live around it.

pub mod agenda;
pub mod annex;
pub mod audit;
pub mod calendar;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod db;
pub mod db_copy;
pub mod deliver;
pub mod demo;
pub mod domain;
pub mod health;
pub mod ics;
pub mod mail;
pub mod metrics;
pub mod offset;
pub mod outbox;
pub mod plan;
pub mod records;
pub mod relay;
pub mod rules;
pub mod sample;
pub mod state;
pub mod telemetry;
pub mod templates;
pub mod web;
