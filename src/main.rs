//! The `firebreak` binary: the CLI edge, where errors become `anyhow` reports and exit codes.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use firebreak::Bot;
use firebreak::chat::console::Console;
use firebreak::chat::discord::{Discord, DiscordSettings, Mode as DiscordMode};
use firebreak::chat::slack::{Slack, SlackSettings};
use firebreak::cluster::Cluster;
use firebreak::config::{Config, ProcessEnv};
use firebreak::render::Templates;
use firebreak::runbook::Runbooks;
use firebreak::sim::{Scenario, SimServer};
use firebreak::store::Store;
use tokio::io::BufReader;

/// ChatOps incident response for production AI/LLM serving.
#[derive(Parser)]
#[command(name = "firebreak", version, about)]
struct Cli {
    /// Log filter for stderr (tracing's env-filter syntax), e.g. `info` or `firebreak=debug`.
    /// kube's client is silenced by default: every API failure it logs reaches the report.
    #[arg(
        long,
        global = true,
        env = "FIREBREAK_LOG",
        default_value = "warn,kube_client=off"
    )]
    log: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the simulated cluster in-process and a console chat against it.
    Demo {
        /// A shipped scenario name or a path to a scenario file.
        #[arg(long, default_value = "demo")]
        scenario: String,
        #[command(flatten)]
        content: ContentArgs,
    },
    /// A console chat against a real cluster (kubeconfig as kubectl finds it).
    Console {
        /// Kubeconfig to use instead of $KUBECONFIG / ~/.kube/config / in-cluster.
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        #[command(flatten)]
        content: ContentArgs,
    },
    /// Serve the simulated Kubernetes API (kubectl and Firebreak can both talk to it).
    Sim {
        /// A shipped scenario name or a path to a scenario file.
        #[arg(long, default_value = "demo")]
        scenario: String,
        /// Address to listen on (loopback is wise: the simulator has no authentication).
        #[arg(long, default_value = "127.0.0.1:8001")]
        listen: SocketAddr,
        /// Write a kubeconfig pointing at the simulator here.
        #[arg(long)]
        kubeconfig_out: Option<PathBuf>,
    },
    /// Serve the chat platforms configured in the environment (Slack, Discord) over HTTP and
    /// their socket/gateway modes, against a real cluster.
    Serve {
        /// Address for the HTTP endpoints (Slack's request URLs, Discord's interactions URL).
        #[arg(long, env = "FIREBREAK_LISTEN", default_value = "0.0.0.0:8080")]
        listen: SocketAddr,
        /// Kubeconfig to use instead of $KUBECONFIG / ~/.kube/config / in-cluster.
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        #[command(flatten)]
        content: ContentArgs,
    },
    /// Print the audit log: every command, plan, decision and cluster change, in order.
    Audit {
        /// Only this incident's entries.
        #[arg(long)]
        incident: Option<String>,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Validate runbooks and templates; exit 1 with precise messages if any is broken.
    Check {
        /// Runbook files, template files, or directories of either.
        #[arg(default_values = ["runbooks", "templates"])]
        paths: Vec<PathBuf>,
    },
}

/// Where runbooks and templates come from.
#[derive(Args)]
struct ContentArgs {
    /// Runbook directory or file [default: ./runbooks if present, else the built-in ones].
    #[arg(long, env = "FIREBREAK_RUNBOOKS")]
    runbooks: Option<PathBuf>,
    /// Template directory [default: ./templates if present, else the built-in ones].
    #[arg(long, env = "FIREBREAK_TEMPLATES")]
    templates: Option<PathBuf>,
    /// Who the console types as [default: alice in the demo, $USER in the console].
    #[arg(long)]
    user: Option<String>,
    #[command(flatten)]
    state: StateArgs,
}

/// Where settings and state live.
#[derive(Args)]
struct StateArgs {
    /// Config file: approver groups, state path [default: ./firebreak.yaml if present].
    #[arg(long, env = "FIREBREAK_CONFIG")]
    config: Option<PathBuf>,
    /// SQLite state file: approvals, incidents, audit [default: the config's `state`, else
    /// ./firebreak.db; the demo keeps state in memory].
    #[arg(long, env = "FIREBREAK_STATE")]
    state: Option<PathBuf>,
}

/// The demo's approvers, so the two-person rule can be tried with `/as`.
const DEMO_CONFIG: &str = "groups:\n  oncall: [alice, bob, carol]\n";

impl StateArgs {
    fn config(&self, demo: bool) -> anyhow::Result<Config> {
        let path = self
            .config
            .as_deref()
            .or_else(|| Some(Path::new("firebreak.yaml")).filter(|p| p.is_file()));
        Ok(match path {
            Some(path) => Config::load(path)?,
            None if demo => Config::from_yaml(DEMO_CONFIG).map_err(anyhow::Error::msg)?,
            None => Config::default(),
        })
    }

