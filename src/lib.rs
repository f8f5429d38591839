//! Firebreak: ChatOps incident response for production AI/LLM serving.
//!
//! The core ([`bot`], [`command`], [`runbook`], [`render`]) knows no chat platform; adapters in
//! [`chat`] translate platform events into a [`chat::Invocation`] and render a
//! [`render::Reply`] back. [`cluster`] talks to Kubernetes, real or [`sim`]ulated, the same way.

pub mod approval;
pub mod bot;
pub mod chat;
pub mod check;
pub mod cluster;
pub mod command;
pub mod config;
pub mod metrics;
pub mod probe;
pub mod render;
pub mod runbook;
pub mod server;
pub mod sim;
pub mod store;

pub use bot::Bot;

#[cfg(test)]
mod send_sync {
    /// Adapters share one bot across tasks.
    #[test]
    fn bot_is_shareable() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<crate::Bot>();
    }

    /// Adapters spawn `Bot::handle` on tokio's pool: this stops compiling if its future stops
    /// being `Send` (a closure-built stream inside a step is the usual way to break it).
    #[allow(dead_code)]
    fn handle_future_is_send(bot: &'static crate::Bot, inv: &'static crate::chat::Invocation) {
        fn send<T: Send>(_: T) {}
        send(bot.handle(inv, &|_| {}));
    }
}
