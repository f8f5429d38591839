//! The fuzz command: every property target of `tests/properties/targets.rs` (request parsers,
//! signature checks, the command parser, runbook and scenario loaders, the exposition parser,
//! Alertmanager payloads) with a million generated inputs by default. Exits non-zero with the
//! (shrunk) failing input and its seed when any input panics or breaks a property.
//!
//! ```sh
//! cargo run --example fuzz                       # 1,000,000 inputs over all targets
//! cargo run --example fuzz -- --cases 5000000 --seed 42
//! cargo run --example fuzz -- --only slack_requests --cases 200000
//! ```

#[path = "../tests/properties/targets.rs"]
mod targets;

use std::process::ExitCode;
use std::time::Instant;

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo run --example fuzz -- [--cases N (total, default 1000000)] [--seed S] [--only TARGET]"
    );
    eprintln!(
        "targets: {}",
        targets::TARGETS
            .iter()
            .map(|t| t.name)
            .collect::<Vec<_>>()
            .join(", ")
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut cases: u64 = 1_000_000;
    let mut seed: Option<u64> = None;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--cases", Some(v)) => match v.replace('_', "").parse() {
                Ok(n) => cases = n,
                Err(_) => return usage(),
            },
            ("--seed", Some(v)) => match v.parse() {
                Ok(s) => seed = Some(s),
                Err(_) => return usage(),
            },
            ("--only", Some(v)) => only = Some(v),
            _ => return usage(),
        }
    }
    let chosen: Vec<&targets::Target> = targets::TARGETS
        .iter()
        .filter(|t| only.as_deref().is_none_or(|o| o == t.name))
        .collect();
    if chosen.is_empty() {
        return usage();
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    // Panics are caught and reported per input by the runner; keep their default message
    // off the terminal so the report stays readable.
    std::panic::set_hook(Box::new(|_| {}));
    let each = cases / chosen.len() as u64;
    let extra = cases % chosen.len() as u64;
    println!(
        "fuzzing {} targets, {cases} inputs in all, seed {seed}",
        chosen.len()
    );
    let started = Instant::now();
    let mut total: u64 = 0;
    for (i, target) in chosen.iter().enumerate() {
        let n = each + u64::from((i as u64) < extra);
        let n32 = u32::try_from(n).unwrap_or(u32::MAX);
        let began = Instant::now();
        if let Err(failure) = targets::run(target, n32, seed) {
            println!("FAILED {failure}");
            println!(
                "reproduce: cargo run --example fuzz -- --only {} --seed {seed} --cases {n32}",
                target.name
            );
            return ExitCode::FAILURE;
        }
        total += u64::from(n32);
        println!(
            "{:<22} {n32:>9} inputs  no panic  {:>7.1}s",
            target.name,
            began.elapsed().as_secs_f64()
        );
    }
    println!(
        "{total} inputs, no panic, no failed property ({:.1}s)",
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
