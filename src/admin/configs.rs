//! `shardlog configs` (`bin/kafka-configs.sh`): describe and alter the dynamic configs of
//! topics and brokers, with the flags and output of Kafka 3.9's `kafka-configs.sh`.
//!
//! Alterations go through IncrementalAlterConfigs (SET and DELETE per key) for topics and
//! brokers alike; Kafka 3.9's tool sends AlterConfigs with the whole set for brokers, which
//! ends the same. Errors print on stderr and exit 1, as Kafka's tool does.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{ArgGroup, Parser};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;

use super::client::{AdminError, Client, Target};
use super::topics::RESOURCE_TOPIC;
use super::{config_source_name, parse, parse_config_list, Common};

/// DescribeConfigs resource type of a broker.
const RESOURCE_BROKER: i8 = 4;
/// Config sources: a topic override, a broker's own dynamic value, the cluster-wide one.
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// Describe and alter topic and broker configs (kafka-configs.sh).
#[derive(Parser, Debug)]
#[command(group(ArgGroup::new("action").required(true).args(["describe", "alter"])))]
struct Args {
    #[command(flatten)]
    common: Common,
    /// Show the entity's dynamic configs (every config with --all).
    #[arg(long)]
    describe: bool,
    /// Change the entity's configs (--add-config, --delete-config).
    #[arg(long)]
    alter: bool,
    /// topics or brokers.
    #[arg(long, value_name = "TYPE", value_parser = ["topics", "brokers"])]
    entity_type: Option<String>,
    /// The topic name or broker id.
    #[arg(long, value_name = "NAME")]
    entity_name: Option<String>,
    /// The cluster-wide default of brokers (instead of --entity-name).
    #[arg(long, conflicts_with = "entity_name")]
    entity_default: bool,
    /// Shorthand for --entity-type topics --entity-name TOPIC.
    #[arg(long, value_name = "TOPIC", conflicts_with_all = ["entity_name", "broker"])]
    topic: Option<String>,
    /// Shorthand for --entity-type brokers --entity-name ID.
    #[arg(long, value_name = "ID", conflicts_with = "entity_name")]
    broker: Option<String>,
    /// With --describe: every config, not only the dynamic ones.
    #[arg(long)]
    all: bool,
    /// Configs to set: k=v[,k2=v2], a list value in brackets (k=[a,b]).
    #[arg(long, value_name = "K=V,...")]
    add_config: Vec<String>,
    /// Configs to remove: k[,k2].
    #[arg(long, value_name = "K,...")]
    delete_config: Vec<String>,
}

/// What the command is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Topic,
    Broker,
}

