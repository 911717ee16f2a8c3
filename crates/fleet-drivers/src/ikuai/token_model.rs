//! Wire types of the token API's optional answers: `/system/disks` and
//! `/monitoring/wireless-statistics` (specs `system-disks.json` and `monitoring-wireless.json`).
//! Lenient like the other token types: every field may be missing or mistyped, numbers may come
//! as strings (the disks' `mt_*` byte counts always do), and a wrong shape reads as unknown.

use serde::Deserialize;

use crate::util::lenient;

/// `/system/disks` `results`: `{data: [disk]}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DisksAnswer {
    #[serde(deserialize_with = "lenient::rows")]
    pub data: Vec<Disk>,
}

/// One disk and its partitions; sizes in bytes.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Disk {
    /// The device name (`sda`, `nda`): the disk's identity.
    #[serde(deserialize_with = "lenient::string")]
    pub disk: String,
    #[serde(deserialize_with = "lenient::string")]
    pub model: String,
    /// The partition table (`dos`, `gpt`).
    #[serde(rename = "type", deserialize_with = "lenient::string")]
    pub table: String,
    /// 1 on the disk the firmware runs from.
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub system: Option<bool>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub size: Option<f64>,
    #[serde(deserialize_with = "lenient::rows")]
    pub partition: Vec<Partition>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Partition {
    /// `sda1`: unique on the router, the partition's identity.
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub size: Option<f64>,
    #[serde(deserialize_with = "lenient::object")]
    pub filesys: Filesystem,
    #[serde(deserialize_with = "lenient::object")]
    pub mounted: Mount,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Filesystem {
    #[serde(deserialize_with = "lenient::string")]
    pub fs_type: String,
}

/// The mounted file system: byte counts as digit strings, `mt_purpose` a code.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Mount {
    #[serde(deserialize_with = "lenient::string")]
    pub mt_purpose: String,
    /// The name the operator gave the storage (may change: a description).
    #[serde(deserialize_with = "lenient::string")]
    pub mt_name: String,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub mt_total: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub mt_used: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub mt_avail: Option<f64>,
}

impl Mount {
    /// What the partition is used for, from the spec's `mt_purpose` codes; an unknown code
    /// is kept as it came.
    pub fn purpose(&self) -> &str {
        match self.mt_purpose.trim() {
            "0" => "unused",
            "1" => "storage",
            "2" => "fanxing",
            "3" => "video_cache",
            "4" => "behavior_log",
            other => other,
        }
    }
}

/// `/monitoring/wireless-statistics` `results`. Both parts missing (or unreadable) means the
/// router has no wireless statistics to give.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WirelessAnswer {
    #[serde(deserialize_with = "lenient::object")]
    pub ap_status: Option<ApStatus>,
    #[serde(deserialize_with = "lenient::object")]
    pub clt_status: Option<ClientStatus>,
}

impl WirelessAnswer {
    pub fn is_empty(&self) -> bool {
        self.ap_status.is_none() && self.clt_status.is_none()
    }
}

/// The managed access points (the spec spells `ap_perfer_5g`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ApStatus {
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub ap_count: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub ap_online: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub ap_perfer_5g: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub ap_roaming: Option<f64>,
}

/// The wireless clients (terminals) of those access points.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClientStatus {
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub clt_count: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub clt_count_2g: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub clt_count_5g: Option<f64>,
    /// The most online at once over the last 24 hours.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub clt_max_online: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub clt_active: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub clt_inactive: Option<f64>,
}
