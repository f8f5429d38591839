//! The built-in scenarios tell their stories through the API: one failure class each, on the
//! same Deployment, so one runbook serves them all.

use std::time::Duration;

use firebreak::sim::Scenario;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams};

use super::sim_workload::{
    NS, TestResult, ask, client, content, http, proxy_path, quantile_bound, samples, start, value,
};

#[tokio::test]
async fn bad_prompt_version_answers_empty_repetitive_or_wrong() -> TestResult {
    let server = start("bad-prompt").await?;
    let pod = "model-server-3d7e9a1c6-f5gkt";
    let paris = ask(&server, pod, "What is the capital of France?").await?;
    assert!(content(&paris).starts_with("the the the"), "{paris}");
    assert_eq!(paris["choices"][0]["finish_reason"], "length");
    assert_eq!(
        content(&ask(&server, pod, "what is 2 + 2?").await?),
        "2 + 2 = 5."
    );
    assert_eq!(content(&ask(&server, pod, "ping").await?), "");
    assert_eq!(
        content(&ask(&server, pod, "Summarise my ticket").await?),
        ""
    );

    // The engine itself looks healthy; only the endings give it away.
    let metrics = http(&server, "GET", &proxy_path(pod, "metrics"), "").await?;
    let s = samples(&metrics.body);
    assert!(value(&s, "vllm:kv_cache_usage_perc", "") < 0.8);
    assert_eq!(value(&s, "vllm:num_requests_waiting", ""), 0.0);
    let ended = |r: &str| {
        value(
            &s,
            "vllm:request_success_total",
            &format!("finished_reason=\"{r}\""),
        )
    };
    let bad = ended("length") + ended("repetition");
    assert!(
        bad / (bad + ended("stop")) > 0.3,
        "a high share of length/repetition endings"
    );

    let pods: Api<Pod> = Api::namespaced(client(&server)?, NS);
    for p in pods
        .list(&ListParams::default().labels("app=model-server"))
        .await?
    {
        let status = p.status.unwrap_or_default();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        for c in status.container_statuses.unwrap_or_default() {
            assert!(c.ready && c.restart_count == 0);
        }
    }
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn every_builtin_scenario_loads_and_serves_model_server() -> TestResult {
    for name in Scenario::builtin_names() {
        let server = start(name).await?;
        let pods: Api<Pod> = Api::namespaced(client(&server)?, NS);
        let list = pods
            .list(&ListParams::default().labels("app=model-server"))
            .await?;
        assert!(list.items.len() >= 3, "{name}: model-server pods");
        let mut answered = 0;
        for p in &list.items {
            let pod = p.metadata.name.clone().unwrap_or_default();
            let spec = p.spec.clone().unwrap_or_default();
            assert_eq!(spec.containers[0].name, "vllm", "{name}/{pod}");
            let reply = http(
                &server,
                "GET",
                &proxy_path(&format!("{pod}:8000"), "metrics"),
                "",
            )
            .await?;
            if reply.status == 200 {
                answered += 1;
                assert!(
                    reply.body.contains("vllm:num_requests_waiting"),
                    "{name}/{pod}"
                );
            } else {
                assert_eq!(reply.status, 503, "{name}/{pod}: {}", reply.body);
            }
        }
        assert!(answered >= 1, "{name}: at least one pod serves metrics");
        server.shutdown().await;
    }
    Ok(())
}

#[tokio::test]
async fn oom_scenario_is_an_infrastructure_failure() -> TestResult {
    let server = start("oom").await?;
    let c = client(&server)?;
    let pods: Api<Pod> = Api::namespaced(c.clone(), NS);
    let list = pods
        .list(&ListParams::default().labels("app=model-server"))
        .await?;
    let statuses: Vec<_> = list.items.iter().filter_map(|p| p.status.clone()).collect();
    assert!(
        statuses
            .iter()
            .any(|s| s.phase.as_deref() == Some("Pending"))
    );
    let oom_killed = statuses
        .iter()
        .flat_map(|s| s.container_statuses.clone().unwrap_or_default())
        .filter(|c| {
            c.last_state
                .as_ref()
                .and_then(|l| l.terminated.as_ref())
                .is_some_and(|t| t.reason.as_deref() == Some("OOMKilled"))
        })
        .count();
    assert!(oom_killed >= 2);
    let events: Api<Event> = Api::namespaced(c, NS);
    let sched = events
        .list(&ListParams::default().fields("reason=FailedScheduling"))
        .await?;
    assert!(sched.items.iter().any(|e| {
        e.message
            .as_deref()
            .is_some_and(|m| m.contains("Insufficient nvidia.com/gpu"))
    }));
    // What serves is healthy, and the canary answers well.
    let healthy = "model-server-5b8c6d9f4-k9d3m";
    let s = samples(
        &http(&server, "GET", &proxy_path(healthy, "metrics"), "")
            .await?
            .body,
    );
    assert!(value(&s, "vllm:kv_cache_usage_perc", "") < 0.8);
    assert_eq!(
        content(&ask(&server, healthy, "capital of France?").await?),
        "Paris is the capital of France."
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn kv_cache_scenario_is_serving_engine_pressure() -> TestResult {
    let server = start("kv-cache").await?;
    let pods: Api<Pod> = Api::namespaced(client(&server)?, NS);
    let list = pods
        .list(&ListParams::default().labels("app=model-server"))
        .await?;
    for p in &list.items {
        let pod = p.metadata.name.clone().unwrap_or_default();
        let status = p.status.clone().unwrap_or_default();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        for c in status.container_statuses.unwrap_or_default() {
            assert!(c.ready && c.restart_count == 0, "{pod}");
        }
        let s = samples(
            &http(&server, "GET", &proxy_path(&pod, "metrics"), "")
                .await?
                .body,
        );
        let kv = value(&s, "vllm:kv_cache_usage_perc", "");
        assert!((0.96..=0.99).contains(&kv), "{pod}: {kv}");
        assert!(value(&s, "vllm:num_requests_waiting", "") >= 40.0);
        assert!(value(&s, "vllm:num_preemptions_total", "") > 100.0);
        assert!(quantile_bound(&s, "vllm:time_to_first_token_seconds", 0.95) > 2.0);
        let log = pods.logs(&pod, &Default::default()).await?;
        assert!(
            log.lines()
                .any(|l| l.contains("GPU KV cache usage: 9") && l.contains("Waiting: ")),
            "{pod}"
        );
    }
    let started = std::time::Instant::now();
    let answer = ask(&server, "model-server-8f4b2c7d5-w6xjn", "capital of France").await?;
    assert_eq!(content(&answer), "Paris is the capital of France.");
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "the canary is slow"
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn stale_index_cronjob_and_failed_jobs_list_via_kube_rs() -> TestResult {
    let server = start("stale-index").await?;
    let c = client(&server)?;
    let cronjobs: Api<CronJob> = Api::namespaced(c.clone(), NS);
    let cj = cronjobs.get("rag-index-rebuild").await?;
    let status = cj.status.clone().unwrap_or_default();
    let now = jiff::Timestamp::now();
    let last_ok = status
        .last_successful_time
        .ok_or("no lastSuccessfulTime")?
        .0;
    let age = now.duration_since(last_ok);
    assert!(
        age >= jiff::SignedDuration::from_hours(71),
        "last success about 3 days ago: {age:?}"
    );
    let last_schedule = status.last_schedule_time.ok_or("no lastScheduleTime")?.0;
    assert!(
        last_schedule > last_ok,
        "it kept being scheduled after the last success"
    );

    let jobs: Api<Job> = Api::namespaced(c.clone(), NS);
    let list = jobs.list(&ListParams::default()).await?;
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let failed: Vec<&Job> = list
        .items
        .iter()
        .filter(|j| {
            j.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.kind == "CronJob" && o.uid == uid)
        })
        .filter(|j| j.status.as_ref().and_then(|s| s.failed) == Some(1))
        .collect();
    assert!(failed.len() >= 2, "recent failed jobs owned by the CronJob");
    for j in &failed {
        let conditions = j
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        assert!(conditions.iter().any(|c| c.type_ == "Failed"
            && c.status == "True"
            && c.reason.as_deref() == Some("BackoffLimitExceeded")));
    }
    let events: Api<Event> = Api::namespaced(c, NS);
    let on_jobs = events
        .list(&ListParams::default().fields("involvedObject.kind=Job"))
        .await?;
    assert!(
        on_jobs
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("BackoffLimitExceeded"))
    );

    // Serving is fine; recent facts are stale.
    let pod = "model-server-6a2f8e4b1-s9wql";
    assert_eq!(
        content(&ask(&server, pod, "capital of France").await?),
        "Paris is the capital of France."
    );
    assert!(content(&ask(&server, pod, "What is the latest release?").await?).contains("4.2"));
    server.shutdown().await;
    Ok(())
}
