//! Value types of config keys: what a value must look like (Kafka's ConfigDef types and our
//! special shapes), the checks that enforce it, and the parsed [`Value`] that typed fields are
//! set from.

use std::fmt;
use std::path::PathBuf;

use super::defaults::{KAFKA_INT_MAX, KAFKA_LONG_MAX};
use super::listeners::{parse_listeners, parse_protocol_map};

/// What a key's value must look like: one of Kafka's ConfigDef types with its bounds, or one of
/// the shapes Kafka checks with a validator of its own. [`Type::config_type`] says which ConfigDef
/// type Kafka reports for it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Type {
    /// `true` or `false`, in any letter case, as Kafka's ConfigDef accepts.
    Boolean,
    /// Any non-empty text; its content is not interpreted.
    String,
    /// A whole number within inclusive bounds, reported as Kafka's SHORT.
    Short { min: i64, max: i64 },
    /// A whole number within inclusive bounds, reported as Kafka's INT.
    Int { min: i64, max: i64 },
    /// A whole number within inclusive bounds, reported as Kafka's LONG.
    Long { min: i64, max: i64 },
    /// A comma-separated list of non-empty entries (Kafka's LIST).
    List,
    /// A comma-separated list of non-empty entries that Kafka declares a STRING and splits itself
    /// (`log.dirs`, `controller.listener.names`).
    StringList,
    /// `NAME://HOST:PORT,...` (a STRING in Kafka).
    Listeners,
    /// `NAME:PROTOCOL,...` (a STRING in Kafka).
    ProtocolMap,
    /// `delete` and/or `compact` (a LIST in Kafka).
    CleanupPolicy,
    /// One of a fixed set of words, matched exactly (a STRING in Kafka).
    OneOf(&'static [&'static str]),
    /// A number between 0 and 1 (a DOUBLE in Kafka).
    Ratio,
    /// `IP:count,...`, possibly empty (a STRING in Kafka: `max.connections.per.ip.overrides`).
    AddressCounts,
    /// A number above 0 (a DOUBLE in Kafka).
    PositiveDouble,
    /// Empty (none), or an `IP:PORT` socket address.
    OptionalAddress,
    /// Empty, `*`, or a list of `partition:broker` pairs (a LIST in Kafka).
    ThrottledReplicas,
    /// Exactly 1, because shardlog is a single node (an INT in Kafka).
    SingleReplica,
}

/// Kafka's ConfigDef types, as DescribeConfigs v3+ reports them in `config_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
}

impl Type {
    /// The ConfigDef type Kafka declares for a key of this shape.
    pub fn config_type(self) -> ConfigType {
        match self {
            Type::Boolean => ConfigType::Boolean,
            Type::String
            | Type::StringList
            | Type::Listeners
            | Type::ProtocolMap
            | Type::AddressCounts
            | Type::OptionalAddress
            | Type::OneOf(_) => ConfigType::String,
            Type::Short { .. } => ConfigType::Short,
            Type::Int { .. } | Type::SingleReplica => ConfigType::Int,
            Type::Long { .. } => ConfigType::Long,
            Type::List | Type::CleanupPolicy | Type::ThrottledReplicas => ConfigType::List,
            Type::Ratio | Type::PositiveDouble => ConfigType::Double,
        }
    }

