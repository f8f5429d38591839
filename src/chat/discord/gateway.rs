//! Gateway mode: serenity holds the websocket (identify, heartbeats, resumes and reconnects
//! are its job); each INTERACTION_CREATE goes through [`Discord::dispatch`], whose immediate
//! response is POSTed to the interaction callback endpoint.

use std::sync::Arc;

use serenity::all::{
    ClientBuilder, Context, EventHandler, GatewayIntents, HttpBuilder, Interaction, Ready,
};
use serenity::gateway::ShardManager;

use super::{DEFAULT_API_URL, Discord, DiscordError};

struct Handler {
    discord: Arc<Discord>,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _: Context, ready: Ready) {
        tracing::info!(user = %ready.user.name, "Discord gateway ready");
    }

    async fn interaction_create(&self, _: Context, interaction: Interaction) {
        let id = interaction.id().get();
        let token = interaction.token().to_string();
        let dispatch = self.discord.answer(interaction).await;
        match self
            .discord
            .api()
            .callback(id, &token, &dispatch.response)
            .await
        {
            Ok(()) => {
                if let Some(job) = dispatch.job {
                    job.spawn();
                }
            }
            Err(error) => {
                tracing::error!(%error, "cannot answer a Discord interaction; the user sees \"interaction failed\"");
            }
        }
    }
}

/// A running gateway connection.
pub struct Gateway {
    shards: Arc<ShardManager>,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Close the connection and wait for the client to stop.
    pub async fn shutdown(self) {
        self.shards.shutdown_all().await;
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "the Discord gateway task failed");
        }
    }
}

/// Connect to the gateway and answer interactions until shut down.
pub async fn start(discord: Arc<Discord>) -> Result<Gateway, DiscordError> {
    let settings = discord.settings();
    let mut http = HttpBuilder::new(settings.bot_token.expose())
        .application_id(settings.application_id.into());
    if settings.api_url != DEFAULT_API_URL {
        // serenity's rate limiter builds its requests without the proxy, so with another
        // origin it must be off; Firebreak's own calls handle 429s (see `api`).
        http = http
            .proxy(settings.api_url.clone())
            .ratelimiter_disabled(true);
    }
    // Interactions arrive whatever the intents: no privileged intent is needed.
    let mut client = ClientBuilder::new_with_http(http.build(), GatewayIntents::empty())
        .event_handler(Handler {
            discord: discord.clone(),
        })
        .await
        .map_err(|error| DiscordError::Gateway(Box::new(error)))?;
    let shards = client.shard_manager.clone();
    let task = tokio::spawn(async move {
        if let Err(error) = client.start().await {
            tracing::error!(%error, "the Discord gateway stopped; interactions go unanswered until restart");
        }
    });
    Ok(Gateway { shards, task })
}
