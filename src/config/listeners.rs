//! Listener addresses: `host:port`, `listeners` / `advertised.listeners`, the protocol map,
//! and resolving the listen host.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use super::defaults::DEFAULT_LISTEN;
use super::settings::{Origin, Settings};
use super::value::parse_list;
use super::{invalid, invalid_flag, invalid_value, one_line, ConfigError};

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

/// The address to listen on, as given and resolved: `--listen`, then the first PLAINTEXT
/// listener of `listeners`, then the default. An empty listener host means all interfaces.
pub(super) fn listen_address(
    flag: Option<&str>,
    settings: &Settings,
) -> Result<(HostPort, SocketAddr), ConfigError> {
    let (listen_address, listen_source) = match flag {
        Some(text) => (
            parse_flag_host_port("--listen", text)?,
            "--listen".to_string(),
        ),
        None => match plaintext_listener(settings, "listeners")? {
            Some(mut address) => {
                if address.host.is_empty() {
                    address.host = Ipv4Addr::UNSPECIFIED.to_string();
                }
                let origin = settings
                    .get("listeners")
                    .map(|s| s.origin.to_string())
                    .unwrap_or_default();
                (address, format!("'listeners' {origin}"))
            }
            None => (
                parse_host_port(DEFAULT_LISTEN).ok_or_else(|| {
                    invalid(format!(
                        "internal error: bad DEFAULT_LISTEN '{DEFAULT_LISTEN}'"
                    ))
                })?,
                "default".to_string(),
            ),
        },
    };
    let listen = resolve_listen(&listen_address, &listen_source)?;
    Ok((listen_address, listen))
}

/// The address put in Metadata responses: `--advertise`, then `advertised.listeners`, then the
/// listen host and port as given. Warns when that is an unspecified address (0.0.0.0).
pub(super) fn advertised_address(
    flag: Option<&str>,
    settings: &Settings,
    listen_address: &HostPort,
) -> Result<HostPort, ConfigError> {
    let advertise = match flag {
        Some(text) => {
            let address = parse_flag_host_port("--advertise", text)?;
            if address.port == 0 {
                return Err(invalid_flag(
                    "--advertise",
                    text,
                    "HOST:PORT with a port between 1 and 65535",
                ));
            }
            address
        }
        None => match plaintext_listener(settings, "advertised.listeners")? {
            Some(address) => {
                if address.port == 0 {
                    let setting = settings.get("advertised.listeners");
                    let (value, origin) = setting
                        .map(|s| (s.value.as_str(), s.origin.clone()))
                        .unwrap_or(("", Origin::Override));
                    return Err(invalid_value(
                        "advertised.listeners",
                        value,
                        &origin,
                        "a port between 1 and 65535",
                    ));
                }
                if address.host.is_empty() {
                    HostPort {
                        host: listen_address.host.clone(),
                        port: address.port,
                    }
                } else {
                    address
                }
            }
            None => listen_address.clone(),
        },
    };
    if advertise
        .host
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified())
    {
        tracing::warn!(
            host = %advertise.host,
            "advertising an unspecified address; clients on other machines cannot connect (set --advertise)"
        );
    }
    Ok(advertise)
}

/// The first PLAINTEXT listener of `listeners` / `advertised.listeners`, skipping controller
/// listeners (shardlog runs no KRaft quorum) and rejecting any other protocol, which we cannot serve.
fn plaintext_listener(settings: &Settings, key: &str) -> Result<Option<HostPort>, ConfigError> {
    let Some(setting) = settings.get(key) else {
        return Ok(None);
    };
    let bad = |expected: &str| invalid_value(key, &setting.value, &setting.origin, expected);
    let listeners = parse_listeners(&setting.value).map_err(|e| bad(&e))?;
    let protocols: Vec<(String, String)> = match settings.get("listener.security.protocol.map") {
        Some(map) => parse_protocol_map(&map.value).map_err(|e| {
            invalid_value(
                "listener.security.protocol.map",
                &map.value,
                &map.origin,
                &e,
            )
        })?,
        None => Vec::new(),
    };
    let controllers: Vec<String> = match settings.get("controller.listener.names") {
        Some(names) => parse_list(&names.value)
            .map_err(|e| {
                invalid_value("controller.listener.names", &names.value, &names.origin, &e)
            })?
            .into_iter()
            .map(|name| name.to_ascii_uppercase())
            .collect(),
        None => Vec::new(),
    };
    let mut usable = Vec::new();
    for listener in listeners {
        if controllers.contains(&listener.name) {
            continue;
        }
        let protocol = match protocols.iter().find(|(name, _)| *name == listener.name) {
            Some((_, protocol)) => protocol.clone(),
            None if SECURITY_PROTOCOLS.contains(&listener.name.as_str()) => listener.name.clone(),
            None => {
                return Err(invalid(format!(
                    "listener '{}' in '{key}' ({}) has no security protocol: map it in 'listener.security.protocol.map'",
                    listener.name, setting.origin
                )))
            }
        };
        if protocol != PLAINTEXT {
            return Err(invalid(format!(
                "invalid value '{}' for '{key}' ({}): only PLAINTEXT listeners are supported, but listener '{}' uses {protocol}",
                one_line(&setting.value),
                setting.origin,
                listener.name
            )));
        }
        usable.push(listener.address);
    }
    let mut usable = usable.into_iter();
    let first = usable
        .next()
        .ok_or_else(|| bad("at least one PLAINTEXT listener that is not a controller listener"))?;
    for extra in usable {
        tracing::warn!(key, host = %extra.host, port = extra.port, "shardlog serves one listener; ignoring this one");
    }
    Ok(Some(first))
}
