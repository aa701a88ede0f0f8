//! `shardlog topics` (`bin/kafka-topics.sh`): create, list, describe, alter partitions and
//! delete topics, with Kafka 3.9's `kafka-topics.sh` flags and output.
//!
//! As Kafka's tool: `--topic` is a regular expression matched against the whole topic name
//! (commas mean "or") except with `--create`; errors print `Error while executing topic command
//! : <message>` on stdout and exit 1.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{ArgGroup, Parser};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::client::{AdminError, Client, Target, OPERATION_TIMEOUT_MS};
use super::{kafka_uuid, parse, parse_config_pair, Common};

/// DescribeConfigs resource type of a topic.
pub const RESOURCE_TOPIC: i8 = 2;
/// DescribeConfigs source of a key that is not set anywhere (its default).
const SOURCE_DEFAULT: i8 = 5;

/// Create, list, describe, alter (partitions) and delete topics (kafka-topics.sh).
#[derive(Parser, Debug)]
#[command(group(ArgGroup::new("action").required(true)
    .args(["create", "list", "describe", "alter", "delete"])))]
struct Args {
    #[command(flatten)]
    common: Common,
    /// Create a topic (--topic, with --partitions, --replication-factor, --config).
    #[arg(long)]
    create: bool,
    /// List the topics' names.
    #[arg(long)]
    list: bool,
    /// Describe topics: id, partition count, replication factor, configs, partitions.
    #[arg(long)]
    describe: bool,
    /// Add partitions to a topic (--topic T --partitions N).
    #[arg(long)]
    alter: bool,
    /// Delete topics.
    #[arg(long)]
    delete: bool,
    /// The topic (a regular expression except with --create).
    #[arg(long, value_name = "TOPIC")]
    topic: Option<String>,
    /// Partitions of the topic created, or the new count with --alter.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    partitions: Option<i32>,
    /// Replicas of each partition of the topic created.
    #[arg(long, value_name = "R", allow_negative_numbers = true)]
    replication_factor: Option<i32>,
    /// A topic config key=value for --create; may be repeated.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    configs: Vec<String>,
    /// With --create: no error if the topic exists.
    #[arg(long)]
    if_not_exists: bool,
    /// With --alter, --delete, --describe: no error if no topic matches.
    #[arg(long)]
    if_exists: bool,
    /// Leave internal topics (__consumer_offsets, ...) out of --list and --describe.
    #[arg(long)]
    exclude_internal: bool,
}

/// Runs `shardlog topics`; `args[0]` is the program name.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let args: Args = match parse(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    match execute(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("Error while executing topic command : {e}");
            ExitCode::from(1)
        }
    }
}

fn execute(args: &Args) -> Result<(), AdminError> {
    if args.create {
        return create(args);
    }
    let mut client = args.common.connect()?;
    if args.list {
        let mut names: Vec<String> = topics(&mut client, args)?
            .into_iter()
            .map(|t| t.name)
            .collect();
        names.sort();
        println!("{}", names.join("\n"));
        return Ok(());
    }
    if args.describe {
        return describe(&mut client, args);
    }
    let topic = args.topic.as_deref().ok_or_else(|| {
        AdminError::Invalid("--topic is required with --alter and --delete".into())
    })?;
    let matched = topics(&mut client, args)?;
    if matched.is_empty() {
        if args.if_exists {
            return Ok(());
        }
        return Err(not_found(topic));
    }
    if args.alter {
        if !args.configs.is_empty() {
            return Err(AdminError::Invalid(
                "--config is not accepted with --alter: use kafka-configs.sh (shardlog configs)"
                    .into(),
            ));
        }
        let count = args
            .partitions
            .ok_or_else(|| AdminError::Invalid("--partitions is required with --alter".into()))?;
        return alter_partitions(&mut client, &matched, count);
    }
    delete(&mut client, &matched)
}

/// A topic as Metadata lists it.
struct Topic {
    name: String,
    internal: bool,
    meta: MetadataResponseTopic,
}

