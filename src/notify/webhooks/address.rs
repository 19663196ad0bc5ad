//! The SSRF guard: a webhook makes the server send requests to an address
//! a user chose, so the addresses that reach the server's own network
//! (loopback, private ranges, link-local and the cloud metadata service at
//! 169.254.169.254, CGNAT) are refused unless the operator allows them
//! (`--webhook-allow-private`). The host is resolved and every address
//! checked when the webhook is created and again by the resolver each
//! delivery connects through, so a name that later resolves elsewhere (DNS
//! rebinding) is refused too; redirects are never followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

use super::WebhookError;

/// Longest accepted URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// Why an address is refused; `None`: it is a public unicast address.
/// `allow_private` admits the ranges an operator may mean (a receiver on
/// the same host or network), never those that are no destination at all.
pub fn refusal(ip: IpAddr, allow_private: bool) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    let (always, private) = match ip {
        IpAddr::V4(v4) => (never_v4(v4), private_v4(v4)),
        IpAddr::V6(v6) => (never_v6(v6), private_v6(v6)),
    };
    always.or(if allow_private { None } else { private })
}

fn never_v4(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_unspecified() || ip.octets()[0] == 0 {
        Some("an unspecified address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_broadcast() || ip.octets()[0] >= 240 {
        Some("a broadcast or reserved address")
    } else {
        None
    }
}

fn private_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_link_local() {
        Some("a link-local address (the cloud metadata service among them)")
    } else if ip.is_private() {
        Some("a private address (RFC 1918)")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a carrier-grade NAT address (RFC 6598)")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        Some("an IETF protocol assignment address")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("a benchmarking address")
    } else {
        None
    }
}

fn never_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("an unspecified address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else {
        None
    }
}

fn private_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("a loopback address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a unique local address (ULA)")
    } else if first & 0xffc0 == 0xfec0 {
        Some("a site-local address")
    } else if ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 reaches the IPv4 address in its last 32 bits.
        let [.., c, d] = ip.segments();
        let v4 = Ipv4Addr::from((u32::from(c) << 16) | u32::from(d));
        private_v4(v4).or(never_v4(v4))
    } else if ip.segments()[..3] == [0x64, 0xff9b, 1] {
        // RFC 8215's local-use NAT64 prefix: a gateway of this network's
        // own, which may translate to any IPv4 address behind it.
        Some("a local-use NAT64 address")
    } else if first == 0x2002 {
        // 6to4 carries an IPv4 address in its next 32 bits.
        let [_, a, b, ..] = ip.segments();
        let v4 = Ipv4Addr::from((u32::from(a) << 16) | u32::from(b));
        private_v4(v4).or(never_v4(v4))
    } else {
        None
    }
}

/// Parses a webhook's URL: http or https, a host, no credentials, at most
/// [`MAX_URL_BYTES`].
pub fn parse_url(raw: &str) -> Result<Url, WebhookError> {
    let raw = raw.trim();
    if raw.len() > MAX_URL_BYTES {
        return Err(WebhookError::Invalid(format!(
            "`url` must be at most {MAX_URL_BYTES} bytes"
        )));
    }
    let url = Url::parse(raw).map_err(|e| WebhookError::Invalid(format!("`url` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(WebhookError::Refused(format!(
            "`url` must be http or https, not {}",
            url.scheme()
        )));
    }
    if url.host().is_none() {
        return Err(WebhookError::Invalid("`url` has no host".into()));
    }
    // Parsing may percent-encode: the stored form is what must fit.
    if url.as_str().len() > MAX_URL_BYTES {
        return Err(WebhookError::Invalid(format!(
            "`url` must be at most {MAX_URL_BYTES} bytes once encoded"
        )));
    }
    // They would be sent with every delivery and shown in every listing;
    // the signature is what authenticates vigil to the receiver.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(WebhookError::Invalid(
            "`url` must not hold a user name or password".into(),
        ));
    }
    Ok(url)
}

/// The host's addresses, each of them allowed; the error names the first
/// refused one.
pub async fn resolve_allowed(url: &Url, allow_private: bool) -> Result<Vec<SocketAddr>, WebhookError> {
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = match (literal(url), url.host_str()) {
        (Some(ip), _) => vec![SocketAddr::new(ip, port)],
        (None, Some(name)) => lookup(name, port).await?,
        (None, None) => return Err(WebhookError::Invalid("`url` has no host".into())),
    };
    check(&addrs, allow_private)?;
    Ok(addrs)
}

