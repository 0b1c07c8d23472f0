//! The estimated callback time (ECBT), learned from what the engine observes.
//!
//! A call target dials at most `P` callbacks at once (its pacing). A launched callback
//! holds one of those slots until its attempt ends, so callbacks leave the queue at the
//! rate slots free up. The estimator keeps three exponentially weighted moving averages
//! (weight `α` = `ecbt.smoothing` on each new sample):
//!
//! * `H`, the **slot hold time**: launch → attempt over, over every attempt (agent-leg
//!   connect time plus conversation for answered ones, ringing time for failed ones).
//!   Starts at `ecbt.initial_handle_secs`.
//! * `G`, the **release gap**: time between two consecutive slot releases while every
//!   slot was busy, i.e. the completion throughput measured directly. Used once
//!   [`MIN_GAP_SAMPLES`] gaps have been seen; before that `G` is taken as `H / P`.
//! * `C`, the **agent-leg connect time**: launch → the agent leg answers. Starts at
//!   `ecbt.initial_connect_secs`.
//!
//! The estimator also keeps `Q`, the EWMA of the squared release gaps, for two figures:
//!
//! * `R`, the **first release**: a callback registered while every slot is busy arrives at a
//!   random moment of a gap, so its first release comes on average after the mean residual
//!   gap `E[g²] / 2E[g]` = `Q / 2G` (renewal theory's inspection paradox), not after a whole
//!   `G`: the attempts in progress are already part-way through. Kept within `G/4 … 2G`.
//! * `σ`, the **spread of a gap**: `√(Q − G²)`; `k` gaps spread by about `σ√k`.
//!
//! For a callback with `A` callbacks ahead of it in its call target's queue (waiting ASAP
//! callbacks before it, plus scheduled ones due before it) and `I` callbacks in progress:
//!
//! ```text
//! k    = max(I + A + 1 − P, A, 0)       launches to wait for before it can launch
//! q    = R + (k − 1) × G                every slot busy (I ≥ P), k ≥ 1, gaps measured
//! q    = k × G                          otherwise (the queue is not moving, or G is H / P)
//! wait = max(min_delay, q + m × σ√k)    m = ecbt.margin (0: the mean wait)
//! ECBT = wait                      (first party: customer — the customer is called at launch)
//! ECBT = wait + C                  (first party: agent — the customer is called once an agent answers)
//! ```
//!
//! A margin `m > 0` quotes above the mean wait, so fewer launches come after the quote's
//! window; with `hold_early` the launches that come before it wait for it.
//!
//! `k` is at least `A`: a callback queued ahead is, by being queued, not in a free slot (the
//! dialler is not attached, the call target is closed, or it is not due yet), so the queue
//! drains at one launch per `G` whatever the number of idle slots. Counting idle slots as
//! taken at once (`k = I + A + 1 − P` alone) told the first `P` callers of a queue that was
//! not moving that they would be called at once (an ECBT of 0 s for callers 2–5 behind a
//! queue, with the default pacing of 5). A new callback with nothing ahead and a free slot
//! still launches at once: ECBT 0, quoted as "less than a minute".
//!
//! `estimatedFor` = registration time + ECBT. The estimate only moves with observations,
//! never with the wall clock, so the same inputs always give the same ECBT.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Release gaps needed before the measured throughput replaces `H / P`.
pub const MIN_GAP_SAMPLES: u32 = 5;

/// Highest weight an adaptive estimator gives one gap: a run of one-sided errors moves `G`
/// most of the way in two or three gaps, never all of it on one.
pub const MAX_ADAPTIVE_WEIGHT: f64 = 0.6;

/// Longest hold time or gap accepted as a sample (a stuck call must not wreck the
/// average for hours): 4 hours.
pub const MAX_SAMPLE_SECS: f64 = 4.0 * 3600.0;

/// Estimator settings of a call target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EcbtSettings {
    /// Starting `H`, seconds.
    pub initial_handle_secs: f64,
    /// Starting `C`, seconds.
    pub initial_connect_secs: f64,
    /// EWMA weight of a new sample, `0 < α <= 1`.
    pub smoothing: f64,
    /// Hold a callback whose turn comes before its quote's window until the window opens
    /// (see [`launch_window_opens`]): the quote comes true at the cost of idle slot time.
    pub hold_early: bool,
    /// The window around the quote, in percent of the quoted wait (at least the call
    /// target's `punctual_within_secs` either way).
    pub window_percent: f64,
    /// Gaps' spreads (`σ√k`) added to the quote: 0 quotes the mean wait.
    pub margin: f64,
    /// Adapt the weight of a new gap to how one-sided the recent errors are (Trigg and
    /// Leach's tracking signal): `G` follows a change in throughput in a few gaps, and
    /// stays as smooth as `smoothing` makes it while the errors average out.
    pub adaptive: bool,
}

