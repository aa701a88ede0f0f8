//! Listener addresses: `host:port`, `listeners` / `advertised.listeners`, the protocol map,
//! and resolving the listen host.

use std::net::{SocketAddr, ToSocketAddrs};

use super::{invalid, invalid_flag, one_line, ConfigError};

/// Kafka's security protocols; a listener name that is one of these maps to itself by default.
pub(super) const SECURITY_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];
/// The only security protocol shardlog serves.
pub(super) const PLAINTEXT: &str = "PLAINTEXT";

/// A host and port, the host as written (IPv6 without its brackets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct HostPort {
    pub(super) host: String,
    pub(super) port: u16,
}

/// Parses `HOST:PORT` or `[IPV6]:PORT`; the host may be empty (Kafka's "all interfaces").
pub(super) fn parse_host_port(text: &str) -> Option<HostPort> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':')?)
    } else {
        let (host, port) = text.rsplit_once(':')?;
        // An unbracketed IPv6 address is ambiguous about where the port starts.
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    let port = port.parse::<u16>().ok()?;
    Some(HostPort {
        host: host.to_string(),
        port,
    })
}

/// One entry of `listeners` / `advertised.listeners`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Listener {
    /// The listener name, upper-cased as Kafka normalises it.
    pub(super) name: String,
    pub(super) address: HostPort,
}

/// Parses `NAME://HOST:PORT,...`.
pub(super) fn parse_listeners(value: &str) -> Result<Vec<Listener>, String> {
    let expected = || {
        "a comma-separated list of NAME://HOST:PORT, e.g. PLAINTEXT://localhost:9092".to_string()
    };
    let mut listeners = Vec::new();
    for entry in value.split(',') {
        let (name, address) = entry.trim().split_once("://").ok_or_else(expected)?;
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let address = parse_host_port(address)
            .filter(|_| name_ok)
            .ok_or_else(expected)?;
        listeners.push(Listener {
            name: name.to_ascii_uppercase(),
            address,
        });
    }
    Ok(listeners)
}

/// Parses `NAME:PROTOCOL,...`, both sides upper-cased.
pub(super) fn parse_protocol_map(value: &str) -> Result<Vec<(String, String)>, String> {
    let expected = || {
        format!(
            "a comma-separated list of NAME:PROTOCOL with PROTOCOL one of {}",
            SECURITY_PROTOCOLS.join(", ")
        )
    };
    let mut map = Vec::new();
    for entry in value.split(',') {
        let (name, protocol) = entry.trim().split_once(':').ok_or_else(expected)?;
        let (name, protocol) = (
            name.trim().to_ascii_uppercase(),
            protocol.trim().to_ascii_uppercase(),
        );
        if name.is_empty() || !SECURITY_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(expected());
        }
        map.push((name, protocol));
    }
    Ok(map)
}

/// Parses the HOST:PORT of a dedicated flag; unlike listeners, the host must be written out.
pub(super) fn parse_flag_host_port(flag: &str, value: &str) -> Result<HostPort, ConfigError> {
    parse_host_port(value)
        .filter(|address| !address.host.is_empty())
        .ok_or_else(|| invalid_flag(flag, value, "HOST:PORT, e.g. 127.0.0.1:9092 or [::1]:9092"))
}

/// Resolves a listen host, preferring the first IPv4 address because clients given "localhost"
/// usually try IPv4 first.
pub(super) fn resolve_listen(address: &HostPort, source: &str) -> Result<SocketAddr, ConfigError> {
    let shown = one_line(&address.host);
    let resolved: Vec<SocketAddr> = (address.host.as_str(), address.port)
        .to_socket_addrs()
        .map_err(|e| {
            invalid(format!(
                "cannot resolve listen host '{shown}' ({source}): {e}"
            ))
        })?
        .collect();
    resolved
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| resolved.first())
        .copied()
        .ok_or_else(|| {
            invalid(format!(
                "listen host '{shown}' ({source}) resolved to no address"
            ))
        })
}

/// Formats a host for a `NAME://HOST:PORT` URL, bracketing IPv6 literals.
pub(super) fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}