    /// Checks `raw` and returns its parsed value: numbers and booleans typed, a cleanup policy
    /// in canonical form, anything else as given. The error says what was expected, to follow
    /// "expected ".
    pub fn parse(self, raw: &str) -> Result<Value, String> {
        match self {
            Type::Short { min, max } | Type::Int { min, max } | Type::Long { min, max } => {
                parse_int(raw, min, max).map(Value::Int)
            }
            Type::Boolean => parse_bool(raw).map(Value::Bool),
            Type::String => {
                if raw.is_empty() {
                    Err("a non-empty value".to_string())
                } else {
                    Ok(Value::Text(raw.to_string()))
                }
            }
            Type::List | Type::StringList => parse_list(raw).map(|_| Value::Text(raw.to_string())),
            Type::CleanupPolicy => parse_cleanup_policy(raw).map(Value::Text),
            Type::AddressCounts => parse_address_counts(raw).map(|_| Value::Text(raw.to_string())),
            Type::OptionalAddress => match raw.parse::<std::net::SocketAddr>() {
                Ok(_) => Ok(Value::Text(raw.to_string())),
                Err(_) if raw.is_empty() => Ok(Value::Text(String::new())),
                Err(_) => Err("IP:PORT (e.g. 127.0.0.1:9644), or nothing".to_string()),
            },
            Type::Listeners => parse_listeners(raw).map(|_| Value::Text(raw.to_string())),
            Type::ProtocolMap => parse_protocol_map(raw).map(|_| Value::Text(raw.to_string())),
            Type::OneOf(words) => {
                if words.contains(&raw) {
                    Ok(Value::Text(raw.to_string()))
                } else {
                    Err(format!("one of {}", words.join(", ")))
                }
            }
            Type::Ratio => match raw.parse::<f64>() {
                Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(Value::Text(raw.to_string())),
                _ => Err("a number between 0 and 1".to_string()),
            },
            Type::PositiveDouble => {
                parse_positive_double(raw).map(|_| Value::Text(raw.to_string()))
            }
            Type::ThrottledReplicas => {
                parse_throttled_replicas(raw).map(|()| Value::Text(raw.to_string()))
            }
            Type::SingleReplica => match raw.parse::<i64>() {
                Ok(1) => Ok(Value::Int(1)),
                _ => Err("1, because shardlog is a single node".to_string()),
            },
        }
    }
}

/// A number above 0, in any form Java's `Double.parseDouble` reads (`1e6`, `1.5E308`).
pub fn parse_positive_double(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
        _ => Err("a number above 0".to_string()),
    }
}

/// Prints a double as Java's `Double.toString` does, near enough for DescribeConfigs:
/// scientific notation outside [1e-3, 1e7).
pub fn format_double(x: f64) -> String {
    if x != 0.0 && !(1e-3..1e7).contains(&x.abs()) {
        format!("{x:E}")
    } else {
        format!("{x:?}")
    }
}

/// A checked value: what typed fields are set from and what DescribeConfigs prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Text(String),
}

impl fmt::Display for Value {
    /// Prints the value as Kafka prints it (`true`, `1073741824`, `delete`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(n) => write!(f, "{n}"),
            Value::Text(s) => f.write_str(s),
        }
    }
}

/// A typed field that a [`Value`] can be stored into; the error says what was expected.
pub trait FromValue: Sized {
    fn from_value(value: &Value) -> Result<Self, String>;
}

/// A typed field that can be reported as a [`Value`].
pub trait ToValue {
    fn to_value(&self) -> Value;
}

macro_rules! integer_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: &Value) -> Result<$t, String> {
                match value {
                    Value::Int(n) => <$t>::try_from(*n).map_err(|_| {
                        format!("an integer between {} and {}", <$t>::MIN, <$t>::MAX)
                    }),
                    _ => Err("an integer".to_string()),
                }
            }
        }
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
integer_value!(i16, i32, i64, u32, u64, usize);

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<bool, String> {
        match value {
            Value::Bool(b) => Ok(*b),
            _ => Err("true or false".to_string()),
        }
    }
}

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<String, String> {
        Ok(value.to_string())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToValue for PathBuf {
    fn to_value(&self) -> Value {
        Value::Text(self.display().to_string())
    }
}

/// Parses a whole number within `min..=max`. The expectation names only the lower bound when the
/// upper one is just the type's limit, unless the value actually went over it.
pub(super) fn parse_int(value: &str, min: i64, max: i64) -> Result<i64, String> {
    let lower_only = || format!("an integer >= {min}");
    let both = || format!("an integer between {min} and {max}");
    let describe = || {
        if max == KAFKA_INT_MAX || max == KAFKA_LONG_MAX {
            lower_only()
        } else {
            both()
        }
    };
    match value.parse::<i64>() {
        Ok(n) if n < min => Err(describe()),
        Ok(n) if n > max => Err(both()),
        Ok(n) => Ok(n),
        // A number too large even for i64 is still "an integer", just out of range.
        Err(_)
            if !value.is_empty()
                && value
                    .trim_start_matches(['+', '-'])
                    .bytes()
                    .all(|b| b.is_ascii_digit()) =>
        {
            Err(both())
        }
        Err(_) => Err(describe()),
    }
}

/// Parses `true` / `false` in any letter case.
pub(super) fn parse_bool(value: &str) -> Result<bool, String> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err("true or false".to_string())
    }
}

