//! The admin tools: `shardlog topics`, `shardlog groups`, `shardlog configs` and `shardlog acls`,
//! speaking the Kafka protocol to any broker (Shardlog or Apache Kafka) with the flags and output
//! of Kafka's `kafka-topics.sh`, `kafka-consumer-groups.sh`, `kafka-configs.sh` and
//! `kafka-acls.sh`, so that the wrappers in `bin/` can stand in for them.
//!
//! - `client.rs`: a blocking client (one TCP connection per broker, versions from ApiVersions).
//! - `topics.rs`, `groups.rs`, `configs.rs`, `acls.rs`: one command each, its flags and its output.
//!
//! This module belongs to the `shardlog` binary, not to the broker library: it shares no code
//! with the request path.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

mod acls;
mod client;
mod configs;
mod groups;
mod topics;

/// The subcommands, as the first argument of `shardlog`.
pub const SUBCOMMANDS: &[&str] = &["topics", "groups", "configs", "acls"];

/// Runs the admin subcommand `args[1]` (`args[0]` is the program name).
pub fn run(args: Vec<OsString>) -> ExitCode {
    // A tool whose output is piped into `head` ends quietly when the reader goes, as shell
    // tools do, instead of panicking on EPIPE (Rust ignores SIGPIPE by default).
    // SAFETY: setting a signal's disposition to its default before any other thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let sub = args
        .get(1)
        .and_then(|a| a.to_str())
        .unwrap_or_default()
        .to_string();
    // clap sees "shardlog topics" as the program name and the rest as the flags.
    let mut rest = vec![OsString::from(format!("shardlog {sub}"))];
    rest.extend(args.into_iter().skip(2));
    match sub.as_str() {
        "topics" => topics::run(rest),
        "groups" => groups::run(rest),
        "configs" => configs::run(rest),
        "acls" => acls::run(rest),
        _ => {
            eprintln!("shardlog: unknown admin command {sub:?}");
            ExitCode::from(1)
        }
    }
}

/// Parses a command's flags. `--help` prints and exits 0; a usage error prints clap's message
/// and exits 1, as Kafka's tools exit on a usage error.
fn parse<T: Parser>(args: Vec<OsString>) -> Result<T, ExitCode> {
    T::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// Flags every command takes.
#[derive(clap::Args, Debug)]
struct Common {
    /// The broker(s) to connect to: HOST:PORT[,HOST:PORT...].
    #[arg(long, value_name = "HOST:PORT", required = true)]
    bootstrap_server: String,
    /// A Kafka client properties file (security settings). Accepted and ignored: these tools
    /// speak PLAINTEXT only.
    #[arg(long, value_name = "FILE")]
    command_config: Option<String>,
}

impl Common {
    /// Connects, after noting an ignored `--command-config` on stderr.
    fn connect(&self) -> Result<client::Client, client::AdminError> {
        if let Some(file) = &self.command_config {
            eprintln!(
                "Note: --command-config {file} is ignored: the shardlog admin tools connect over PLAINTEXT without client properties."
            );
        }
        client::Client::connect(&self.bootstrap_server)
    }
}

/// Kafka's `Uuid.toString()`: the 16 bytes in URL-safe base64 without padding (22 characters).
fn kafka_uuid(id: &uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Splits Kafka's `k=v,k2=[a,b]` config lists: commas inside brackets belong to the value,
/// whose brackets are dropped (`k2` gets `a,b`), as `kafka-configs.sh --add-config` reads them.
fn parse_config_list(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut items = Vec::new();
    let mut depth = 0u32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&s[start..]);
    items
        .into_iter()
        .filter(|i| !i.trim().is_empty())
        .map(parse_config_pair)
        .collect()
}

/// One `key=value` (the value may hold `=`; brackets around it are dropped).
fn parse_config_pair(item: &str) -> Result<(String, String), String> {
    let (k, v) = item
        .split_once('=')
        .ok_or_else(|| format!("Invalid config: all configs to be added must be in the format \"key=val\"; got {item:?}."))?;
    let v = v.trim();
    let v = v
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(v);
    Ok((k.trim().to_string(), v.to_string()))
}

/// The name of a DescribeConfigs source, as Kafka's `ConfigEntry.ConfigSource` prints it.
fn config_source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Topic ids print as Kafka prints them (known pairs from Kafka's `Uuid` tests).
    #[test]
    fn uuid_prints_as_kafka_does() {
        assert_eq!(kafka_uuid(&uuid::Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
        let id = uuid::Uuid::from_u64_pair(0xfb8e_44d4_8b07_4f59, 0xa0e4_66f1_7d1b_1c6d);
        let s = kafka_uuid(&id);
        assert_eq!(s.len(), 22);
        assert_eq!(s, "-45E1IsHT1mg5GbxfRscbQ");
    }

    /// Commas inside brackets stay in the value; `=` in a value is kept.
    #[test]
    fn config_lists_split_as_kafka_does() {
        assert_eq!(
            parse_config_list("a=1,b=[x,y],c=p=q").unwrap(),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x,y".into()),
                ("c".into(), "p=q".into())
            ]
        );
        assert!(parse_config_list("novalue").is_err());
        assert!(parse_config_list("").unwrap().is_empty());
    }
}
