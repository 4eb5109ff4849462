//! The latency budget: how long what a client sends spends in each stage between the socket
//! read that brought it and the socket write that delivers it, with the `latency-budget`
//! feature. Without the feature a [`Stamp`] holds nothing and every call here is empty, so
//! that a server in use pays nothing for it.
//!
//! The stages, in the order a message meets them:
//! - **to the broker task**: from the read's return to its broker task taking it off the
//!   inbox (the wait behind other connections' input, and the task's wake-up);
//! - **between shards**: from one broker task sending another shard its batch to that task
//!   taking it (with `--shards` above 1);
//! - **broker task**: from being taken to being handed to the connections' writers, the rest
//!   of the batch served with it included (parsing, routing, encoding);
//! - **to the writer**: from being handed out to the connection's writer taking it (the
//!   writer task's wake-up and the writes ahead of it);
//! - **write**: the write itself, the batch it is in as one system call (or one WebSocket
//!   flush).
//!
//! Each stage is weighed in octets: under a load of messages of one size, which the load tool
//! sends, an octet's wait is a message's.

#[cfg(feature = "latency-budget")]
pub use figures::{LatencyBudget, StageFigures, latency_budget};

/// Where a wait ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "latency-budget"), allow(dead_code))]
pub(crate) enum Stage {
    ToBrokerTask,
    BetweenShards,
    BrokerTask,
    ToWriter,
    Write,
}

/// When a stage began: an instant with the feature, nothing without.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stamp {
    #[cfg(feature = "latency-budget")]
    at: std::time::Instant,
}

impl Stamp {
    /// Now.
    #[inline]
    pub(crate) fn now() -> Stamp {
        Stamp {
            #[cfg(feature = "latency-budget")]
            at: std::time::Instant::now(),
        }
    }

    /// The stage that began at this stamp ended at `end`, for `octets`.
    #[inline]
    pub(crate) fn ended(self, stage: Stage, end: Stamp, octets: usize) {
        #[cfg(feature = "latency-budget")]
        figures::record(stage, end.at.saturating_duration_since(self.at), octets);
        #[cfg(not(feature = "latency-budget"))]
        let _ = (stage, end, octets);
    }
}

/// What one turn of a broker task took in, to be recorded when the turn has handed it out.
#[derive(Debug, Default)]
pub(crate) struct Turn {
    #[cfg(feature = "latency-budget")]
    taken: Vec<(Stamp, usize)>,
}

impl Turn {
    /// `octets` were taken in now, after waiting since `since` in `stage`.
    #[inline]
    pub(crate) fn take(&mut self, stage: Stage, since: Stamp, octets: usize) {
        #[cfg(feature = "latency-budget")]
        {
            let now = Stamp::now();
            since.ended(stage, now, octets);
            self.taken.push((now, octets));
        }
        #[cfg(not(feature = "latency-budget"))]
        let _ = (stage, since, octets);
    }

    /// Everything taken this turn has been handed out.
    #[inline]
    pub(crate) fn handed_out(&mut self) {
        #[cfg(feature = "latency-budget")]
        {
            let now = Stamp::now();
            for (taken, octets) in self.taken.drain(..) {
                taken.ended(Stage::BrokerTask, now, octets);
            }
        }
    }
}

/// When each buffer of a writer's batch was handed out.
#[derive(Debug, Default)]
pub(crate) struct Handed {
    #[cfg(feature = "latency-budget")]
    at: Vec<(Stamp, usize)>,
}

impl Handed {
    /// A buffer of `octets` handed out `at` joins the batch.
    #[inline]
    pub(crate) fn push(&mut self, at: Stamp, octets: usize) {
        #[cfg(feature = "latency-budget")]
        self.at.push((at, octets));
        #[cfg(not(feature = "latency-budget"))]
        let _ = (at, octets);
    }

    /// The writer takes the batch now: when, for its write.
    #[inline]
    pub(crate) fn taken(&mut self) -> Stamp {
        let now = Stamp::now();
        #[cfg(feature = "latency-budget")]
        for (at, octets) in self.at.drain(..) {
            at.ended(Stage::ToWriter, now, octets);
        }
        now
    }
}

#[cfg(feature = "latency-budget")]
mod figures {
    use std::fmt;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use crate::budget::Stage;

    /// Every stage, in the order a message meets them, with its name.
    const STAGES: [(Stage, &str); 5] = [
        (Stage::ToBrokerTask, "to the broker task"),
        (Stage::BetweenShards, "between shards"),
        (Stage::BrokerTask, "broker task"),
        (Stage::ToWriter, "to the writer"),
        (Stage::Write, "write"),
    ];

    /// Four buckets per power of two of nanoseconds (each within 19% of its neighbour), up to
    /// the largest `u64`.
    const BUCKETS: usize = 252;

    struct Histogram {
        octets: [AtomicU64; BUCKETS],
        nanos: AtomicU64,
    }

    static HISTOGRAMS: [Histogram; STAGES.len()] = [const {
        Histogram {
            octets: [const { AtomicU64::new(0) }; BUCKETS],
            nanos: AtomicU64::new(0),
        }
    }; STAGES.len()];

