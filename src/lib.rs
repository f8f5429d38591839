//! Firebreak: ChatOps incident response for production AI/LLM serving.
//!
//! The core (routing, runbooks, rendering) knows no chat platform; adapters in [`chat`]
//! translate platform events into an [`chat::Invocation`] and render a [`render::Reply`] back.

pub mod sim;
