//! What a test or the demo chooses before starting an IoT platform simulator: the app's
//! credentials, the fleet size and cards per device, the rate limit, quirks and seed, and the
//! faults it can switch on afterwards. Plain data; nothing here runs.

/// A failure injected into answers (after the rate limit, before the signature check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Accept the request and never answer (until the simulator is dropped).
    Hang,
    /// Cut the JSON body in half (the HTTP framing stays valid).
    Truncated,
    /// An HTML error page with status 200, as a proxy in front of the platform sends.
    Html,
    /// HTTP 500 with an HTML page.
    Status500,
    /// HTTP 429 on every request, as when another client of the same app uses up the limit.
    Status429,
    /// Every device answers with about 7 MB of empty SIM cards `{}`.
    HugeSimList,
    /// Every other request (at random) is refused with a new random error code.
    RandomCodes,
}

#[derive(Clone, Debug)]
pub struct IotSimConfig {
    pub app_id: String,
    pub app_secret: String,
    /// Devices the account holds, numbered by [`IotSim::device_no`].
    pub devices: usize,
    /// SIM cards per device (1..=3); `None` gives device `i` `1 + i % 3` cards.
    pub sims_per_device: Option<usize>,
    /// Requests per rolling second the platform answers; more get HTTP 429. `None`: no limit.
    pub rate_limit: Option<usize>,
    /// Emit the real-world quirks (see the module documentation).
    pub quirks: bool,
    /// Cards the account holds in no device, asked only through the batch card calls.
    pub loose_cards: usize,
    /// Seeds values, so two runs show the same fleet.
    pub seed: u64,
}

impl Default for IotSimConfig {
    fn default() -> Self {
        IotSimConfig {
            app_id: "qwe123".into(),
            app_secret: "C55rqUa6AvKyuNMYYvoYCSR1BBfSPWK7".into(),
            devices: 5,
            sims_per_device: None,
            rate_limit: Some(5),
            quirks: true,
            loose_cards: 0,
            seed: 1,
        }
    }
}
