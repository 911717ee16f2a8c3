//! Device words the exporter did not recognise in one poll (port, hook and SIP states, CDR
//! records without a readable time): counted by field, so a firmware that changes its words
//! shows up in one gauge instead of silently wrong series.

use fleet_core::snapshot::{Family, SnapshotBuilder};

pub(super) static UNRECOGNIZED: Family = Family::gauge(
    "openvox_unrecognized_values",
    "Values in the last poll the exporter did not recognise (kept raw where a series shows them).",
    &["field"],
);

/// Values the exporter did not recognise in one poll, by the field they came from.
#[derive(Debug, Default)]
pub struct Unrecognized {
    pub port_state: u32,
    pub hook_state: u32,
    pub sip_state: u32,
    pub cdr: u32,
}

impl Unrecognized {
    pub fn export(&self, b: &mut SnapshotBuilder) {
        for (field, n) in [
            ("port_state", self.port_state),
            ("hook_state", self.hook_state),
            ("sip_state", self.sip_state),
            ("cdr", self.cdr),
        ] {
            b.add(&UNRECOGNIZED, &[field], f64::from(n));
        }
    }
}