/// Longest wait for a host's addresses: the system resolver may retry for
/// much longer, and a request must not hang on it.
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

async fn lookup(name: &str, port: u16) -> Result<Vec<SocketAddr>, WebhookError> {
    let addrs: Vec<SocketAddr> = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((name, port)))
        .await
        .map_err(|_| {
            WebhookError::Refused(format!(
                "`{name}` did not resolve within {} s",
                LOOKUP_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| WebhookError::Refused(format!("`{name}` does not resolve: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(WebhookError::Refused(format!("`{name}` has no address")));
    }
    Ok(addrs)
}

fn check(addrs: &[SocketAddr], allow_private: bool) -> Result<(), WebhookError> {
    for addr in addrs {
        if let Some(why) = refusal(addr.ip(), allow_private) {
            return Err(WebhookError::Refused(format!(
                "{} is {why}; webhooks may only reach public addresses unless the server runs with --webhook-allow-private",
                addr.ip()
            )));
        }
    }
    Ok(())
}

/// The resolver deliveries connect through: the same check at every
/// connection, so that what was checked is what is connected to.
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs = lookup(name.as_str(), 0).await?;
            check(&addrs, allow_private)?;
            Ok::<Addrs, Box<dyn std::error::Error + Send + Sync>>(Box::new(addrs.into_iter()))
        })
    }
}

/// The HTTP client of deliveries: every connection through the guard, no
/// redirects, no proxy from the environment (a proxy would resolve the
/// host itself, past the guard), 10 s for the whole exchange.
pub fn client(allow_private: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(super::DELIVERY_TIMEOUT)
        .user_agent(concat!("vigil-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client without TLS roots of its own builds")
}

/// A URL whose host is an address literal never meets the resolver: it is
/// checked here before each delivery.
pub fn check_literal(url: &Url, allow_private: bool) -> Result<(), WebhookError> {
    let port = url.port_or_known_default().unwrap_or(80);
    match literal(url) {
        Some(ip) => check(&[SocketAddr::new(ip, port)], allow_private),
        None => Ok(()),
    }
}

/// The host when it is an address (`[…]` around IPv6 in a URL).
fn literal(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        refusal(ip.parse().unwrap(), false).is_some()
    }

    #[test]
    fn internal_ranges_are_refused_and_public_ones_allowed() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a00:1",
            "2002:a00:1::1",
            "2002:7f00:1::",
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "100.128.0.1",
            "2002:5db8:d822::1",
        ] {
            assert!(!refused(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn the_operator_may_allow_private_ranges_but_never_non_destinations() {
        for ip in ["127.0.0.1", "10.0.0.1", "169.254.169.254", "fd00::1", "::1"] {
            assert_eq!(refusal(ip.parse().unwrap(), true), None, "{ip}");
        }
        for ip in ["0.0.0.0", "224.0.0.1", "::", "ff02::1"] {
            assert!(refusal(ip.parse().unwrap(), true).is_some(), "{ip}");
        }
    }

    #[test]
    fn urls_are_http_with_a_host_and_no_credentials() {
        assert!(parse_url("https://hooks.example.org/x?y=1").is_ok());
        assert!(matches!(
            parse_url("ftp://example.org/"),
            Err(WebhookError::Refused(_))
        ));
        assert!(matches!(
            parse_url("file:///etc/passwd"),
            Err(WebhookError::Refused(_))
        ));
        assert!(matches!(parse_url("not a url"), Err(WebhookError::Invalid(_))));
        assert!(matches!(
            parse_url("https://user:pw@example.org/"),
            Err(WebhookError::Invalid(_))
        ));
        let long = format!("https://example.org/{}", "a".repeat(MAX_URL_BYTES));
        assert!(matches!(parse_url(&long), Err(WebhookError::Invalid(_))));
    }

    #[tokio::test]
    async fn literal_and_named_hosts_are_checked_after_resolution() {
        let url = parse_url("http://127.0.0.1:9/").unwrap();
        assert!(matches!(
            resolve_allowed(&url, false).await,
            Err(WebhookError::Refused(_))
        ));
        assert!(resolve_allowed(&url, true).await.is_ok());
        assert!(check_literal(&url, false).is_err());
        let url = parse_url("http://localhost:9/").unwrap();
        assert!(matches!(
            resolve_allowed(&url, false).await,
            Err(WebhookError::Refused(_))
        ));
        assert!(check_literal(&url, false).is_ok(), "names are the resolver's");
    }
}