/// Splits a comma-separated list, trimming entries; empty entries are rejected rather than skipped.
/// `IP:count,...` (an IPv6 address in brackets or bare: the count follows the last colon); an
/// empty value is an empty list.
pub fn parse_address_counts(value: &str) -> Result<Vec<(std::net::IpAddr, u32)>, String> {
    let expected = || "a comma-separated list of IP:count (e.g. 10.0.0.5:200)".to_string();
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(|entry| {
            let (ip, count) = entry.trim().rsplit_once(':').ok_or_else(expected)?;
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            let ip: std::net::IpAddr = ip.parse().map_err(|_| expected())?;
            let count: u32 = count.parse().map_err(|_| expected())?;
            Ok((ip, count))
        })
        .collect()
}

pub(super) fn parse_list(value: &str) -> Result<Vec<String>, String> {
    let entries: Vec<String> = value
        .split(',')
        .map(|entry| entry.trim().to_string())
        .collect();
    if entries.iter().any(String::is_empty) {
        return Err("a comma-separated list of non-empty entries".to_string());
    }
    Ok(entries)
}

/// The words `log.cleanup.policy` / `cleanup.policy` may list.
pub const CLEANUP_POLICIES: &[&str] = &["delete", "compact"];

/// Parses `delete`, `compact`, or both, and returns the policy in canonical form (no spaces).
pub(super) fn parse_cleanup_policy(value: &str) -> Result<String, String> {
    let expected = || "delete, compact, or delete,compact".to_string();
    let entries = parse_list(value).map_err(|_| expected())?;
    let mut seen: Vec<&str> = Vec::new();
    for entry in &entries {
        if !CLEANUP_POLICIES.contains(&entry.as_str()) || seen.contains(&entry.as_str()) {
            return Err(expected());
        }
        seen.push(entry);
    }
    Ok(seen.join(","))
}

/// Parses Kafka's throttled-replica list: empty, `*`, or `partition:broker` pairs.
fn parse_throttled_replicas(value: &str) -> Result<(), String> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed == "*" {
        return Ok(());
    }
    let expected = || "empty, *, or a comma-separated list of PARTITION:BROKER pairs".to_string();
    for entry in trimmed.split(',') {
        let (partition, broker) = entry.trim().split_once(':').ok_or_else(expected)?;
        let is_number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !is_number(partition.trim()) || !is_number(broker.trim()) {
            return Err(expected());
        }
    }
    Ok(())
}

/// Where a value came from (Kafka's `ConfigSource`, the ones shardlog can have).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Set on the topic (CreateTopics configs): Kafka's DYNAMIC_TOPIC_CONFIG.
    TopicOverride,
    /// Set at runtime for this broker (AlterConfigs on its id): DYNAMIC_BROKER_CONFIG.
    DynamicBroker,
    /// Set at runtime as the cluster-wide default (AlterConfigs on broker ""):
    /// DYNAMIC_DEFAULT_BROKER_CONFIG.
    DynamicDefaultBroker,
    /// Set in the --config file, by --override or by a dedicated flag: STATIC_BROKER_CONFIG.
    StaticBroker,
    /// Nobody set it: DEFAULT_CONFIG.
    Default,
}