/// Runs `shardlog configs`; `args[0]` is the program name.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let command_line: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let args: Args = match parse(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (kind, name) = match entity(&args) {
        Ok(e) => e,
        Err(m) => {
            eprintln!("{m}");
            return ExitCode::from(1);
        }
    };
    let result = args.common.connect().and_then(|mut client| {
        if args.describe {
            describe(&mut client, kind, name, args.all)
        } else {
            match name {
                Some(name) => alter(&mut client, &args, kind, &name),
                None => Err(AdminError::Invalid(
                    "An entity name must be specified with --alter of topics (--entity-name or --topic), or --entity-name / --entity-default for brokers".into(),
                )),
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(AdminError::Invalid(m)) => {
            eprintln!("{m}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!(
                "Error while executing config command with args '{}'",
                command_line.join(" ")
            );
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// The entity the flags name: its kind, and its name (`Some("")` for the broker default,
/// `None` for "every one").
fn entity(args: &Args) -> Result<(Kind, Option<String>), String> {
    if let Some(t) = &args.topic {
        return Ok((Kind::Topic, Some(t.clone())));
    }
    if let Some(b) = &args.broker {
        return Ok((Kind::Broker, Some(b.clone())));
    }
    let kind = match args.entity_type.as_deref() {
        Some("topics") => Kind::Topic,
        Some("brokers") => Kind::Broker,
        _ => return Err("--entity-type must be specified (topics or brokers)".into()),
    };
    if args.entity_default {
        if kind != Kind::Broker {
            return Err("--entity-default is only for --entity-type brokers here".into());
        }
        return Ok((kind, Some(String::new())));
    }
    if kind == Kind::Broker {
        if let Some(n) = &args.entity_name {
            if n.parse::<i32>().is_err() {
                return Err(format!(
                    "The entity name for brokers must be a valid integer broker id, found: {n}"
                ));
            }
        }
    }
    Ok((kind, args.entity_name.clone()))
}

/// The resource type and the dynamic source of an entity.
fn resource(kind: Kind, name: &str) -> (i8, i8) {
    match kind {
        Kind::Topic => (RESOURCE_TOPIC, SOURCE_DYNAMIC_TOPIC),
        Kind::Broker if name.is_empty() => (RESOURCE_BROKER, SOURCE_DYNAMIC_DEFAULT_BROKER),
        Kind::Broker => (RESOURCE_BROKER, SOURCE_DYNAMIC_BROKER),
    }
}

/// Where requests about an entity go: a broker's own configs to that broker (as Kafka's admin
/// client sends them), the rest to any broker.
fn target(kind: Kind, name: &str) -> Target {
    match (kind, name.parse::<i32>()) {
        (Kind::Broker, Ok(id)) => Target::Node(id),
        _ => Target::Any,
    }
}

/// The entity's configs from `source` (all of them with `None`), sorted by name.
fn configs(
    client: &mut Client,
    kind: Kind,
    name: &str,
    source: Option<i8>,
    synonyms: bool,
) -> Result<Vec<DescribeConfigsResourceResult>, AdminError> {
    let (resource_type, _) = resource(kind, name);
    let (_, resp) = client.call(target(kind, name), (1, 4), |_| {
        DescribeConfigsRequest::default()
            .with_resources(vec![DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name.to_string()))
                .with_configuration_keys(None)])
            .with_include_synonyms(synonyms)
    })?;
    let r = resp
        .results
        .into_iter()
        .next()
        .ok_or_else(|| AdminError::Protocol("DescribeConfigs answered no resource".into()))?;
    AdminError::check(r.error_code, r.error_message.as_ref())?;
    let mut entries: Vec<_> = r
        .configs
        .into_iter()
        .filter(|c| source.is_none_or(|s| c.config_source == s))
        .collect();
    entries.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    Ok(entries)
}

fn describe(
    client: &mut Client,
    kind: Kind,
    name: Option<String>,
    all: bool,
) -> Result<(), AdminError> {
    let names = match name {
        Some(n) => vec![n],
        None => {
            let md = client.metadata(match kind {
                Kind::Topic => None,
                Kind::Broker => Some(Vec::new()),
            })?;
            match kind {
                Kind::Topic => {
                    let mut names: Vec<String> = md
                        .topics
                        .iter()
                        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                        .collect();
                    names.sort();
                    names
                }
                Kind::Broker => {
                    let mut ids: Vec<i32> = md.brokers.iter().map(|b| b.node_id.0).collect();
                    ids.sort();
                    let mut names: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
                    names.push(String::new());
                    names
                }
            }
        }
    };
    for name in names {
        let (_, dynamic) = resource(kind, &name);
        let noun = match kind {
            Kind::Topic => "topic",
            Kind::Broker => "broker",
        };
        if kind == Kind::Broker && name.is_empty() {
            println!("Default configs for brokers in the cluster are:");
        } else {
            let which = if all { "All" } else { "Dynamic" };
            println!("{which} configs for {noun} {name} are:");
        }
        let source = if all { None } else { Some(dynamic) };
        for e in configs(client, kind, &name, source, true)? {
            let value =
                |v: &Option<StrBytes>| v.as_ref().map_or("null".to_string(), |v| v.to_string());
            let synonyms: Vec<String> = e
                .synonyms
                .iter()
                .map(|s| {
                    format!(
                        "{}:{}={}",
                        config_source_name(s.source),
                        s.name.as_str(),
                        value(&s.value)
                    )
                })
                .collect();
            println!(
                "  {}={} sensitive={} synonyms={{{}}}",
                e.name.as_str(),
                value(&e.value),
                e.is_sensitive,
                synonyms.join(", ")
            );
        }
    }
    Ok(())
}

fn alter(client: &mut Client, args: &Args, kind: Kind, name: &str) -> Result<(), AdminError> {
    let mut added = Vec::new();
    for a in &args.add_config {
        added.extend(parse_config_list(a).map_err(AdminError::Invalid)?);
    }
    let deleted: Vec<String> = args
        .delete_config
        .iter()
        .flat_map(|d| d.split(','))
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    if added.is_empty() && deleted.is_empty() {
        return Err(AdminError::Invalid(
            "At least one of --add-config or --delete-config must be specified with --alter".into(),
        ));
    }
    let (resource_type, dynamic) = resource(kind, name);
    if !deleted.is_empty() {
        // As Kafka's tool: only keys that are set dynamically can be deleted.
        let existing = configs(client, kind, name, Some(dynamic), false)?;
        let invalid: Vec<&str> = deleted
            .iter()
            .filter(|k| !existing.iter().any(|e| e.name.as_str() == k.as_str()))
            .map(|k| k.as_str())
            .collect();
        if !invalid.is_empty() {
            return Err(AdminError::Invalid(format!(
                "Invalid config(s): {}",
                invalid.join(",")
            )));
        }
    }
    let mut ops: Vec<AlterableConfig> = added
        .into_iter()
        .map(|(k, v)| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k))
                .with_config_operation(OP_SET)
                .with_value(Some(StrBytes::from_string(v)))
        })
        .collect();
    ops.extend(deleted.into_iter().map(|k| {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(k))
            .with_config_operation(OP_DELETE)
            .with_value(None)
    }));
    let (_, resp) = client.call(target(kind, name), (0, 1), |_| {
        IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name.to_string()))
                .with_configs(ops),
        ])
    })?;
    for r in &resp.responses {
        AdminError::check(r.error_code, r.error_message.as_ref())?;
    }
    match kind {
        Kind::Topic => println!("Completed updating config for topic {name}."),
        Kind::Broker if name.is_empty() => {
            println!("Completed updating default config for brokers in the cluster.")
        }
        Kind::Broker => println!("Completed updating config for broker {name}."),
    }
    Ok(())
}
