//! What a test or the demo chooses before starting an iKuai simulator: credentials, firmware
//! envelope, entity counts, quirks and seed, and the faults it can switch on afterwards. Plain
//! data; nothing here runs.

/// Which answer envelope the simulated firmware speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// `{"Result":30000,"ErrMsg":"Success","Data":{..}}`
    V3,
    /// `{"code":0,"message":"Success","results":{..}}`
    V4,
}

/// A failure injected into `/Action/call` answers (login is never affected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Accept the request and never answer (until the simulator is dropped).
    Hang,
    /// Cut the JSON body in half (the HTTP framing stays valid).
    Truncated,
    /// An HTML error page with status 200, as a proxy in front of a router sends.
    Html,
    /// HTTP 500.
    Status500,
    /// Client lists (`monitor_lanip`, `monitor_lanipv6`) answer every page with about 7 MB of
    /// empty rows `{}` and a `total` of a trillion, whatever the page asked for.
    HugeClientPages,
}

#[derive(Clone, Debug)]
pub struct IkuaiSimConfig {
    pub username: String,
    pub password: String,
    pub firmware: Firmware,
    /// IPv4 LAN clients.
    pub lan_clients: usize,
    /// IPv6 LAN clients.
    pub lan_clients_v6: usize,
    /// WAN lines `wan1..wanN`; there is always one `lan1` besides.
    pub wan_lines: usize,
    pub hostname: String,
    /// Emit every real-world quirk from the notes; off, a plain, correct router whose real
    /// strings stay strings.
    pub quirks: bool,
    /// wan1's download total starts past 1e14 bytes (a long-running, busy line), where the
    /// router prints it in exponent form.
    pub large_totals: bool,
    /// The router's `upgrade` answer offers a newer system version and protocol library.
    pub update_available: bool,
    /// Seeds identities and base counters, so two runs show the same fleet.
    pub seed: u64,
    /// The token API's bearer token (4.x firmware only): with none, every token request is 401.
    pub token: Option<String>,
    /// Serve over TLS with a fresh self-signed certificate, as routers do.
    pub tls: bool,
    /// The router has wireless (managed access points and their clients). Without it the token
    /// API's `/monitoring/wireless-statistics` answers 404 with the spec's `NotFound` body.
    pub wireless: bool,
    /// The firmware has the token API's `/system/disks`; without it that path answers 404.
    pub system_disks: bool,
}

impl Default for IkuaiSimConfig {
    fn default() -> Self {
        IkuaiSimConfig {
            username: "admin".into(),
            password: "admin".into(),
            firmware: Firmware::V3,
            lan_clients: 8,
            lan_clients_v6: 2,
            wan_lines: 2,
            hostname: "iKuai".into(),
            quirks: true,
            large_totals: false,
            update_available: false,
            seed: 1,
            token: None,
            tls: false,
            wireless: true,
            system_disks: true,
        }
    }
}

impl IkuaiSimConfig {
    /// Router `i` of a simulated fleet, as the benchmarks run it: `clients` IPv4 LAN clients, and
    /// its own hostname and values.
    pub fn fleet_router(i: usize, clients: usize) -> Self {
        IkuaiSimConfig {
            lan_clients: clients,
            lan_clients_v6: 0,
            hostname: format!("router-{i:02}"),
            seed: i as u64 + 1,
            ..IkuaiSimConfig::default()
        }
    }
}
