//! The router's disks as the token API's `/system/disks` lists them: the spec's example (a 1 TB
//! data disk of four ext4 partitions and the 4 GB system disk), sizes in bytes as integers and
//! the mounted file systems' byte counts as digit strings, as the spec types them. The behaviour
//! log and the system partition fill slowly with time, so usage moves on a dashboard.

use serde_json::{json, Value};

use super::World;

struct Part {
    name: &'static str,
    /// 0 primary, 1 extended, 2 logical.
    kind: u8,
    uuid: &'static str,
    size: u64,
    /// `0` unused, `1` storage, `2` 有余繁星, `3` video cache, `4` behaviour log.
    purpose: &'static str,
    mount_name: &'static str,
    total: u64,
    used: u64,
    avail: u64,
    /// Bytes written per second.
    growth: f64,
}

struct DiskRow {
    disk: &'static str,
    model: &'static str,
    system: u8,
    size: u64,
    parts: &'static [Part],
}

const GIB_249: u64 = 249_108_103_168;
const MT_244: u64 = 244_062_085_120;

const DISKS: &[DiskRow] = &[
    DiskRow {
        disk: "sda",
        model: "WDC  WDS100T2B0A",
        system: 0,
        size: 1_000_204_886_016,
        parts: &[
            Part {
                name: "sda1",
                kind: 0,
                uuid: "b2f90854-8616-4c83-953f-caf8dfdf6866",
                size: GIB_249,
                purpose: "0",
                mount_name: "",
                total: MT_244,
                used: 28_672,
                avail: 231_589_875_712,
                growth: 0.0,
            },
            Part {
                name: "sda2",
                kind: 0,
                uuid: "6b32b2eb-e04a-4020-aef6-6d4f3a2a03fa",
                size: GIB_249,
                purpose: "4",
                mount_name: "",
                total: MT_244,
                used: 98_304,
                avail: 231_589_806_080,
                growth: 4096.0,
            },
            Part {
                name: "sda3",
                kind: 0,
                uuid: "d31a6f82-ea6c-4c9c-a851-0e4a25d926fb",
                size: GIB_249,
                purpose: "1",
                mount_name: "test-001",
                total: MT_244,
                used: 36_864,
                avail: 231_589_867_520,
                growth: 0.0,
            },
            Part {
                name: "sda4",
                kind: 0,
                uuid: "775cd0cb-f55e-40cc-ab2b-136f540bddab",
                size: 252_879_527_936,
                purpose: "1",
                mount_name: "test-002",
                total: 247_772_393_472,
                used: 28_672,
                avail: 235_111_612_416,
                growth: 0.0,
            },
        ],
    },
    DiskRow {
        disk: "sdb",
        model: "SanDisk SSD P4 4",
        system: 1,
        size: 4_011_614_208,
        parts: &[
            Part {
                name: "sdb3",
                kind: 0,
                uuid: "4cfe26af-180a-4692-8a96-50f3e6e70cbd",
                size: 52_428_800,
                purpose: "0",
                mount_name: "",
                total: 45_520_896,
                used: 1_635_328,
                avail: 40_215_552,
                growth: 0.0,
            },
            Part {
                name: "sdb5",
                kind: 2,
                uuid: "ff13e131-8192-4c49-a027-5ef217c2e277",
                size: 3_899_416_576,
                purpose: "0",
                mount_name: "",
                total: 3_755_843_584,
                used: 123_707_392,
                avail: 3_420_389_376,
                growth: 64.0,
            },
        ],
    },
];

impl World<'_> {
    /// `/system/disks` `results`.
    pub(in crate::ikuai) fn system_disks(&self) -> Value {
        let rows: Vec<Value> = DISKS
            .iter()
            .map(|d| {
                let parts: Vec<Value> = d.parts.iter().map(|p| self.partition(p)).collect();
                json!({
                    "type": "dos",
                    "disk": d.disk,
                    "system": d.system,
                    "block_size": 512,
                    "creating": 0,
                    "partition": parts,
                    "model": d.model,
                    "size": d.size,
                })
            })
            .collect();
        json!({ "data": rows })
    }

    fn partition(&self, p: &Part) -> Value {
        let written = ((p.growth * self.t) as u64).min(p.avail);
        let (used, avail) = (p.used + written, p.avail - written);
        let uses = (used as f64 * 100.0 / p.total as f64).round() as u64;
        json!({
            "name": p.name,
            "type": p.kind,
            "filesys": {"fs_uuid": p.uuid, "fs_type": "ext4"},
            "size": p.size,
            "mounted": {
                "mt_purpose": p.purpose,
                "mt_total": p.total.to_string(),
                "mt_name": p.mount_name,
                "mt_used": used.to_string(),
                "mt_uses": uses.to_string(),
                "mt_avail": avail.to_string(),
            },
            "formating": 0,
        })
    }
}
