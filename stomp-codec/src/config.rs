//! Decoding settings: the version in force, limits and leniency.

use crate::{Limits, Version};

/// How incoming bytes are decoded: the negotiated version, the [`Limits`], and whether undefined
/// escapes are tolerated.
///
/// ```
/// use stomp_codec::{Config, Limits, Version};
///
/// let config = Config::new(Version::V1_1)
///     .with_limits(Limits::default().with_max_headers(32))
///     .keep_undefined_escapes(true);
/// assert_eq!(config.version(), Version::V1_1);
/// assert_eq!(config.limits().max_headers(), 32);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    version: Version,
    limits: Limits,
    keep_undefined_escapes: bool,
}

impl Config {
    /// Strict decoding of `version` with the default [`Limits`].
    pub fn new(version: Version) -> Config {
        Config {
            version,
            limits: Limits::default(),
            keep_undefined_escapes: false,
        }
    }

    /// The same settings with other limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Config {
        self.limits = limits;
        self
    }

    /// The same settings for another version.
    #[must_use]
    pub fn with_version(mut self, version: Version) -> Config {
        self.version = version;
        self
    }

    /// Whether an undefined escape such as `\t` is kept verbatim (`true`) or refused with
    /// [`Error::UndefinedEscape`](crate::Error::UndefinedEscape) (`false`, the default). Real
    /// peers differ: ActiveMQ accepts `\t`, RabbitMQ closes the connection.
    #[must_use]
    pub fn keep_undefined_escapes(mut self, keep: bool) -> Config {
        self.keep_undefined_escapes = keep;
        self
    }

    /// The version whose rules apply.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether undefined escapes are kept verbatim rather than refused.
    pub fn keeps_undefined_escapes(&self) -> bool {
        self.keep_undefined_escapes
    }
}

impl Default for Config {
    /// Strict STOMP 1.2 with the default limits.
    fn default() -> Self {
        Config::new(Version::V1_2)
    }
}
