//! The world of the whole-client simulation (see `client_simulation.rs`): devices with a shared
//! storage and their tabs, each tab a page with one or two copies of the package, and the
//! backend model; every input reaches a [`Client`] at a time of the manual clock.
pub mod backend;
pub mod world;

#[path = "../support/rng.rs"]
mod rng;
pub use rng::Rng;
