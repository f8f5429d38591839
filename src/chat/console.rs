//! The console adapter: one command per line on stdin (a terminal or a pipe), rendered replies
//! on stdout. Like Errbot's text backend: try Firebreak without any chat workspace.

use std::io::Write;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::{ChannelRef, Invocation, Platform, UserRef};
use crate::bot::Bot;
use crate::render::{Delivery, text};

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
                write!(out, "firebreak ({})> ", user.name)?;
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
            out.flush()?;
        }
        Ok(())
    }
}