impl Default for EcbtSettings {
    fn default() -> Self {
        EcbtSettings {
            initial_handle_secs: 300.0,
            initial_connect_secs: 30.0,
            smoothing: 0.2,
            hold_early: false,
            window_percent: 20.0,
            margin: 0.0,
            adaptive: false,
        }
    }
}

/// When the window of a quote opens for the launch: `estimated_for` less the window's half
/// width (`max(punctual_within_secs, window_percent × quoted wait)`), less the agent leg's
/// connect time `C` when the agent is called first (the quote is when the customer is
/// called, `C` after the launch).
pub fn launch_window_opens(
    requested_at: DateTime<Utc>,
    estimated_for: DateTime<Utc>,
    punctual_within_secs: u64,
    lead_secs: f64,
    s: &EcbtSettings,
) -> DateTime<Utc> {
    let wait = (estimated_for - requested_at).num_milliseconds().max(0) as f64 / 1000.0;
    let half = (wait * s.window_percent / 100.0).max(punctual_within_secs as f64);
    let early_ms = ((half + lead_secs.max(0.0)) * 1000.0).min(MAX_SAMPLE_SECS * 1000.0);
    estimated_for - chrono::Duration::milliseconds(early_ms as i64)
}

/// The learned state; persisted so a restart keeps what was learned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimator {
    /// `H`, seconds.
    pub hold_secs: f64,
    /// `C`, seconds.
    pub connect_secs: f64,
    /// `G`, seconds (meaningful once `gap_samples >= MIN_GAP_SAMPLES`).
    pub gap_secs: f64,
    /// Hold samples seen.
    pub hold_samples: u64,
    /// Connect samples seen.
    pub connect_samples: u64,
    /// Gap samples seen.
    pub gap_samples: u32,
    /// `Q`, the EWMA of the squared gaps, seconds² (0 in a state saved before it existed:
    /// then `R` is `G` and `σ` 0, the estimate as it was).
    #[serde(default)]
    pub gap_sq_secs: f64,
    /// EWMA of the gaps' errors against `G`, signed (the tracking signal's numerator).
    #[serde(default)]
    pub gap_bias_secs: f64,
    /// EWMA of the gaps' absolute errors against `G` (its denominator).
    #[serde(default)]
    pub gap_dev_secs: f64,
    /// Last slot release while every slot was busy (start of the next gap).
    pub last_saturated_release: Option<DateTime<Utc>>,
}

/// What the queue looks like for an estimate.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Callbacks ahead (`A`).
    pub ahead: u64,
    /// Callbacks in progress (`I`).
    pub in_progress: u64,
    /// Pacing (`P`, at least 1).
    pub pacing: u64,
    /// Minimum callback delay, seconds.
    pub min_delay_secs: u64,
    /// Whether the agent leg is dialled first.
    pub agent_first: bool,
    /// Gap spreads added to the quote (`ecbt.margin`).
    pub margin: f64,
}

impl Estimator {
    /// A fresh estimator at the configured starting values.
    pub fn new(s: &EcbtSettings) -> Self {
        Estimator {
            hold_secs: s.initial_handle_secs,
            connect_secs: s.initial_connect_secs,
            gap_secs: 0.0,
            hold_samples: 0,
            connect_samples: 0,
            gap_samples: 0,
            gap_sq_secs: 0.0,
            gap_bias_secs: 0.0,
            gap_dev_secs: 0.0,
            last_saturated_release: None,
        }
    }

    /// Seconds between launches when every slot is busy (`G`).
    pub fn interval_secs(&self, pacing: u64) -> f64 {
        if self.gap_samples >= MIN_GAP_SAMPLES {
            self.gap_secs
        } else {
            self.hold_secs / pacing.max(1) as f64
        }
    }

    /// Whether the measured gaps (`G`, `Q`) are in use.
    fn gaps_measured(&self) -> bool {
        self.gap_samples >= MIN_GAP_SAMPLES && self.gap_sq_secs > 0.0
    }

