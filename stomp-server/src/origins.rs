//! Which web pages may open STOMP over WebSocket: browsers do not protect WebSocket with CORS,
//! and send the page's cookies with every upgrade, so without a check any page a user visits
//! could talk to the server as that user (cross-site WebSocket hijacking). The upgrade's
//! `Origin` is checked against the request's own `Host` (same origin, always allowed) and a
//! list of allowed origins, as Spring's `setAllowedOrigins` does.

use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};

/// The origins whose pages may upgrade to STOMP over WebSocket
/// ([`ServerBuilder::allowed_origins`](crate::ServerBuilder::allowed_origins)). By default only
/// the server's own pages (the `Origin` host and port equal to `Host`), and clients that send
/// no `Origin` (programs, not browsers).
///
/// ```
/// use stomp_server::AllowedOrigins;
///
/// let origins = AllowedOrigins::same_origin()
///     .allow("https://app.example.com")
///     .allow("https://*.example.org");
/// assert!(origins.allows(Some("https://app.example.com"), Some("stomp.example.com")));
/// assert!(origins.allows(Some("https://eu.example.org"), Some("stomp.example.com")));
/// assert!(!origins.allows(Some("https://example.org"), Some("stomp.example.com")));
/// assert!(!origins.allows(Some("http://evil.example"), Some("stomp.example.com")));
/// assert!(origins.allows(Some("http://stomp.example.com"), Some("stomp.example.com")));
/// assert!(origins.allows(None, Some("stomp.example.com")));
/// ```
#[derive(Clone, Debug)]
pub struct AllowedOrigins {
    /// Allowed besides the same origin: `scheme://host[:port]`, a host starting `*.` for any
    /// subdomain.
    listed: Vec<String>,
    any: bool,
    missing: bool,
}

impl Default for AllowedOrigins {
    fn default() -> Self {
        AllowedOrigins::same_origin()
    }
}

impl AllowedOrigins {
    /// The server's own pages, and clients that send no `Origin`.
    pub fn same_origin() -> AllowedOrigins {
        AllowedOrigins {
            listed: Vec::new(),
            any: false,
            missing: true,
        }
    }

    /// Every origin: the check is off (for a server no browser reaches, or one behind a proxy
    /// that checks).
    pub fn any() -> AllowedOrigins {
        AllowedOrigins {
            any: true,
            ..AllowedOrigins::same_origin()
        }
    }

    /// Allows pages from `origin` too: `scheme://host[:port]` as a browser sends it, such as
    /// `https://app.example.com`, or with `*.` before the host, such as
    /// `https://*.example.com`, for every subdomain (not the domain itself).
    #[must_use]
    pub fn allow(mut self, origin: &str) -> AllowedOrigins {
        self.listed
            .push(origin.trim().trim_end_matches('/').to_ascii_lowercase());
        self
    }

    /// Refuses upgrades without an `Origin` header too (by default they are let through:
    /// browsers always send one, other programs need not).
    #[must_use]
    pub fn refuse_missing(mut self) -> AllowedOrigins {
        self.missing = false;
        self
    }

    /// Whether an upgrade with this `Origin` (if any) to this `Host` is allowed.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        if self.any {
            return true;
        }
        let Some(origin) = origin else {
            return self.missing;
        };
        let origin = origin.trim().to_ascii_lowercase();
        let Some((scheme, authority)) = origin.split_once("://") else {
            // `null` (a sandboxed page, a file) and anything unreadable.
            return false;
        };
        let same = host.is_some_and(|host| {
            normalize(scheme, authority) == normalize(scheme, &host.trim().to_ascii_lowercase())
        });
        same || self
            .listed
            .iter()
            .any(|allowed| listed(allowed, scheme, authority))
    }

    /// Checks an upgrade's headers; the refusal says why.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), String> {
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let (origin, host) = (text(ORIGIN), text(HOST));
        if self.allows(origin, host) {
            return Ok(());
        }
        Err(match origin {
            Some(origin) => format!(
                "origin {origin} may not open STOMP over WebSocket here: only this server's own pages and the origins it allows"
            ),
            None => "an upgrade without an Origin header is refused here".to_owned(),
        })
    }
}

/// `host:port`, the port left out when it is the scheme's default.
fn normalize(scheme: &str, authority: &str) -> String {
    let default = match scheme {
        "https" | "wss" => ":443",
        _ => ":80",
    };
    authority
        .strip_suffix(default)
        .unwrap_or(authority)
        .to_owned()
}

/// Whether the listed origin `allowed` admits `scheme://authority`.
fn listed(allowed: &str, scheme: &str, authority: &str) -> bool {
    let Some((allowed_scheme, allowed_authority)) = allowed.split_once("://") else {
        return false;
    };
    if allowed_scheme != scheme {
        return false;
    }
    let (allowed_authority, authority) = (
        normalize(scheme, allowed_authority),
        normalize(scheme, authority),
    );
    match allowed_authority.strip_prefix("*.") {
        // Any subdomain: at least one more label before the domain.
        Some(domain) => authority
            .strip_suffix(domain)
            .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        None => allowed_authority == authority,
    }
}