    fn bucket(nanos: u64) -> usize {
        if nanos < 4 {
            return nanos as usize;
        }
        let exponent = 63 - nanos.leading_zeros() as usize;
        let mantissa = ((nanos >> (exponent - 2)) & 3) as usize;
        4 * (exponent - 1) + mantissa
    }

    /// The middle of a bucket, in nanoseconds.
    fn middle(bucket: usize) -> u64 {
        if bucket < 4 {
            return bucket as u64;
        }
        let exponent = bucket / 4 + 1;
        let low = (4 + (bucket % 4) as u64) << (exponent - 2);
        low + (1u64 << (exponent - 2)) / 2
    }

    pub(super) fn record(stage: Stage, waited: Duration, octets: usize) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        let histogram = &HISTOGRAMS[stage as usize];
        histogram.octets[bucket(nanos)].fetch_add(octets as u64, Ordering::Relaxed);
        histogram
            .nanos
            .fetch_add(nanos.saturating_mul(octets as u64), Ordering::Relaxed);
    }

    /// One stage's figures.
    #[derive(Clone, Debug, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct StageFigures {
        /// The stage's name.
        pub stage: &'static str,
        /// Octets that went through it.
        pub octets: u64,
        /// Half the octets waited at most this long in it.
        pub p50: Duration,
        /// 99% of the octets waited at most this long in it.
        pub p99: Duration,
        /// The mean wait of an octet.
        pub mean: Duration,
    }

    /// Every stage's figures since the process started, from [`latency_budget`].
    #[derive(Clone, Debug, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct LatencyBudget {
        /// The stages in the order a message meets them.
        pub stages: Vec<StageFigures>,
    }

    /// How long what clients sent has spent in each stage between the socket read that
    /// brought it and the socket write that delivered it, over every server of this process
    /// since it started (the `latency-budget` feature). `Display` writes it as a Markdown
    /// table.
    ///
    /// ```
    /// let budget = stomp_server::latency_budget();
    /// assert_eq!(budget.stages.len(), 5);
    /// println!("{budget}");
    /// ```
    pub fn latency_budget() -> LatencyBudget {
        let stages = STAGES
            .iter()
            .map(|&(stage, name)| {
                let histogram = &HISTOGRAMS[stage as usize];
                let counts: Vec<u64> = histogram
                    .octets
                    .iter()
                    .map(|c| c.load(Ordering::Relaxed))
                    .collect();
                let octets: u64 = counts.iter().sum();
                let quantile = |q: f64| {
                    let wanted = (octets as f64 * q).ceil() as u64;
                    let mut seen = 0;
                    let found = counts.iter().position(|&c| {
                        seen += c;
                        seen >= wanted.max(1)
                    });
                    Duration::from_nanos(found.map_or(0, middle))
                };
                let nanos = histogram.nanos.load(Ordering::Relaxed);
                StageFigures {
                    stage: name,
                    octets,
                    p50: quantile(0.5),
                    p99: quantile(0.99),
                    mean: Duration::from_nanos(nanos.checked_div(octets).unwrap_or(0)),
                }
            })
            .collect();
        LatencyBudget { stages }
    }

    impl fmt::Display for LatencyBudget {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            writeln!(f, "| stage | octets | p50 | p99 | mean |")?;
            writeln!(f, "|---|---:|---:|---:|---:|")?;
            for s in &self.stages {
                writeln!(
                    f,
                    "| {} | {} | {:.1} µs | {:.1} µs | {:.1} µs |",
                    s.stage,
                    s.octets,
                    micros(s.p50),
                    micros(s.p99),
                    micros(s.mean)
                )?;
            }
            Ok(())
        }
    }

    fn micros(d: Duration) -> f64 {
        d.as_secs_f64() * 1e6
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn buckets_hold_their_values_within_a_fifth() {
            let mut last = 0;
            for nanos in (0..4).chain((2..60).flat_map(|e| [1u64 << e, (1u64 << e) * 3 / 2])) {
                let b = bucket(nanos);
                assert!(b >= last && b < BUCKETS, "{nanos} in {b}");
                last = b;
                let m = middle(b) as f64;
                assert!(
                    (m - nanos as f64).abs() <= nanos as f64 * 0.2,
                    "{nanos}: {m}"
                );
            }
            assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        }

        #[test]
        fn quantiles_are_weighed_in_octets() {
            // One stage only this test records in.
            let short = Duration::from_micros(10);
            let long = Duration::from_millis(10);
            record(Stage::BetweenShards, short, 98);
            record(Stage::BetweenShards, long, 2);
            let budget = latency_budget();
            let s = &budget.stages[1];
            assert_eq!(s.stage, "between shards");
            assert_eq!(s.octets, 100);
            assert!(s.p50.abs_diff(short) < short / 5, "{s:?}");
            assert!(s.p99.abs_diff(long) < long / 5, "{s:?}");
            assert!(budget.to_string().contains("| between shards | 100 |"));
        }
    }
}
