//! The end-to-end tests, one module per area, in one test binary with one harness
//! (`common`): each test gets a throwaway host of its own (private mount, network,
//! pid and uts namespaces, overlays on /etc and /var, Postfix as the package ships
//! it) and drives the real Postfix through the real instancectl binary.
//!
//! Run one area with `cargo test --test e2e status::`, one test by its name.

mod common;

mod apply;
mod day2;
mod launchd;
mod lifecycle;
mod macos_admin;
mod output;
mod postfix32;
mod reconcile;
mod relay;
mod scale;
mod status;
mod supervise;
mod supervise_systemd;
mod systemd;
