//! CPU usage of a gateway from its processor tick counters.
//!
//! The device counts in coarse ticks (about one a second), so a ratio over a single poll would
//! jump between a few values; the sampler keeps a reference reading across polls instead.

/// CPU usage from the processor counters, taken over at least `MIN_TICKS` ticks, which may span
/// several polls; until then (and after the counters went back, a reboot) the ratio since boot.
#[derive(Default)]
pub struct CpuSampler {
    reference: Option<(f64, f64)>,
    ratio: Option<f64>,
}

const MIN_TICKS: f64 = 10.0;

fn busy_ratio(ticks: f64, idle: f64) -> Option<f64> {
    (ticks > 0.0).then(|| (1.0 - idle / ticks).clamp(0.0, 1.0))
}

impl CpuSampler {
    pub fn ratio(&mut self, total: Option<f64>, idle: Option<f64>) -> Option<f64> {
        let (total, idle) = (total?, idle?);
        match self.reference {
            Some((t0, i0)) if total >= t0 && idle >= i0 => {
                if total - t0 >= MIN_TICKS {
                    self.ratio = busy_ratio(total - t0, idle - i0);
                    self.reference = Some((total, idle));
                }
            }
            _ => {
                self.ratio = busy_ratio(total, idle);
                self.reference = Some((total, idle));
            }
        }
        self.ratio
    }
}
