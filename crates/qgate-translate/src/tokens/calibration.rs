//! Per-model correction of the token estimate: an exponentially weighted moving average of
//! `actual / estimate`, where `actual` comes from the upstream's context usage.
//!
//! The ratio is clamped to `[0.5, 2.0]` so one odd observation (an upstream that counts a
//! cached prefix differently, a tiny request dominated by fixed overhead) cannot make the
//! gateway report absurd usage; the gateway keeps one `Calibration` per upstream model.

/// Lower bound of the correction ratio.
pub const MIN_RATIO: f64 = 0.5;
/// Upper bound of the correction ratio.
pub const MAX_RATIO: f64 = 2.0;
/// Weight of a new observation: about the last ten requests dominate, so a model change
/// upstream is absorbed within a few minutes of traffic without flapping per request.
const SMOOTHING: f64 = 0.2;
/// Estimates below this are dominated by per-message overhead and say little about the
/// tokenizer, so they are not used to calibrate.
const MIN_ESTIMATE_FOR_OBSERVATION: u64 = 16;

/// The running ratio of observed to estimated input tokens for one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    ratio: f64,
    observations: u64,
}

impl Calibration {
    /// A neutral calibration (ratio 1.0).
    pub fn new() -> Self {
        Self {
            ratio: 1.0,
            observations: 0,
        }
    }

    /// Feeds one observation: the estimate made before the request and the count the
    /// upstream reported afterwards. Zero, tiny or non-positive pairs are ignored.
    pub fn observe(&mut self, estimate: u64, actual: u64) {
        if estimate < MIN_ESTIMATE_FOR_OBSERVATION || actual == 0 {
            return;
        }
        let sample = (actual as f64 / estimate as f64).clamp(MIN_RATIO, MAX_RATIO);
        self.ratio = if self.observations == 0 {
            // The first observation replaces the neutral prior outright; averaging it with
            // 1.0 would keep a known-wrong estimate for the next several requests.
            sample
        } else {
            self.ratio + SMOOTHING * (sample - self.ratio)
        }
        .clamp(MIN_RATIO, MAX_RATIO);
        self.observations = self.observations.saturating_add(1);
    }

    /// The calibrated value of a raw estimate.
    pub fn apply(&self, estimate: u64) -> u64 {
        (estimate as f64 * self.ratio).round() as u64
    }

    /// The current ratio (1.0 until the first observation).
    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// How many observations were used.
    pub fn observations(&self) -> u64 {
        self.observations
    }
}

impl Default for Calibration {
    fn default() -> Self {
        Self::new()
    }
}
