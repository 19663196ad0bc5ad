//! What `--mqtt-*` give, parsed once: the broker's address and credentials,
//! and the topic levels vigil writes under.

use std::fmt;
use std::str::FromStr;

/// The broker, from `mqtt://[user[:password]@]host[:port]`. Neither its
/// `Display` nor its `Debug` shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttUrl {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
}

pub const DEFAULT_PORT: u16 = 1883;

/// Why a `--mqtt-url` was refused. The messages never repeat the URL: it
/// may hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MqttUrlError {
    #[error("is not a URL ({0}); expected mqtt://[user[:password]@]host[:port]")]
    NotAUrl(String),
    #[error(
        "mqtts:// is not supported by this build (no TLS to the broker); use mqtt:// on a trusted \
         network, or a local TLS tunnel (stunnel, the broker's own bridge) to reach the broker"
    )]
    TlsUnsupported,
    #[error("scheme `{0}` is not supported; expected mqtt://[user[:password]@]host[:port]")]
    Scheme(String),
    #[error("names no host; expected mqtt://[user[:password]@]host[:port]")]
    NoHost,
    #[error("port 0 is not a broker's port")]
    PortZero,
    #[error("must not have a path, a query or a fragment (vigil's topics are set by --mqtt-prefix)")]
    Extra,
    #[error("the user name or password is not valid percent-encoded UTF-8")]
    Encoding,
}

impl FromStr for MqttUrl {
    type Err = MqttUrlError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let url = url::Url::parse(raw.trim()).map_err(|e| MqttUrlError::NotAUrl(e.to_string()))?;
        match url.scheme() {
            "mqtt" | "tcp" => {}
            "mqtts" | "ssl" | "tls" => return Err(MqttUrlError::TlsUnsupported),
            other => return Err(MqttUrlError::Scheme(other.to_owned())),
        }
        let host = match url.host() {
            Some(url::Host::Domain(name)) if !name.is_empty() => name.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(MqttUrlError::NoHost),
        };
        let port = url.port().unwrap_or(DEFAULT_PORT);
        if port == 0 {
            return Err(MqttUrlError::PortZero);
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(MqttUrlError::Extra);
        }
        let username = match url.username() {
            "" => None,
            name => Some(percent_decode(name)?),
        };
        let password = url.password().map(percent_decode).transpose()?;
        Ok(Self {
            host,
            port,
            username,
            password,
        })
    }
}

/// `%XX` to bytes, then UTF-8: `url` keeps the user and password encoded.
fn percent_decode(raw: &str) -> Result<String, MqttUrlError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(MqttUrlError::Encoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| MqttUrlError::Encoding)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| MqttUrlError::Encoding)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| MqttUrlError::Encoding)
}

impl fmt::Display for MqttUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mqtt://")?;
        if let Some(user) = &self.username {
            write!(f, "{user}")?;
            if self.password.is_some() {
                f.write_str(":***")?;
            }
            f.write_str("@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for MqttUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MqttUrl({self})")
    }
}

/// One or more topic levels vigil writes under (`vigil`, `site/vigil`):
/// no wildcard, no empty level, no leading or trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPrefix(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("must not be empty")]
    Empty,
    #[error("is longer than {MAX_PREFIX} bytes")]
    TooLong,
    #[error("must not contain the wildcards `+` or `#`, nor control characters")]
    Forbidden,
    #[error("must not start or end with `/` nor contain an empty level (`//`)")]
    EmptyLevel,
    #[error(
        "may hold only letters, digits, `_`, `-` and `.` (it is a topic level and an id in Home Assistant)"
    )]
    NotAnId,
}

const MAX_PREFIX: usize = 200;
const MAX_CLIENT_ID: usize = 64;

impl FromStr for TopicPrefix {
    type Err = TopicError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        if raw.is_empty() {
            return Err(TopicError::Empty);
        }
        if raw.len() > MAX_PREFIX {
            return Err(TopicError::TooLong);
        }
        if raw.chars().any(|c| matches!(c, '+' | '#') || c.is_control()) {
            return Err(TopicError::Forbidden);
        }
        if raw.split('/').any(str::is_empty) {
            return Err(TopicError::EmptyLevel);
        }
        Ok(Self(raw.to_owned()))
    }
}

impl TopicPrefix {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The broker's client id, also the topic level of this instance's
/// availability: letters, digits, `_`, `-` and `.`, at most 64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId(String);

impl FromStr for ClientId {
    type Err = TopicError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        if raw.is_empty() {
            return Err(TopicError::Empty);
        }
        if raw.len() > MAX_CLIENT_ID {
            return Err(TopicError::TooLong);
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(TopicError::NotAnId);
        }
        Ok(Self(raw.to_owned()))
    }
}

