//! What the inbox functions share: domain types, the single-table store and its keys, the token vault,
//! the queue publisher, configuration and telemetry.

pub mod aws;
pub mod clock;
pub mod config;
pub mod http_response;
pub mod https;
pub mod identity;
pub mod ids;
pub mod jobs;
pub mod keys;
pub mod lambda;
pub mod llm;
pub mod model;
pub mod platform;
pub mod provision;
pub mod queue;
pub mod runner;
pub mod secret;
pub mod service;
pub mod single_flight;
pub mod store;
pub mod sweep;
pub mod telemetry;
pub mod vault;
