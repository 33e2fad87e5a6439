//! Event streams at scale: one store read per change per namespace, shared by every stream that
//! follows it on this instance ([`channel`]), each stream a small body that takes its events from
//! that shared log ([`body`]), every event encoded once ([`sse`]).
pub mod body;
pub mod channel;
pub mod pressure;
pub mod sse;

pub use body::{EventBody, Handoff};
pub use channel::{Channel, Channels};
pub use pressure::Pressure;
