//! The label values a gateway chooses: port signalling and echo-canceller names, alarm words
//! and SIP registration words. Each label keeps at most `max_label_values` distinct values per
//! target; past the cap a new word reads as `other` and is counted in
//! `fleet_device_label_values_folded_total`, so a gateway that invents words cannot grow the
//! series (or the churn Prometheus stores) without end. The words seen live as long as the
//! driver, like the counters of the IoT codes folded the same way.

use crate::util::{LabelFold, DEFAULT_MAX_LABEL_VALUES};
use fleet_core::snapshot::SnapshotBuilder;

/// Alarm words `lsdahdi` prints, as label values; `ok` stands for none. Always themselves:
/// they are the words the exporter knows, not ones a gateway made up.
pub(super) const ALARMS: [&str; 6] = ["ok", "red", "yellow", "blue", "recovering", "notopen"];

/// One gateway's device-chosen label values, each label capped.
#[derive(Debug)]
pub struct DeviceWords {
    pub(super) signalling: LabelFold,
    pub(super) echo_canceller: LabelFold,
    pub(super) alarm: LabelFold,
    pub(super) sip_state: LabelFold,
}

impl DeviceWords {
    /// At most `cap` distinct values per label (an empty value, "none", is not counted).
    pub fn new(cap: usize) -> Self {
        const PORT_INFO: &str = "openvox_port_info";
        DeviceWords {
            signalling: LabelFold::new(PORT_INFO, "signalling", cap, &[""]),
            echo_canceller: LabelFold::new(PORT_INFO, "echo_canceller", cap, &[""]),
            alarm: LabelFold::new("openvox_port_alarm", "alarm", cap, &ALARMS),
            sip_state: LabelFold::new("openvox_sip_registration_info", "state", cap, &[""]),
        }
    }

    /// `fleet_device_label_values_folded_total` for every capped label (0 until a word folds).
    pub fn export(&self, b: &mut SnapshotBuilder) {
        for fold in [
            &self.signalling,
            &self.echo_canceller,
            &self.alarm,
            &self.sip_state,
        ] {
            fold.export(b);
        }
    }
}

impl Default for DeviceWords {
    fn default() -> Self {
        DeviceWords::new(DEFAULT_MAX_LABEL_VALUES)
    }
}