    /// Open the state store and mark actions a previous process left half-done.
    async fn store(&self, config: &Config, demo: bool) -> anyhow::Result<Store> {
        let path = self.state.clone().or_else(|| config.state.clone());
        let store = match path {
            Some(path) => Store::open(&path)?,
            None if demo => Store::in_memory()?,
            None => Store::open(Path::new("firebreak.db"))?,
        };
        for request in store.recover_interrupted().await? {
            tracing::warn!(
                request = %request.id,
                action = %request.action,
                service = %request.service,
                "an approved action was interrupted by a restart; it will not be retried; check the cluster"
            );
        }
        Ok(store)
    }
}

impl ContentArgs {
    /// The bot: content, config, state, over `cluster`.
    async fn bot(&self, cluster: Cluster, demo: bool) -> anyhow::Result<Bot> {
        let (runbooks, templates) = self.load()?;
        let config = self.state.config(demo)?;
        let store = self.state.store(&config, demo).await?;
        Ok(Bot::new(runbooks, templates, cluster, store)
            .with_groups(config.groups)
            .with_postmortem_dir(config.postmortems))
    }

    fn load(&self) -> anyhow::Result<(Runbooks, Templates)> {
        let runbooks = match self.runbooks.as_deref().or_else(|| present("runbooks")) {
            Some(path) => Runbooks::load(path)?,
            None => Runbooks::embedded()?,
        };
        let templates = match self.templates.as_deref().or_else(|| present("templates")) {
            Some(path) => Templates::load_dir(path)?,
            None => Templates::embedded()?,
        };
        tracing::info!(services = ?runbooks.services(), templates = templates.origin(), "content loaded");
        Ok((runbooks, templates))
    }
}

