//! Quantiles from cumulative Prometheus histograms, computed as `histogram_quantile` does.
//!
//! The same maths as Prometheus (`promql/quantile.go`), so a number in chat matches the number
//! on the team's Grafana panel: find the bucket holding the rank, interpolate linearly inside it,
//! and when the rank falls in the `+Inf` bucket answer the highest finite bound (the true value
//! is somewhere above it; [`Quantile::beyond_top_bucket`] says so).

use std::collections::BTreeMap;

use super::exposition::Exposition;

/// One cumulative bucket: observations `<= upper_bound`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// The `le` bound (`+Inf` for the last).
    pub upper_bound: f64,
    /// Cumulative count.
    pub count: f64,
}

/// A histogram's buckets, summed over all label sets (engines, models) that share `le` bounds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Buckets sorted by bound.
    pub buckets: Vec<Bucket>,
}

/// An estimated quantile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantile {
    /// The estimate, in the histogram's unit (seconds for vLLM latencies).
    pub value: f64,
    /// The rank fell in the `+Inf` bucket: the true quantile is at least `value`.
    pub beyond_top_bucket: bool,
}

impl std::fmt::Display for Quantile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.beyond_top_bucket {
            write!(f, ">{}", seconds(self.value))
        } else {
            f.write_str(&seconds(self.value))
        }
    }
}

/// `0.21s`, `12.5s`, `850ms`: latencies as people read them.
pub fn seconds(value: f64) -> String {
    if value < 1.0 {
        format!("{:.0}ms", value * 1000.0)
    } else if value < 10.0 {
        format!("{value:.2}s")
    } else {
        format!("{value:.1}s")
    }
}

impl Histogram {
    /// Collect `{base}_bucket` samples from `exposition`, summing counts with equal `le`.
    /// `None` when there are no bucket samples at all.
    pub fn from_exposition(exposition: &Exposition, base: &str) -> Option<Histogram> {
        let name = format!("{base}_bucket");
        // Keyed by the bound's bits so equal bounds written differently (`1`, `1.0`) merge;
        // bounds are never NaN or negative zero in practice, and NaN bounds are dropped.
        let mut by_bound: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for sample in exposition.named(&name) {
            let Some(bound) = sample.label("le").and_then(parse_bound) else {
                continue;
            };
            if !sample.value.is_finite() {
                continue;
            }
            by_bound.entry(bound.to_bits()).or_insert((bound, 0.0)).1 += sample.value;
        }
        if by_bound.is_empty() {
            return None;
        }
        let mut buckets: Vec<Bucket> = by_bound
            .into_values()
            .map(|(upper_bound, count)| Bucket { upper_bound, count })
            .collect();
        buckets.sort_by(|a, b| a.upper_bound.total_cmp(&b.upper_bound));
        Some(Histogram { buckets })
    }

    /// Observations in total (the `+Inf` bucket's count), if the histogram has that bucket.
    pub fn count(&self) -> Option<f64> {
        self.buckets
            .last()
            .filter(|b| b.upper_bound == f64::INFINITY)
            .map(|b| b.count)
    }

    /// The `q`-quantile (0 ≤ q ≤ 1), or `None` where Prometheus would answer NaN: fewer than two
    /// buckets, no `+Inf` bucket, or no observations.
    pub fn quantile(&self, q: f64) -> Option<Quantile> {
        if !(0.0..=1.0).contains(&q) || self.buckets.len() < 2 {
            return None;
        }
        let observations = self.count()?;
        if observations <= 0.0 {
            return None;
        }
        // Scrapes race with increments, so buckets can be slightly non-monotonic; Prometheus
        // fixes that the same way, by carrying the running maximum forward.
        let mut counts: Vec<f64> = Vec::with_capacity(self.buckets.len());
        for b in &self.buckets {
            let prev = counts.last().copied().unwrap_or(0.0);
            counts.push(b.count.max(prev));
        }
        let mut rank = q * observations;
        let b = counts
            .iter()
            .position(|&c| c >= rank)
            .unwrap_or(counts.len() - 1);
        let last = self.buckets.len() - 1;
        if b == last {
            return Some(Quantile {
                value: self.buckets[last - 1].upper_bound,
                beyond_top_bucket: true,
            });
        }
        if b == 0 && self.buckets[0].upper_bound <= 0.0 {
            return Some(Quantile {
                value: self.buckets[0].upper_bound,
                beyond_top_bucket: false,
            });
        }
        let (start, mut count) = if b == 0 {
            (0.0, counts[0])
        } else {
            rank -= counts[b - 1];
            (self.buckets[b - 1].upper_bound, counts[b] - counts[b - 1])
        };
        let end = self.buckets[b].upper_bound;
        if count <= 0.0 {
            // Only reachable when rank is 0 (q = 0): the bucket's lower edge.
            count = 1.0;
        }
        Some(Quantile {
            value: start + (end - start) * (rank / count),
            beyond_top_bucket: false,
        })
    }
}