impl ClientId {
    /// `vigil-<host name>-<HTTP port>`: the same across restarts (so the
    /// broker's retained availability of a restarted instance is replaced,
    /// not left beside a new one), different for two instances of one host.
    pub fn derived(port: u16) -> Self {
        let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_default();
        let host: String = host
            .trim()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        let host = host.trim_matches('-');
        let id = if host.is_empty() {
            format!("vigil-{port}")
        } else {
            format!("vigil-{host}-{port}")
        };
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Everything the MQTT publisher needs; present only with `--mqtt-url`.
#[derive(Debug, Clone)]
pub struct MqttSettings {
    pub url: MqttUrl,
    pub prefix: TopicPrefix,
    /// `None`: [`ClientId::derived`] from the HTTP port, once it is bound.
    pub client_id: Option<ClientId>,
    /// Alarms held while the broker is away; older ones are dropped beyond it.
    pub queue_limit: usize,
    /// Home Assistant's discovery prefix; `None` turns discovery off.
    pub discovery_prefix: Option<TopicPrefix>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_host_port_and_decoded_credentials() {
        let url: MqttUrl = "mqtt://ha%40home:p%3Ass@broker.lan:1884".parse().unwrap();
        assert_eq!(url.host, "broker.lan");
        assert_eq!(url.port, 1884);
        assert_eq!(url.username.as_deref(), Some("ha@home"));
        assert_eq!(url.password.as_deref(), Some("p:ss"));
        let url: MqttUrl = "mqtt://10.0.0.2/".parse().unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.username),
            ("10.0.0.2", 1883, None)
        );
        let url: MqttUrl = "mqtt://[::1]:1999".parse().unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 1999));
    }

    #[test]
    fn the_password_never_shows() {
        let url: MqttUrl = "mqtt://user:hunter2@broker:1883".parse().unwrap();
        assert_eq!(url.to_string(), "mqtt://user:***@broker:1883");
        assert!(!format!("{url:?}").contains("hunter2"));
        for bad in [
            "mqtts://user:hunter2@broker",
            "http://user:hunter2@broker",
            "mqtt://user:hunter2@broker/x",
        ] {
            let err = bad.parse::<MqttUrl>().unwrap_err();
            assert!(!err.to_string().contains("hunter2"), "{err}");
            assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
        }
    }

    #[test]
    fn bad_urls_say_why() {
        let cases = [
            ("broker:1883", "scheme `broker`"),
            ("not a url", "is not a URL"),
            ("mqtts://broker", "mqtts:// is not supported"),
            ("http://broker", "scheme `http`"),
            ("mqtt://", "no host"),
            ("mqtt://broker:0", "port 0"),
            ("mqtt://broker:99999", "is not a URL"),
            ("mqtt://broker/topic", "must not have a path"),
            ("mqtt://broker?x=1", "must not have a path"),
            ("mqtt://u:%ff@broker", "percent-encoded"),
        ];
        for (raw, want) in cases {
            let err = raw.parse::<MqttUrl>().unwrap_err().to_string();
            assert!(err.contains(want), "{raw}: {err}");
        }
    }

    #[test]
    fn prefixes_are_topic_levels_without_wildcards() {
        assert_eq!("vigil".parse::<TopicPrefix>().unwrap().as_str(), "vigil");
        assert_eq!(
            "site/vigil".parse::<TopicPrefix>().unwrap().as_str(),
            "site/vigil"
        );
        for (raw, err) in [
            ("", TopicError::Empty),
            ("a/+", TopicError::Forbidden),
            ("#", TopicError::Forbidden),
            ("/vigil", TopicError::EmptyLevel),
            ("vigil/", TopicError::EmptyLevel),
            ("a//b", TopicError::EmptyLevel),
        ] {
            assert_eq!(raw.parse::<TopicPrefix>(), Err(err), "{raw}");
        }
    }

    #[test]
    fn client_ids_are_ids_and_the_derived_one_is_one() {
        assert!("vigil-1".parse::<ClientId>().is_ok());
        assert_eq!("a/b".parse::<ClientId>(), Err(TopicError::NotAnId));
        assert_eq!("".parse::<ClientId>(), Err(TopicError::Empty));
        let derived = ClientId::derived(8080);
        assert!(derived.as_str().starts_with("vigil-"), "{derived:?}");
        assert!(derived.as_str().ends_with("-8080"), "{derived:?}");
        assert_eq!(derived.as_str().parse::<ClientId>().as_ref(), Ok(&derived));
    }
}
