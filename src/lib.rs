//! wbl: W&B and other HTTPS API keys kept in the OS keychain and served by a per-user agent.
//!
//! The library holds everything the two binaries share; see ARCHITECTURE.md for the map.
//!
//! `unsafe` lives in [`sys`] alone: denied everywhere else.

#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod accesslog;
pub mod account;
pub mod agent;
pub mod cli;
pub mod client;
pub mod cmd;
pub mod config;
pub mod dirs;
pub mod docker;
pub mod docker_auth;
pub mod doctor;
pub mod duration;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub mod entry;
pub mod git;
pub mod grant;
pub mod keychain;
pub mod logging;
pub mod openbao;
pub mod ownership;
pub mod private_dir;
pub mod rendezvous;
pub mod scan;
pub mod service;
pub mod shell;
pub mod sys;
pub mod term;
pub mod text;
pub mod wandb;