    /// `R`: seconds from a random moment with every slot busy to the next release.
    pub fn first_release_secs(&self, pacing: u64) -> f64 {
        let g = self.interval_secs(pacing);
        if !self.gaps_measured() || g <= 0.0 {
            return g;
        }
        (self.gap_sq_secs / (2.0 * g)).clamp(g / 4.0, 2.0 * g)
    }

    /// `σ`: the standard deviation of a release gap, seconds (0 before gaps are measured).
    pub fn gap_spread_secs(&self) -> f64 {
        if !self.gaps_measured() {
            return 0.0;
        }
        (self.gap_sq_secs - self.gap_secs * self.gap_secs)
            .max(0.0)
            .sqrt()
    }

    /// The ECBT in whole seconds (rounded up), quoting `load.margin` spreads above the mean.
    pub fn estimate(&self, load: Load) -> u64 {
        let pacing = load.pacing.max(1);
        let slots_busy = load.in_progress + load.ahead + 1;
        // Queued callbacks are not in free slots: never fewer launches than callbacks ahead.
        let k = slots_busy.saturating_sub(pacing).max(load.ahead);
        let g = self.interval_secs(pacing);
        let queue = if k >= 1 && load.in_progress >= pacing {
            self.first_release_secs(pacing) + (k - 1) as f64 * g
        } else {
            k as f64 * g
        };
        let spread = load.margin.max(0.0) * self.gap_spread_secs() * (k as f64).sqrt();
        let wait = (queue + spread).max(load.min_delay_secs as f64);
        let ecbt = if load.agent_first {
            wait + self.connect_secs
        } else {
            wait
        };
        ecbt.ceil().clamp(0.0, u64::MAX as f64 / 2.0) as u64
    }

    /// An agent leg answered `secs` after its launch.
    pub fn on_agent_connected(&mut self, secs: f64, s: &EcbtSettings) {
        if let Some(v) = sample(secs) {
            self.connect_secs = ewma(self.connect_secs, v, s.smoothing);
            self.connect_samples += 1;
        }
    }

    /// An attempt that held its slot for `held_secs` ended at `now`; `saturated` says
    /// whether every slot was busy just before it ended.
    pub fn on_released(
        &mut self,
        now: DateTime<Utc>,
        held_secs: f64,
        saturated: bool,
        s: &EcbtSettings,
    ) {
        if let Some(v) = sample(held_secs) {
            self.hold_secs = ewma(self.hold_secs, v, s.smoothing);
            self.hold_samples += 1;
        }
        if !saturated {
            self.last_saturated_release = None;
            return;
        }
        if let Some(prev) = self.last_saturated_release {
            let gap = (now - prev).num_milliseconds() as f64 / 1000.0;
            if let Some(v) = sample(gap) {
                (self.gap_secs, self.gap_sq_secs) = if self.gap_samples == 0 {
                    (v, v * v)
                } else {
                    let a = self.gap_weight(v, s);
                    (ewma(self.gap_secs, v, a), ewma(self.gap_sq_secs, v * v, a))
                };
                self.gap_samples = self.gap_samples.saturating_add(1);
            }
        }
        self.last_saturated_release = Some(now);
    }
}

impl Estimator {
    /// The weight of gap sample `v`: `smoothing`, or with `adaptive` the tracking signal
    /// |EWMA of errors| / EWMA of |errors| (1 when every recent gap erred the same way),
    /// kept within `smoothing ..= MAX_ADAPTIVE_WEIGHT`.
    fn gap_weight(&mut self, v: f64, s: &EcbtSettings) -> f64 {
        let err = v - self.gap_secs;
        self.gap_bias_secs = ewma(self.gap_bias_secs, err, s.smoothing);
        self.gap_dev_secs = ewma(self.gap_dev_secs, err.abs(), s.smoothing);
        if !s.adaptive || self.gap_dev_secs <= 0.0 {
            return s.smoothing;
        }
        let floor = s.smoothing.min(MAX_ADAPTIVE_WEIGHT);
        (self.gap_bias_secs.abs() / self.gap_dev_secs).clamp(floor, MAX_ADAPTIVE_WEIGHT)
    }
}

fn sample(v: f64) -> Option<f64> {
    (v.is_finite() && v >= 0.0).then(|| v.min(MAX_SAMPLE_SECS))
}

