//! The label values a Komari server chooses on value series (not descriptions): how a node's
//! traffic allowance is counted and the currency of its price. Each label keeps at most
//! `max_label_values` distinct values per target; past the cap a new value reads as `other` and
//! is counted in `fleet_device_label_values_folded_total`, so a server that makes values up
//! cannot grow the series it causes without end. The values seen live as long as the driver.

use crate::util::{LabelFold, DEFAULT_MAX_LABEL_VALUES};
use fleet_core::snapshot::SnapshotBuilder;

/// The ways of counting traffic the API documents: always themselves.
const LIMIT_TYPES: &[&str] = &["", "sum", "max", "min", "up", "down"];

/// One server's device-chosen label values, each label capped.
#[derive(Debug)]
pub struct NodeWords {
    pub(super) limit_type: LabelFold,
    pub(super) currency: LabelFold,
}

impl NodeWords {
    /// At most `cap` distinct values per label besides the documented ones.
    pub fn new(cap: usize) -> Self {
        NodeWords {
            limit_type: LabelFold::new("komari_node_traffic_limit_bytes", "type", cap, LIMIT_TYPES),
            currency: LabelFold::new("komari_node_price", "currency", cap, &[""]),
        }
    }

    /// `fleet_device_label_values_folded_total` for both labels (0 until a value folds).
    pub fn export(&self, b: &mut SnapshotBuilder) {
        self.limit_type.export(b);
        self.currency.export(b);
    }
}

impl Default for NodeWords {
    fn default() -> Self {
        NodeWords::new(DEFAULT_MAX_LABEL_VALUES)
    }
}