/// The topics `--topic` matches (all of them without it), internal ones left out with
/// `--exclude-internal`.
fn topics(client: &mut Client, args: &Args) -> Result<Vec<Topic>, AdminError> {
    let pattern = match &args.topic {
        Some(t) => Some(include_list(t)?),
        None => None,
    };
    let md = client.metadata(None)?;
    let mut out = Vec::new();
    for t in md.topics {
        let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
            continue;
        };
        if t.is_internal && args.exclude_internal {
            continue;
        }
        if pattern.as_ref().is_some_and(|p| !p.is_match(&name)) {
            continue;
        }
        out.push(Topic {
            name,
            internal: t.is_internal,
            meta: t,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Kafka's `IncludeList`: surrounding quotes trimmed, commas as alternatives, the whole name
/// matched.
fn include_list(spec: &str) -> Result<regex::Regex, AdminError> {
    let spec = spec
        .trim()
        .trim_start_matches(['"', '\''])
        .trim_end_matches(['"', '\''])
        .replace(',', "|");
    regex::Regex::new(&format!("^(?:{spec})$"))
        .map_err(|e| AdminError::Invalid(format!("invalid --topic pattern: {e}")))
}

fn not_found(topic: &str) -> AdminError {
    AdminError::Invalid(format!("Topic '{topic}' does not exist as expected"))
}

fn create(args: &Args) -> Result<(), AdminError> {
    let name = args
        .topic
        .clone()
        .ok_or_else(|| AdminError::Invalid("--topic is required with --create".into()))?;
    if let Some(n) = args.partitions {
        if n < 1 {
            return Err(AdminError::Invalid(
                "The partitions must be greater than 0".into(),
            ));
        }
    }
    let replication = match args.replication_factor {
        None => -1,
        Some(r) if (1..=i32::from(i16::MAX)).contains(&r) => r as i16,
        Some(_) => {
            return Err(AdminError::Invalid(format!(
                "The replication factor must be between 1 and {} inclusive",
                i16::MAX
            )))
        }
    };
    let mut configs = Vec::new();
    for c in &args.configs {
        let (k, v) = parse_config_pair(c).map_err(AdminError::Invalid)?;
        configs.push(
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k))
                .with_value(Some(StrBytes::from_string(v))),
        );
    }
    if name.contains('.') || name.contains('_') {
        println!("WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') could collide. To avoid issues it is best to use either, but not both.");
    }
    let mut client = args.common.connect()?;
    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.clone())))
        .with_num_partitions(args.partitions.unwrap_or(-1))
        .with_replication_factor(replication)
        .with_configs(configs);
    // v4 is the first where -1 means "the broker's default" for both counts.
    let (_, resp) = client.call(Target::Any, (4, 7), |_| {
        CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(OPERATION_TIMEOUT_MS)
    })?;
    for t in &resp.topics {
        match AdminError::from_code(t.error_code, t.error_message.as_ref()) {
            None => {}
            Some(AdminError::Kafka {
                error: kafka_protocol::error::ResponseError::TopicAlreadyExists,
                ..
            }) if args.if_not_exists => return Ok(()),
            Some(e) => return Err(e),
        }
    }
    println!("Created topic {name}.");
    Ok(())
}