fn present(dir: &'static str) -> Option<&'static Path> {
    Some(Path::new(dir)).filter(|p| p.is_dir())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    firebreak::cluster::install_crypto_provider();
    match run(cli.command).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("firebreak: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Cmd) -> anyhow::Result<ExitCode> {
    match command {
        Cmd::Demo { scenario, content } => {
            let scenario = Scenario::load(&scenario)?;
            let sim = SimServer::start(scenario, SocketAddr::from(([127, 0, 0, 1], 0))).await?;
            let cluster = Cluster::from_url(&sim.url())?;
            let interactive = std::io::stdin().is_terminal();
            if interactive {
                println!(
                    "Firebreak demo: a simulated cluster is serving at {}.",
                    sim.url()
                );
                println!(
                    "Try /triage model-server, /rollback model-server, /help, or /quit. Approvers: alice, bob, carol; /as bob switches who you are."
                );
            }
            let bot = content.bot(cluster, true).await?;
            let user = content.user.as_deref().unwrap_or("alice");
            console(bot, user, interactive).await?;
            sim.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Console {
            kubeconfig,
            content,
        } => {
            let cluster = Cluster::connect(kubeconfig.as_deref()).await?;
            let interactive = std::io::stdin().is_terminal();
            let bot = content.bot(cluster, false).await?;
            let user = content
                .user
                .clone()
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "console".to_string());
            console(bot, &user, interactive).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Sim {
            scenario,
            listen,
            kubeconfig_out,
        } => {
            let scenario = Scenario::load(&scenario)?;
            let sim = SimServer::start(scenario, listen).await?;
            println!("Simulated Kubernetes API serving at {}", sim.url());
            if let Some(path) = kubeconfig_out {
                std::fs::write(&path, sim.kubeconfig_yaml("ai-production"))
                    .with_context(|| format!("cannot write kubeconfig to {}", path.display()))?;
                println!("kubeconfig written to {}", path.display());
                println!(
                    "try: kubectl --kubeconfig {} get pods -n ai-production",
                    path.display()
                );
            }
            println!("Ctrl-C stops it.");
            tokio::signal::ctrl_c()
                .await
                .context("cannot wait for Ctrl-C")?;
            sim.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Serve {
            listen,
            kubeconfig,
            content,
        } => {
            let cluster = Cluster::connect(kubeconfig.as_deref()).await?;
            let bot = Arc::new(content.bot(cluster, false).await?);
            let env = ProcessEnv;
            let mut routes = Vec::new();
            let mut platforms: Vec<&str> = Vec::new();
            // Chat adapters add where alert-opened incidents are announced.
            let mut destinations: Vec<firebreak::chat::alertmanager::Destination> = Vec::new();
            let config = content.state.config(false)?;
            let alert_token = firebreak::config::secret(&env, "FIREBREAK_ALERTMANAGER_TOKEN")?;
            if let Some(settings) = SlackSettings::from_env(&env)? {
                let slack = Slack::new(bot.clone(), &settings, Default::default())?;
                // Default-deny: the token's own workspace (asked of Slack) and config's list.
                slack.allow(&config.access);
                slack.allow_own_workspace().await.context(
                    "Slack: cannot read the bot token's workspace (auth.test); check FIREBREAK_SLACK_BOT_TOKEN",
                )?;
                if let Some(slack_routes) = slack.routes() {
                    routes.push(slack_routes);
                }
                if let Some(channel) = config.alerts.slack_channel.clone() {
                    destinations.push(firebreak::chat::alertmanager::Destination {
                        outbox: Arc::new(slack.clone()),
                        channel,
                    });
                }
                if slack.has_socket_mode() {
                    tokio::spawn(slack.run_socket_mode());
                }
                platforms.push("slack");
            } else if config.alerts.slack_channel.is_some() {
                tracing::warn!(
                    "alerts.slack_channel is set but Slack is not configured (FIREBREAK_SLACK_BOT_TOKEN); alerts are not announced on Slack"
                );
            }
            let mut discord_gateway = None;
            if let Some(settings) = DiscordSettings::from_env(&env)? {
                let mode = settings.mode;
                let discord = Arc::new(Discord::new(bot.clone(), settings)?.allow(&config.access)?);
                // Commands registered before stay usable, so a failed overwrite is not fatal.
                if let Err(error) = discord.register_commands().await {
                    tracing::error!(error = %error, "Discord commands not registered");
                }
                if let Some(channel) = config.alerts.discord_channel.clone() {
                    destinations.push(firebreak::chat::alertmanager::Destination {
                        outbox: Arc::new(discord.api().clone()),
                        channel,
                    });
                }
                match mode {
                    DiscordMode::Http => {
                        routes.push(firebreak::chat::discord::http::routes(discord))
                    }
                    DiscordMode::Gateway => {
                        discord_gateway =
                            Some(firebreak::chat::discord::gateway::start(discord).await?);
                    }
                }
                platforms.push("discord");
            } else if config.alerts.discord_channel.is_some() {
                tracing::warn!(
                    "alerts.discord_channel is set but Discord is not configured (FIREBREAK_DISCORD_BOT_TOKEN); alerts are not announced on Discord"
                );
            }
            if platforms.is_empty() {
                anyhow::bail!(
                    "no chat platform is configured: set FIREBREAK_SLACK_BOT_TOKEN (Slack) or FIREBREAK_DISCORD_BOT_TOKEN (Discord); README \"Running on Slack\" lists the rest"
                );
            }
            platforms.sort();
            routes.push(firebreak::chat::alertmanager::routes(
                Arc::clone(&bot),
                alert_token,
                destinations,
            ));
            let listener = firebreak::server::bind(listen).await?;
            tracing::info!(%listen, platforms = ?platforms, "serving");
            firebreak::server::serve(
                listener,
                firebreak::server::app(routes),
                firebreak::server::shutdown_signal(),
            )
            .await
            .context("the HTTP server stopped")?;
            if let Some(gateway) = discord_gateway {
                gateway.shutdown().await;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Audit { incident, state } => {
            let config = state.config(false)?;
            let path = state
                .state
                .clone()
                .or_else(|| config.state.clone())
                .unwrap_or_else(|| PathBuf::from("firebreak.db"));
            if !path.is_file() {
                anyhow::bail!(
                    "no state file at {}; pass --state (or FIREBREAK_STATE) with the file `firebreak serve` or `console` writes",
                    path.display()
                );
            }
            let store = Store::open(&path)?;
            let entries = store.audit_log(incident.as_deref()).await?;
            if entries.is_empty() {
                eprintln!(
                    "the audit log in {} has no entries{}",
                    path.display(),
                    match &incident {
                        Some(id) => format!(" for incident {id}"),
                        None => String::new(),
                    }
                );
            }
            for entry in entries {
                println!("{}", entry.line());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Check { paths } => {
            let mut failed = false;
            for checked in firebreak::check::check_paths(&paths) {
                println!("Checking {}", checked.path);
                match checked.outcome {
                    Ok(summary) => println!("  SUCCESS: {summary}"),
                    Err(problems) => {
                        failed = true;
                        for problem in problems {
                            println!("  FAILED: {problem}");
                        }
                    }
                }
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

async fn console(bot: Bot, user: &str, interactive: bool) -> anyhow::Result<()> {
    let stdin = BufReader::new(tokio::io::stdin());
    let mut stdout = std::io::stdout();
    Console::new(user)
        .run(&bot, stdin, &mut stdout, interactive)
        .await
        .context("console I/O failed")
}