fn parse_bound(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        _ => text.parse::<f64>().ok().filter(|v| !v.is_nan()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::exposition::parse;

    fn hist(pairs: &[(f64, f64)]) -> Histogram {
        Histogram {
            buckets: pairs
                .iter()
                .map(|&(upper_bound, count)| Bucket { upper_bound, count })
                .collect(),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn interpolates_inside_the_bucket_like_histogram_quantile() {
        // 100 observations: 10 ≤ 0.1, 50 ≤ 0.5, 90 ≤ 1, 100 ≤ 2.5.
        let h = hist(&[
            (0.1, 10.0),
            (0.5, 50.0),
            (1.0, 90.0),
            (2.5, 100.0),
            (f64::INFINITY, 100.0),
        ]);
        // p50: rank 50 → bucket (0.1, 0.5], 40 of 40 → 0.5.
        assert!(close(h.quantile(0.5).unwrap().value, 0.5));
        // p95: rank 95 → bucket (1, 2.5], (95-90)/10 of 1.5 → 1.75.
        assert!(close(h.quantile(0.95).unwrap().value, 1.75));
        // p99: (99-90)/10 of 1.5 → 2.35.
        assert!(close(h.quantile(0.99).unwrap().value, 2.35));
        // p5: rank 5 in the first bucket, from 0: 0.1 * 5/10 = 0.05.
        assert!(close(h.quantile(0.05).unwrap().value, 0.05));
        assert!(!h.quantile(0.99).unwrap().beyond_top_bucket);
    }

    #[test]
    fn rank_in_the_inf_bucket_answers_the_top_finite_bound() {
        let h = hist(&[(1.0, 50.0), (5.0, 80.0), (f64::INFINITY, 100.0)]);
        let p95 = h.quantile(0.95).unwrap();
        assert_eq!(p95.value, 5.0);
        assert!(p95.beyond_top_bucket);
        assert_eq!(p95.to_string(), ">5.00s");
    }

    #[test]
    fn inf_only_empty_and_missing_inf_give_none() {
        assert_eq!(hist(&[(f64::INFINITY, 42.0)]).quantile(0.5), None);
        assert_eq!(hist(&[]).quantile(0.5), None);
        assert_eq!(
            hist(&[(1.0, 0.0), (f64::INFINITY, 0.0)]).quantile(0.5),
            None
        );
        assert_eq!(hist(&[(1.0, 3.0), (2.0, 4.0)]).quantile(0.5), None);
        assert_eq!(
            hist(&[(1.0, 3.0), (f64::INFINITY, 4.0)]).quantile(1.5),
            None
        );
    }

    #[test]
    fn non_monotonic_buckets_are_fixed_like_prometheus() {
        // The 1.0 bucket was read before an increment landed in the 0.5 bucket.
        let h = hist(&[
            (0.5, 60.0),
            (1.0, 59.0),
            (2.0, 100.0),
            (f64::INFINITY, 100.0),
        ]);
        // Counts become 60, 60, 100: p50 → rank 50 in the first bucket → 0.5 * 50/60.
        assert!(close(h.quantile(0.5).unwrap().value, 0.5 * 50.0 / 60.0));
        // p80: rank 80 → bucket (1, 2], (80-60)/40 → 1.5.
        assert!(close(h.quantile(0.8).unwrap().value, 1.5));
    }

    #[test]
    fn sums_buckets_across_engines_and_reads_exposition() {
        let text = r#"
ttft_bucket{engine="0",le="0.1"} 5
ttft_bucket{engine="0",le="1.0"} 9
ttft_bucket{engine="0",le="+Inf"} 10
ttft_bucket{engine="1",le="0.1"} 5
ttft_bucket{engine="1",le="1"} 11
ttft_bucket{engine="1",le="+Inf"} 10
ttft_bucket{engine="1",le="oops"} 10
other_bucket{le="0.1"} 1
"#;
        let h = Histogram::from_exposition(&parse(text), "ttft").unwrap();
        assert_eq!(h, hist(&[(0.1, 10.0), (1.0, 20.0), (f64::INFINITY, 20.0)]));
        assert_eq!(h.count(), Some(20.0));
        // p25: rank 5 → first bucket → 0.05. p75: rank 15 → (0.1, 1], 5/10 → 0.55.
        assert!(close(h.quantile(0.25).unwrap().value, 0.05));
        assert!(close(h.quantile(0.75).unwrap().value, 0.55));
        assert_eq!(Histogram::from_exposition(&parse(text), "absent"), None);
    }
}