fn describe(client: &mut Client, args: &Args) -> Result<(), AdminError> {
    let matched = topics(client, args)?;
    if matched.is_empty() {
        if let Some(t) = &args.topic {
            if !args.if_exists {
                return Err(not_found(t));
            }
        }
        return Ok(());
    }
    let configs = topic_configs(client, &matched)?;
    for (t, configs) in matched.iter().zip(configs) {
        AdminError::check(t.meta.error_code, None)?;
        let mut parts: Vec<_> = t.meta.partitions.iter().collect();
        parts.sort_by_key(|p| p.partition_index);
        let replication = parts.first().map(|p| p.replica_nodes.len()).unwrap_or(0);
        let mut line = format!("Topic: {}", t.name);
        if !t.meta.topic_id.is_nil() {
            line.push_str(&format!("\tTopicId: {}", kafka_uuid(&t.meta.topic_id)));
        }
        line.push_str(&format!(
            "\tPartitionCount: {}\tReplicationFactor: {replication}\tConfigs: {configs}",
            parts.len()
        ));
        println!("{line}");
        for p in parts {
            let ids = |v: &[kafka_protocol::messages::BrokerId]| {
                v.iter()
                    .map(|b| b.0.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let leader = if p.leader_id.0 < 0 {
                "none".to_string()
            } else {
                p.leader_id.0.to_string()
            };
            // Elr and LastKnownElr come from DescribeTopicPartitions; Kafka's tool prints
            // N/A when it had to fall back on Metadata, as this tool always does.
            println!(
                "\tTopic: {}\tPartition: {}\tLeader: {leader}\tReplicas: {}\tIsr: {}\tElr: N/A\tLastKnownElr: N/A",
                t.name,
                p.partition_index,
                ids(&p.replica_nodes),
                ids(&p.isr_nodes)
            );
        }
    }
    Ok(())
}

/// Each topic's non-default configs as `k=v,k2=v2` (sorted by key).
fn topic_configs(client: &mut Client, topics: &[Topic]) -> Result<Vec<String>, AdminError> {
    let resources = topics
        .iter()
        .map(|t| {
            DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(StrBytes::from_string(t.name.clone()))
                .with_configuration_keys(None)
        })
        .collect();
    let (_, resp) = client.call(Target::Any, (1, 4), |_| {
        DescribeConfigsRequest::default().with_resources(resources)
    })?;
    let mut out = Vec::new();
    for t in topics {
        let r = resp
            .results
            .iter()
            .find(|r| r.resource_name.as_str() == t.name)
            .ok_or_else(|| {
                AdminError::Protocol(format!("DescribeConfigs did not answer for {}", t.name))
            })?;
        AdminError::check(r.error_code, r.error_message.as_ref())?;
        let mut entries: Vec<_> = r
            .configs
            .iter()
            .filter(|c| c.config_source != SOURCE_DEFAULT)
            .map(|c| {
                let value = if c.is_sensitive {
                    "null".to_string()
                } else {
                    c.value.as_ref().map(|v| v.to_string()).unwrap_or_default()
                };
                format!("{}={value}", c.name.as_str())
            })
            .collect();
        entries.sort();
        out.push(entries.join(","));
    }
    Ok(out)
}

fn alter_partitions(client: &mut Client, topics: &[Topic], count: i32) -> Result<(), AdminError> {
    let req_topics = topics
        .iter()
        .map(|t| {
            CreatePartitionsTopic::default()
                .with_name(TopicName(StrBytes::from_string(t.name.clone())))
                .with_count(count)
                .with_assignments(None)
        })
        .collect();
    let (_, resp) = client.call(Target::Any, (0, 3), |_| {
        CreatePartitionsRequest::default()
            .with_topics(req_topics)
            .with_timeout_ms(OPERATION_TIMEOUT_MS)
    })?;
    for r in &resp.results {
        AdminError::check(r.error_code, r.error_message.as_ref())?;
    }
    Ok(())
}

fn delete(client: &mut Client, topics: &[Topic]) -> Result<(), AdminError> {
    if let Some(t) = topics.iter().find(|t| t.internal) {
        return Err(AdminError::Invalid(format!(
            "Topic {} is a kafka internal topic and is not allowed to be marked for deletion.",
            t.name
        )));
    }
    let names: Vec<TopicName> = topics
        .iter()
        .map(|t| TopicName(StrBytes::from_string(t.name.clone())))
        .collect();
    let (_, resp) = client.call(Target::Any, (1, 6), |v| {
        let req = DeleteTopicsRequest::default().with_timeout_ms(OPERATION_TIMEOUT_MS);
        // v6 names topics in `topics` (by name or id), earlier versions in `topic_names`.
        if v >= 6 {
            req.with_topics(
                names
                    .into_iter()
                    .map(|n| DeleteTopicState::default().with_name(Some(n)))
                    .collect(),
            )
        } else {
            req.with_topic_names(names)
        }
    })?;
    for r in &resp.responses {
        AdminError::check(r.error_code, r.error_message.as_ref())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--topic` matches whole names, commas are alternatives, quotes are trimmed.
    #[test]
    fn include_list_matches_whole_names() {
        let re = include_list("'orders,pay.*'").unwrap();
        assert!(re.is_match("orders"));
        assert!(re.is_match("payments"));
        assert!(!re.is_match("orders2"));
        assert!(!re.is_match("my-orders"));
    }
}