fn ewma(old: f64, new: f64, alpha: f64) -> f64 {
    old + alpha * (new - old)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn load(ahead: u64, in_progress: u64, pacing: u64) -> Load {
        Load {
            ahead,
            in_progress,
            pacing,
            min_delay_secs: 0,
            agent_first: false,
            margin: 0.0,
        }
    }

    #[test]
    fn free_slots_mean_no_wait_for_the_head_of_the_queue_only() {
        let e = Estimator::new(&EcbtSettings::default());
        assert_eq!(e.estimate(load(0, 0, 5)), 0);
        assert_eq!(e.estimate(load(0, 4, 5)), 0);
        // Three queued ahead despite free slots: they are not moving faster than one launch
        // per G = H / P = 60 s (this was 0 before).
        assert_eq!(e.estimate(load(3, 1, 5)), 180);
        // Minimum delay is a floor.
        let mut l = load(0, 0, 5);
        l.min_delay_secs = 90;
        assert_eq!(e.estimate(l), 90);
    }

    #[test]
    fn queue_beyond_pacing_waits_hold_time_over_pacing_per_callback() {
        // H = 300 s, P = 5 → one launch every 60 s.
        let e = Estimator::new(&EcbtSettings::default());
        assert_eq!(e.estimate(load(0, 5, 5)), 60);
        assert_eq!(e.estimate(load(4, 5, 5)), 300);
        // Nine queued and none in progress: the queue is not moving; the tenth waits nine
        // launches (this was 300 s, as if five of the nine were being dialled).
        assert_eq!(e.estimate(load(9, 0, 5)), 540);
    }

    #[test]
    fn agent_first_adds_the_agent_connect_time() {
        let e = Estimator::new(&EcbtSettings::default());
        let mut l = load(0, 5, 5);
        l.agent_first = true;
        assert_eq!(e.estimate(l), 60 + 30);
    }

    #[test]
    fn hold_and_connect_times_are_learned() {
        let s = EcbtSettings {
            smoothing: 0.5,
            ..EcbtSettings::default()
        };
        let mut e = Estimator::new(&s);
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        e.on_released(t0, 100.0, false, &s);
        assert_eq!(e.hold_secs, 200.0);
        e.on_agent_connected(10.0, &s);
        assert_eq!(e.connect_secs, 20.0);
        // Nonsense samples are ignored; huge ones are capped.
        e.on_agent_connected(f64::NAN, &s);
        e.on_agent_connected(-3.0, &s);
        assert_eq!(e.connect_samples, 1);
        e.on_released(t0, 1.0e9, false, &s);
        assert_eq!(e.hold_secs, (200.0 + MAX_SAMPLE_SECS) / 2.0);
    }

    #[test]
    fn measured_throughput_replaces_the_model_after_enough_gaps() {
        let s = EcbtSettings::default();
        let mut e = Estimator::new(&s);
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        // Saturated releases every 20 s (faster than H/P = 60 s).
        for i in 0..=MIN_GAP_SAMPLES {
            assert_eq!(e.interval_secs(5), e.hold_secs / 5.0);
            e.on_released(t0 + Duration::seconds(20 * i as i64), 300.0, true, &s);
        }
        assert_eq!(e.gap_samples, MIN_GAP_SAMPLES);
        assert_eq!(e.interval_secs(5), 20.0);
        // Every slot busy: the first release half a (constant) gap away, then two gaps.
        assert_eq!(e.estimate(load(2, 5, 5)), 10 + 40);
        // A release with a free slot breaks the chain: no gap spans idle time.
        e.on_released(t0 + Duration::seconds(500), 300.0, false, &s);
        assert_eq!(e.last_saturated_release, None);
        e.on_released(t0 + Duration::seconds(900), 300.0, true, &s);
        assert_eq!(e.gap_samples, MIN_GAP_SAMPLES);
    }

    /// Saturated releases at `gaps` (seconds apart) after one that starts the chain.
    fn fed(gaps: &[i64], s: &EcbtSettings) -> Estimator {
        let mut e = Estimator::new(s);
        let mut t = DateTime::<Utc>::UNIX_EPOCH;
        e.on_released(t, 300.0, true, s);
        for g in gaps {
            t += Duration::seconds(*g);
            e.on_released(t, 300.0, true, s);
        }
        e
    }

    #[test]
    fn the_first_release_is_the_mean_residual_gap_and_the_margin_adds_spreads() {
        let s = EcbtSettings {
            smoothing: 0.5,
            ..EcbtSettings::default()
        };
        // Constant gaps: nothing spreads, the first release comes half a gap after a random
        // moment.
        let e = fed(&[60; 8], &s);
        assert_eq!((e.gap_secs, e.gap_spread_secs()), (60.0, 0.0));
        assert_eq!(e.first_release_secs(2), 30.0);
        assert_eq!(e.estimate(load(3, 2, 2)), 30 + 3 * 60);
        assert_eq!(
            e.estimate(Load {
                margin: 2.0,
                ..load(3, 2, 2)
            }),
            30 + 3 * 60
        );
        // Gaps of 20 and 100 s: a random moment more likely falls in a long one, so the
        // first release comes after more than half the mean gap.
        let slow = EcbtSettings {
            smoothing: 0.1,
            ..s
        };
        let e = fed(&[20, 100].repeat(20), &slow);
        let (g, q) = (e.gap_secs, e.gap_sq_secs);
        assert!((55.0..=75.0).contains(&g), "G {g}");
        let r = e.first_release_secs(2);
        assert_eq!(r, q / (2.0 * g));
        assert!(r > g / 2.0 + 8.0, "R {r} for G {g}");
        let sigma = e.gap_spread_secs();
        assert!((30.0..=50.0).contains(&sigma), "σ {sigma}");
        // k = 4 launches to wait for: R + 3 G, and with a margin of 1, one σ√4 more.
        let mean = e.estimate(load(3, 2, 2));
        assert_eq!(mean, (r + 3.0 * g).ceil() as u64);
        assert_eq!(
            e.estimate(Load {
                margin: 1.0,
                ..load(3, 2, 2)
            }),
            (r + 3.0 * g + 2.0 * sigma).ceil() as u64
        );
    }

    #[test]
    fn a_queue_that_is_not_moving_is_charged_whole_gaps() {
        let s = EcbtSettings::default();
        let e = fed(&[20, 100, 20, 100, 20, 100], &s);
        let g = e.gap_secs;
        // One slot of two busy, three queued ahead: they are not being launched (closed,
        // not due), so no release is under way to be part-way through.
        assert_eq!(e.estimate(load(3, 1, 2)), (3.0 * g).ceil() as u64);
    }

    #[test]
    fn a_state_saved_before_the_squared_gaps_estimates_as_before() {
        let json = r#"{"hold_secs":300.0,"connect_secs":30.0,"gap_secs":40.0,
            "hold_samples":9,"connect_samples":0,"gap_samples":8,"last_saturated_release":null}"#;
        let e: Estimator = serde_json::from_str(json).unwrap();
        assert_eq!(e.gap_sq_secs, 0.0);
        assert_eq!(e.first_release_secs(2), 40.0);
        assert_eq!(
            e.estimate(Load {
                margin: 1.0,
                ..load(2, 2, 2)
            }),
            3 * 40
        );
    }

    #[test]
    fn an_adaptive_estimator_follows_a_change_in_throughput_faster() {
        let fixed = EcbtSettings::default();
        let adaptive = EcbtSettings {
            adaptive: true,
            ..fixed
        };
        // Gaps scattered around 60 s, then around 150 s (hold times grew at a peak).
        let mut before: Vec<i64> = [40, 80, 50, 70, 60].repeat(4);
        let after: Vec<i64> = [130, 170, 150].to_vec();
        let steady = fed(&before, &fixed).gap_secs;
        let steady_adaptive = fed(&before, &adaptive).gap_secs;
        // While the errors average out, both stay near 60 s.
        assert!((50.0..=70.0).contains(&steady), "{steady}");
        assert!(
            (50.0..=70.0).contains(&steady_adaptive),
            "{steady_adaptive}"
        );
        before.extend(&after);
        let slow = fed(&before, &fixed).gap_secs;
        let fast = fed(&before, &adaptive).gap_secs;
        // Three gaps after the change: the fixed weight has moved about half of the way
        // (105 s here), the adaptive one most of it (147 s).
        assert!(slow < 60.0 + 0.6 * 90.0, "fixed {slow}");
        assert!(fast > 60.0 + 0.75 * 90.0, "adaptive {fast}");
        assert!(fast <= 170.0);
    }
}
