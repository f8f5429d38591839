//! Hostile clients against `firebreak serve`'s surface: slow and idle connections, too many of
//! them, replays, strangers from other workspaces and guilds, and input that once panicked.

mod server_limits;
