//! What a test or the demo chooses before starting an OpenVox simulator: credentials, ports,
//! slots, the device's login delay and token lifetime, the CDR schedule, the `code` spelling and
//! seed, and the faults it can switch on afterwards. Plain data; nothing here runs.

use std::time::Duration;

/// A failure injected into answers other than `auth/login`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Accept the request and never answer (until the simulator is dropped).
    Hang,
    /// Cut the JSON body in half.
    Truncated,
    /// An HTML error page with status 200.
    Html,
    /// HTTP 500.
    Status500,
    /// `code` 200 with `data: []`, as the device writes an empty PHP array.
    EmptyData,
    /// This `code` (not 200) with `data: []`.
    Code(i64),
    /// `sys_info/interface` with nested strings that are empty or not JSON.
    GarbledNested,
    /// `sys_info/interface` naming every port's signalling, alarms and echo canceller and every
    /// SIP registration state with words never seen before, new in each answer.
    InventedWords,
    /// `sys_info/cdr` lists this many distinct records (180,000 are about 4 MB), all ended in
    /// the same second, the duplicate check's worst case.
    FloodedCdr(usize),
}

/// CDR dispositions, as the device spells them.
pub const DISPOSITIONS: [&str; 5] = ["ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"];

#[derive(Clone, Debug)]
pub struct OpenvoxSimConfig {
    pub username: String,
    pub password: String,
    pub fxs_ports: usize,
    pub fxo_ports: usize,
    /// Interface board slots (`maxslots`); more than one makes a `netbus` platform.
    pub slots: usize,
    /// Spans per board (`maxspans`; 1 on analog boards). Each span numbers its ports from 1,
    /// so port numbers repeat across spans.
    pub spans: usize,
    /// Logins and whitelisted calls wait a random time up to this (the device: 2 s).
    pub login_delay: Duration,
    /// A token stops working this long after its login (the device default: 600 s).
    pub token_ttl: Duration,
    /// A token also stops working after this many calls, when set.
    pub token_max_calls: Option<u64>,
    /// A new CDR record this often, when set.
    pub cdr_every: Option<Duration>,
    /// `"code":"200"` instead of `"code":200` (some firmware).
    pub code_as_string: bool,
    /// Seeds serial numbers and the values that move.
    pub seed: u64,
}

impl Default for OpenvoxSimConfig {
    fn default() -> Self {
        OpenvoxSimConfig {
            username: "admin".into(),
            password: "admin".into(),
            fxs_ports: 4,
            fxo_ports: 4,
            slots: 1,
            spans: 1,
            login_delay: Duration::from_secs(2),
            token_ttl: Duration::from_secs(600),
            token_max_calls: None,
            cdr_every: Some(Duration::from_secs(30)),
            code_as_string: false,
            seed: 1,
        }
    }
}
