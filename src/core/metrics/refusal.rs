//! Why a control refused a request: the `reason` label of
//! `http_requests_refused_total`, and the codes the ops gate and the
//! binding pass for it.

/// Why a control refused a request, for `http_requests_refused_total`'s
/// `reason` label. The codes are the ops gate's decision codes
/// ([`crate::core::ops::Decision::code`]) for the three ops controls, so a
/// decision passes through unchanged; `Rollout` is a request a rollout
/// kept out of its new version with no stable one to send it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Refused by safe mode.
    SafeMode = 1,
    /// Refused by the brownout level.
    Brownout = 2,
    /// Refused because its agent is quarantined.
    Quarantine = 3,
    /// Kept out of a rollout's new version with no stable one to send it to.
    Rollout = 4,
}

impl Refusal {
    /// Every refusal, in code order.
    pub const ALL: [Refusal; 4] = [
        Refusal::SafeMode,
        Refusal::Brownout,
        Refusal::Quarantine,
        Refusal::Rollout,
    ];
    /// A batch entry's status carries its refusal as `status + STRIDE * code`,
    /// so a refused request stays one entry (counted once, in order).
    pub const STRIDE: u32 = 1000;

    /// The refusal's code (1 to 4), as the binding and the ops gate pass it.
    ///
    /// ```
    /// use reliability_core::core::metrics::Refusal;
    /// assert_eq!(Refusal::from_code(Refusal::Rollout.code()), Some(Refusal::Rollout));
    /// ```
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The refusal of a code, `None` for a code that names none.
    pub fn from_code(code: u32) -> Option<Refusal> {
        Refusal::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::SafeMode => "safe_mode",
            Refusal::Brownout => "brownout",
            Refusal::Quarantine => "quarantine",
            Refusal::Rollout => "rollout",
        }
    }
}
