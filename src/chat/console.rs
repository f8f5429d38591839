//! The console adapter: one command per line on stdin (a terminal or a pipe), rendered replies
//! on stdout. Like Errbot's text backend: try Firebreak without any chat workspace.

use std::io::Write;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::{ChannelRef, Invocation, Platform, UserRef};
use crate::bot::Bot;
use crate::render::{Delivery, Effect, Reply, text};

/// The console's identity: who is typing, and the pseudo-channel replies go to.
#[derive(Debug, Clone)]
pub struct Console {
    user: UserRef,
    channel: ChannelRef,
}

impl Console {
    /// A console session typing as `user`.
    pub fn new(user: &str) -> Console {
        Console {
            user: UserRef {
                id: user.to_string(),
                name: user.to_string(),
            },
            channel: ChannelRef {
                id: "console".to_string(),
            },
        }
    }

    /// Read commands from `input` until it ends or `/quit`; write each reply to `out`.
    /// With `interactive`, show a prompt.
    pub async fn run<R, W>(
        &self,
        bot: &Bot,
        input: R,
        out: &mut W,
        interactive: bool,
    ) -> std::io::Result<()>
    where
        R: AsyncBufRead + Unpin,
        W: Write,
    {
        let mut lines = input.lines();
        let mut user = self.user.clone();
        loop {
            if interactive {
                let incident = bot
                    .store()
                    .incident_in(Platform::Console.as_str(), &self.channel.id)
                    .await
                    .ok()
                    .flatten();
                match incident {
                    Some(incident) => write!(out, "firebreak [{}] ({})> ", incident.id, user.name)?,
                    None => write!(out, "firebreak ({})> ", user.name)?,
                }
                out.flush()?;
            }
            let Some(line) = lines.next_line().await? else {
                break;
            };
            let line = line.trim();
            // Blank lines and `#` comments let scripts piped into the console be readable.
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if matches!(line, "/quit" | "/exit" | "quit" | "exit") {
                break;
            }
            // `/as bob`: the console has no login, so switching identity is how one terminal
            // plays requester and approver to try the two-person rule.
            if let Some(name) = line
                .strip_prefix("/as")
                .filter(|r| r.is_empty() || r.starts_with(' '))
            {
                match name.trim() {
                    "" => writeln!(out, "You are {}. `/as NAME` switches.", user.name)?,
                    name if name.contains(char::is_whitespace) => {
                        writeln!(out, "`/as` takes one name, e.g. `/as bob`")?
                    }
                    name => {
                        user = UserRef {
                            id: name.to_string(),
                            name: name.to_string(),
                        };
                        writeln!(out, "You are now {name}.")?;
                    }
                }
                out.flush()?;
                continue;
            }
            let reply = match Invocation::from_text(
                Platform::Console,
                user.clone(),
                self.channel.clone(),
                line,
            ) {
                Ok(inv) => bot.handle(&inv, &|_| {}).await,
                Err(error) => {
                    let inv = Invocation::from_text(
                        Platform::Console,
                        user.clone(),
                        self.channel.clone(),
                        "/help",
                    )
                    .ok();
                    writeln!(out, "cannot read that command: {error}")?;
                    match inv {
                        Some(inv) => bot.handle(&inv, &|_| {}).await,
                        None => continue,
                    }
                }
            };
            if reply.delivery == Delivery::Ephemeral {
                writeln!(out, "(only you see this)")?;
            }
            writeln!(out, "{}", text::render(&reply))?;
            for effect in &reply.effects {
                // The console is one channel: a dedicated incident channel is the prompt's
                // label, and the summary is the reply itself; files are printed.
                if let Effect::Attach { filename, content } = effect {
                    writeln!(
                        out,
                        "--- attached: {filename} ---\n{content}\n--- end of {filename} ---"
                    )?;
                }
            }
            out.flush()?;
        }
        Ok(())
    }
}

/// The console as an [`super::Outbox`]: unprompted messages (an alert-opened incident) are
/// printed to `out` with a line saying what they are; updates are printed again, marked.
pub struct ConsoleOutbox<W> {
    out: std::sync::Mutex<W>,
    posted: std::sync::atomic::AtomicU64,
}

impl<W: Write + Send> ConsoleOutbox<W> {
    /// An outbox writing to `out`.
    pub fn new(out: W) -> ConsoleOutbox<W> {
        ConsoleOutbox {
            out: std::sync::Mutex::new(out),
            posted: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn write(&self, header: &str, reply: &Reply) -> Result<(), super::OutboxError> {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        writeln!(out, "{header}\n{}", text::render(reply))
            .and_then(|()| out.flush())
            .map_err(|error| super::OutboxError {
                platform: Platform::Console,
                message: error.to_string(),
            })
    }
}

impl<W: Write + Send> super::Outbox for ConsoleOutbox<W> {
    fn platform(&self) -> Platform {
        Platform::Console
    }

    fn post<'a>(
        &'a self,
        channel: &'a str,
        reply: &'a Reply,
    ) -> futures::future::BoxFuture<'a, Result<String, super::OutboxError>> {
        Box::pin(async move {
            let id = self
                .posted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1;
            self.write(&format!("--- message {id} in #{channel} ---"), reply)?;
            Ok(id.to_string())
        })
    }

    fn update<'a>(
        &'a self,
        channel: &'a str,
        message: &'a str,
        reply: &'a Reply,
    ) -> futures::future::BoxFuture<'a, Result<(), super::OutboxError>> {
        Box::pin(async move {
            self.write(
                &format!("--- message {message} in #{channel}, updated ---"),
                reply,
            )
        })
    }
}
