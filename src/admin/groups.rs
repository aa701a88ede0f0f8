//! `shardlog groups` (`bin/kafka-consumer-groups.sh`): list, describe, delete consumer groups
//! and reset their committed offsets, with the flags and output of Kafka's
//! `kafka-consumer-groups.sh` (the 4.0 layout: one row per line and a final newline).
//!
//! Runtime errors print `\nError: <message>` on stdout as Kafka's tool does, but exit 1 where
//! Kafka 3.9 exits 0, so that scripts notice; usage errors exit 1 as in Kafka.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{ArgGroup, Parser};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest,
    GroupId, ListGroupsRequest, ListOffsetsRequest, OffsetCommitRequest, OffsetFetchRequest,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::client::{AdminError, Client, Target};
use super::{parse, Common};

/// Printed for a value a row does not have, as Kafka's tool prints it.
const MISSING: &str = "-";
/// How long FindCoordinator is retried while a coordinator is loading or not yet available
/// (a broker creates `__consumer_offsets` on the first FindCoordinator).
const COORDINATOR_WAIT_MS: u64 = 15_000;
/// The pause between two such tries.
const COORDINATOR_RETRY_MS: u64 = 100;
/// ListOffsets timestamps: the log end (high watermark) and the log start.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

/// List, describe, delete consumer groups and reset their offsets (kafka-consumer-groups.sh).
#[derive(Parser, Debug)]
#[command(group(ArgGroup::new("action").required(true)
    .args(["list", "describe", "delete", "reset_offsets"])))]
struct Args {
    #[command(flatten)]
    common: Common,
    /// List the consumer groups.
    #[arg(long)]
    list: bool,
    /// Describe groups: each partition's committed offset, log end, lag and owner.
    #[arg(long)]
    describe: bool,
    /// Delete groups (they must have no members).
    #[arg(long)]
    delete: bool,
    /// Reset a group's committed offsets (dry run unless --execute).
    #[arg(long)]
    reset_offsets: bool,
    /// The group; may be repeated.
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// Every consumer group (instead of --group).
    #[arg(long)]
    all_groups: bool,
    /// Reset scope: a topic, or some of its partitions as TOPIC:0,1; may be repeated.
    #[arg(long = "topic", value_name = "TOPIC[:P,...]")]
    topics: Vec<String>,
    /// Reset scope: every partition the group has committed offsets for.
    #[arg(long)]
    all_topics: bool,
    /// Reset to the log start.
    #[arg(long)]
    to_earliest: bool,
    /// Reset to the log end.
    #[arg(long)]
    to_latest: bool,
    /// Reset to the first offset at or after a time: yyyy-MM-ddTHH:mm:ss.SSS, with an
    /// optional zone (Z, +01:00, +0100); UTC without one.
    #[arg(long, value_name = "DATETIME")]
    to_datetime: Option<String>,
    /// Move each committed offset by N (may be negative), within the log.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    shift_by: Option<i64>,
    /// Reset to offset N, within the log.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    to_offset: Option<i64>,
    /// Apply the reset.
    #[arg(long, conflicts_with = "dry_run")]
    execute: bool,
    /// Only show the reset (the default).
    #[arg(long)]
    dry_run: bool,
}

/// Runs `shardlog groups`; `args[0]` is the program name.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let args: Args = match parse(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if let Err(usage) = check_usage(&args) {
        eprintln!("{usage}");
        return ExitCode::from(1);
    }
    let result = args
        .common
        .connect()
        .map_err(Failure::from)
        .and_then(|mut client| {
            if args.list {
                list(&mut client)
            } else if args.describe {
                describe(&mut client, &args)
            } else if args.delete {
                delete(&mut client, &args)
            } else {
                reset(&mut client, &args)
            }
        });
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(Failure::Usage(m)) => {
            eprintln!("{m}");
            ExitCode::from(1)
        }
        Err(Failure::Admin(e)) => {
            println!("\nError: Executing consumer group command failed due to {e}");
            ExitCode::from(1)
        }
    }
}

/// How a command ended once it ran: it printed its own errors for `Failed`.
enum Outcome {
    Done,
    Failed,
}

/// What stops a command: a usage error (found once the broker answered) or a broker error.
enum Failure {
    Usage(String),
    Admin(AdminError),
}

impl From<AdminError> for Failure {
    fn from(e: AdminError) -> Failure {
        Failure::Admin(e)
    }
}

/// The checks Kafka's option parser makes before connecting.
fn check_usage(args: &Args) -> Result<(), String> {
    let selects = !args.groups.is_empty() || args.all_groups;
    if (args.describe || args.delete || args.reset_offsets) && !selects {
        return Err("Option [describe], [delete] and [reset-offsets] take one of these options: [all-groups], [group]".into());
    }
    if args.delete && (!args.topics.is_empty() || args.all_topics) {
        return Err("Option [delete] takes no [topic] or [all-topics]: use --delete-offsets, which these tools do not have yet".into());
    }
    if args.reset_offsets {
        let scenarios = [
            args.to_earliest,
            args.to_latest,
            args.to_datetime.is_some(),
            args.shift_by.is_some(),
            args.to_offset.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        if scenarios != 1 {
            return Err("Option [reset-offsets] takes exactly one of: [to-earliest], [to-latest], [to-datetime], [shift-by], [to-offset]".into());
        }
        if args.topics.is_empty() && !args.all_topics {
            return Err("One of the reset scopes should be defined: --all-topics, --topic.".into());
        }
        if !args.topics.is_empty() && args.all_topics {
            return Err("Option [reset-offsets] takes only one of [topic] and [all-topics]".into());
        }
        if !args.execute && !args.dry_run {
            eprintln!("WARN: No action will be performed as the --execute option is missing.In a future major release, the default behavior of this command will be to prompt the user before executing the reset rather than doing a dry run. You should add the --dry-run option explicitly if you are scripting this command and want to keep the current default behavior without prompting.");
        }
    }
    Ok(())
}

/// Consumer groups (protocol type "consumer", or none yet) of every broker, sorted.
fn list_groups(client: &mut Client) -> Result<Vec<String>, AdminError> {
    let md = client.metadata(Some(Vec::new()))?;
    let mut groups = BTreeSet::new();
    for b in &md.brokers {
        let (_, resp) = client.call(Target::Node(b.node_id.0), (0, 4), |_| {
            ListGroupsRequest::default()
        })?;
        AdminError::check(resp.error_code, None)?;
        for g in resp.groups {
            let t = g.protocol_type.as_str();
            if t.is_empty() || t == "consumer" {
                groups.insert(g.group_id.0.to_string());
            }
        }
    }
    Ok(groups.into_iter().collect())
}

fn list(client: &mut Client) -> Result<Outcome, Failure> {
    for g in list_groups(client)? {
        println!("{g}");
    }
    Ok(Outcome::Done)
}

/// The groups the command names (`--group`, or every group with `--all-groups`).
fn selected(client: &mut Client, args: &Args) -> Result<Vec<String>, AdminError> {
    if args.all_groups {
        list_groups(client)
    } else {
        Ok(args.groups.clone())
    }
}

/// The coordinator of `group`: FindCoordinator, retried while it is loading.
fn coordinator(client: &mut Client, group: &str) -> Result<i32, AdminError> {
    let deadline = Instant::now() + Duration::from_millis(COORDINATOR_WAIT_MS);
    loop {
        let (_, resp) = client.call(Target::Any, (0, 3), |_| {
            FindCoordinatorRequest::default()
                .with_key(StrBytes::from_string(group.to_string()))
                .with_key_type(0)
        })?;
        match AdminError::from_code(resp.error_code, resp.error_message.as_ref()) {
            None => {
                client.learn_broker(resp.node_id.0, resp.host.as_str(), resp.port);
                return Ok(resp.node_id.0);
            }
            Some(AdminError::Kafka {
                error:
                    ResponseError::CoordinatorNotAvailable | ResponseError::CoordinatorLoadInProgress,
                ..
            }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(COORDINATOR_RETRY_MS));
            }
            Some(e) => return Err(e),
        }
    }
}

/// DescribeGroups for one group on its coordinator.
fn describe_group(
    client: &mut Client,
    node: i32,
    group: &str,
) -> Result<DescribedGroup, AdminError> {
    let (_, resp) = client.call(Target::Node(node), (0, 5), |_| {
        DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(StrBytes::from_string(group.to_string()))])
    })?;
    let g = resp
        .groups
        .into_iter()
        .find(|g| g.group_id.0.as_str() == group)
        .ok_or_else(|| {
            AdminError::Protocol(format!("DescribeGroups did not answer for {group}"))
        })?;
    AdminError::check(g.error_code, g.error_message.as_ref())?;
    Ok(g)
}

/// A topic partition.
type Tp = (String, i32);

/// The group's committed offsets (partitions without one are left out).
fn committed(client: &mut Client, node: i32, group: &str) -> Result<BTreeMap<Tp, i64>, AdminError> {
    // v2 is the first where null topics means "all"; v8 batches groups, which is not needed.
    let (_, resp) = client.call(Target::Node(node), (2, 7), |_| {
        OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_topics(None)
    })?;
    AdminError::check(resp.error_code, None)?;
    let mut out = BTreeMap::new();
    for t in resp.topics {
        for p in t.partitions {
            AdminError::check(p.error_code, None)?;
            if p.committed_offset >= 0 {
                out.insert(
                    (t.name.0.to_string(), p.partition_index),
                    p.committed_offset,
                );
            }
        }
    }
    Ok(out)
}

/// ListOffsets for `partitions` at `timestamp` (or [`LATEST`], [`EARLIEST`]), each asked of
/// its leader. A partition whose leader or offset is unknown is left out; an offset of -1 (no
/// record at or after the timestamp) is kept as -1.
fn list_offsets(
    client: &mut Client,
    partitions: &BTreeSet<Tp>,
    timestamp: i64,
) -> Result<HashMap<Tp, i64>, AdminError> {
    let topics: BTreeSet<String> = partitions.iter().map(|(t, _)| t.clone()).collect();
    let md = client.metadata(Some(topics.into_iter().collect()))?;
    let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
    for t in &md.topics {
        let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
            continue;
        };
        for p in &t.partitions {
            if p.leader_id.0 >= 0 && partitions.contains(&(name.clone(), p.partition_index)) {
                by_leader
                    .entry(p.leader_id.0)
                    .or_default()
                    .entry(name.clone())
                    .or_default()
                    .push(p.partition_index);
            }
        }
    }
    let mut out = HashMap::new();
    for (leader, topics) in by_leader {
        let req_topics: Vec<ListOffsetsTopic> = topics
            .into_iter()
            .map(|(name, parts)| {
                ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|p| {
                                ListOffsetsPartition::default()
                                    .with_partition_index(p)
                                    .with_current_leader_epoch(-1)
                                    .with_timestamp(timestamp)
                            })
                            .collect(),
                    )
            })
            .collect();
        let (_, resp) = client.call(Target::Node(leader), (1, 7), |_| {
            ListOffsetsRequest::default()
                .with_replica_id(kafka_protocol::messages::BrokerId(-1))
                .with_isolation_level(0)
                .with_topics(req_topics)
        })?;
        for t in resp.topics {
            for p in t.partitions {
                if p.error_code == 0 {
                    out.insert((t.name.0.to_string(), p.partition_index), p.offset);
                }
            }
        }
    }
    Ok(out)
}

/// The partitions a member was assigned, from its consumer-protocol assignment bytes.
fn assigned(member_assignment: &bytes::Bytes) -> Vec<Tp> {
    let mut buf = member_assignment.clone();
    if buf.len() < 2 {
        return Vec::new();
    }
    // The assignment starts with its own version (which the decoder does not read); kafka-
    // protocol knows versions 0 to 3, which newer versions only extend.
    let version = i16::from_be_bytes([buf[0], buf[1]]).clamp(0, 3);
    bytes::Buf::advance(&mut buf, 2);
    let Ok(a) = ConsumerProtocolAssignment::decode(&mut buf, version) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for tp in a.assigned_partitions {
        for p in tp.partitions {
            out.push((tp.topic.0.to_string(), p));
        }
    }
    out
}

/// One row of `--describe`.
struct Row {
    topic: Option<String>,
    partition: Option<i32>,
    current: Option<i64>,
    log_end: Option<i64>,
    consumer_id: String,
    host: String,
    client_id: String,
}

impl Row {
    fn lag(&self) -> Option<i64> {
        Some(self.log_end? - self.current?)
    }
}

fn describe(client: &mut Client, args: &Args) -> Result<Outcome, Failure> {
    let mut outcome = Outcome::Done;
    for group in selected(client, args)? {
        let node = coordinator(client, &group)?;
        let g = describe_group(client, node, &group)?;
        let offsets = committed(client, node, &group)?;
        // Members with partitions, the largest assignment first, each member's partitions
        // by number; then the committed partitions nobody is assigned.
        let mut members: Vec<(Vec<Tp>, &_)> = g
            .members
            .iter()
            .map(|m| {
                let mut parts = assigned(&m.member_assignment);
                parts.sort_by_key(|(_, p)| *p);
                (parts, m)
            })
            .filter(|(parts, _)| !parts.is_empty())
            .collect();
        members.sort_by_key(|(parts, _)| std::cmp::Reverse(parts.len()));
        let mut wanted: BTreeSet<Tp> = offsets.keys().cloned().collect();
        for (parts, _) in &members {
            wanted.extend(parts.iter().cloned());
        }
        let log_ends = list_offsets(client, &wanted, LATEST)?;
        let row = |tp: &Tp, consumer_id: &str, host: &str, client_id: &str| Row {
            topic: Some(tp.0.clone()),
            partition: Some(tp.1),
            current: offsets.get(tp).copied(),
            log_end: log_ends.get(tp).copied().filter(|o| *o >= 0),
            consumer_id: consumer_id.to_string(),
            host: host.to_string(),
            client_id: client_id.to_string(),
        };
        let mut rows = Vec::new();
        let mut seen = BTreeSet::new();
        for (parts, m) in &members {
            for tp in parts {
                seen.insert(tp.clone());
                rows.push(row(
                    tp,
                    m.member_id.as_str(),
                    m.client_host.as_str(),
                    m.client_id.as_str(),
                ));
            }
        }
        for tp in offsets.keys().filter(|tp| !seen.contains(*tp)) {
            rows.push(row(tp, MISSING, MISSING, MISSING));
        }

        match g.group_state.as_str() {
            "Dead" => {
                println!("\nError: Consumer group '{group}' does not exist.");
                outcome = Outcome::Failed;
                continue;
            }
            "Empty" => eprintln!("\nConsumer group '{group}' has no active members."),
            "PreparingRebalance" | "CompletingRebalance" | "Assigning" | "Reconciling" => {
                eprintln!("\nWarning: Consumer group '{group}' is rebalancing.")
            }
            _ => {}
        }
        if !rows.is_empty() {
            print!("{}", offsets_table(&group, &rows));
        }
    }
    Ok(outcome)
}

/// Kafka's offsets table: columns as wide as their longest value (at least 15), every line
/// starting with a newline, and a final newline.
fn offsets_table(group: &str, rows: &[Row]) -> String {
    let width = |f: &dyn Fn(&Row) -> usize| rows.iter().map(f).max().unwrap_or(0).max(15);
    let g = group.len().max(15);
    let t = width(&|r| r.topic.as_deref().unwrap_or(MISSING).len());
    let c = width(&|r| r.consumer_id.len());
    let h = width(&|r| r.host.len());
    let line = |cols: [&str; 9]| {
        format!(
            "\n{:<g$} {:<t$} {:<10} {:<15} {:<15} {:<15} {:<c$} {:<h$} {}",
            cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8]
        )
    };
    let mut out = line([
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]);
    let show = |v: Option<i64>| v.map_or(MISSING.to_string(), |v| v.to_string());
    for r in rows {
        out.push_str(&line([
            group,
            r.topic.as_deref().unwrap_or(MISSING),
            &r.partition.map_or(MISSING.to_string(), |p| p.to_string()),
            &show(r.current),
            &show(r.log_end),
            &show(r.lag()),
            &r.consumer_id,
            &r.host,
            &r.client_id,
        ]));
    }
    out.push('\n');
    out
}

fn delete(client: &mut Client, args: &Args) -> Result<Outcome, Failure> {
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for group in selected(client, args)? {
        let node = coordinator(client, &group)?;
        let (_, resp) = client.call(Target::Node(node), (0, 2), |_| {
            DeleteGroupsRequest::default()
                .with_groups_names(vec![GroupId(StrBytes::from_string(group.clone()))])
        })?;
        let code = resp
            .results
            .iter()
            .find(|r| r.group_id.0.as_str() == group)
            .map(|r| r.error_code)
            .ok_or_else(|| {
                AdminError::Protocol(format!("DeleteGroups did not answer for {group}"))
            })?;
        match ResponseError::try_from_code(code) {
            None => deleted.push(group),
            Some(e) => failed.push((group, e)),
        }
    }
    if failed.is_empty() {
        println!(
            "Deletion of requested consumer groups ('{}') was successful.",
            deleted.join(", ")
        );
        return Ok(Outcome::Done);
    }
    println!("\nError: Deletion of some consumer groups failed:");
    for (group, e) in &failed {
        println!("* Group '{group}' could not be deleted due to: {e:?}: {e}");
    }
    if !deleted.is_empty() {
        let names: Vec<String> = deleted.iter().map(|g| format!("'{g}'")).collect();
        println!(
            "\nThese consumer groups were deleted successfully: {}",
            names.join(", ")
        );
    }
    Ok(Outcome::Failed)
}

fn reset(client: &mut Client, args: &Args) -> Result<Outcome, Failure> {
    let timestamp = match &args.to_datetime {
        Some(s) => Some(parse_datetime_ms(s).map_err(Failure::Usage)?),
        None => None,
    };
    let mut plans: Vec<(String, BTreeMap<Tp, i64>)> = Vec::new();
    let mut outcome = Outcome::Done;
    for group in selected(client, args)? {
        let node = coordinator(client, &group)?;
        let g = describe_group(client, node, &group)?;
        let state = g.group_state.as_str();
        if state != "Empty" && state != "Dead" {
            println!("\nError: Assignments can only be reset if the group '{group}' is inactive, but the current state is {state}.");
            plans.push((group, BTreeMap::new()));
            outcome = Outcome::Failed;
            continue;
        }
        let offsets = committed(client, node, &group)?;
        let partitions = scope(client, args, &offsets)?;
        let plan = plan(client, args, timestamp, &partitions, &offsets)?;
        if args.execute {
            commit(client, node, &group, &plan)?;
        }
        plans.push((group, plan));
    }
    if !plans.is_empty() {
        let mut out = format!(
            "\n{:<30} {:<30} {:<10} {:<15}",
            "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"
        );
        for (group, plan) in &plans {
            for ((topic, partition), offset) in plan {
                out.push_str(&format!(
                    "\n{group:<30} {topic:<30} {partition:<10} {offset:<15}"
                ));
            }
        }
        println!("{out}");
    }
    Ok(outcome)
}

/// The partitions `--all-topics` or `--topic T[:p,...]` name.
fn scope(
    client: &mut Client,
    args: &Args,
    offsets: &BTreeMap<Tp, i64>,
) -> Result<BTreeSet<Tp>, Failure> {
    if args.all_topics {
        return Ok(offsets.keys().cloned().collect());
    }
    let mut out = BTreeSet::new();
    let mut whole = Vec::new();
    for spec in &args.topics {
        match spec.split_once(':') {
            Some((topic, parts)) => {
                for p in parts.split(',').filter(|p| !p.trim().is_empty()) {
                    let p: i32 = p.trim().parse().map_err(|_| {
                        Failure::Usage(format!("Invalid partition {p:?} in --topic {spec}"))
                    })?;
                    out.insert((topic.to_string(), p));
                }
            }
            None => whole.push(spec.clone()),
        }
    }
    if !whole.is_empty() {
        let md = client.metadata(Some(whole.clone()))?;
        for t in md.topics {
            let name = t.name.map(|n| n.0.to_string()).unwrap_or_default();
            AdminError::check(t.error_code, None)
                .map_err(|e| AdminError::Invalid(format!("topic {name}: {e}")))?;
            for p in t.partitions {
                out.insert((name.clone(), p.partition_index));
            }
        }
    }
    Ok(out)
}

/// The new offset of each partition, by the scenario asked, within [log start, log end] as
/// Kafka's tool clamps `--shift-by` and `--to-offset`.
fn plan(
    client: &mut Client,
    args: &Args,
    timestamp: Option<i64>,
    partitions: &BTreeSet<Tp>,
    offsets: &BTreeMap<Tp, i64>,
) -> Result<BTreeMap<Tp, i64>, Failure> {
    let starts = list_offsets(client, partitions, EARLIEST)?;
    let ends = list_offsets(client, partitions, LATEST)?;
    let by_time = match timestamp {
        Some(ts) => Some(list_offsets(client, partitions, ts)?),
        None => None,
    };
    let mut plan = BTreeMap::new();
    for tp in partitions {
        let (Some(&start), Some(&end)) = (starts.get(tp), ends.get(tp)) else {
            return Err(Failure::Usage(format!(
                "Error getting offsets of topic partition: {}-{}",
                tp.0, tp.1
            )));
        };
        let clamp = |o: i64| o.clamp(start, end.max(start));
        let offset = if args.to_earliest {
            start
        } else if args.to_latest {
            end
        } else if let Some(n) = args.to_offset {
            clamp(n)
        } else if let Some(n) = args.shift_by {
            let Some(current) = offsets.get(tp) else {
                return Err(Failure::Usage(format!(
                    "Cannot shift offset for partition {}-{} since there is no current committed offset",
                    tp.0, tp.1
                )));
            };
            clamp(current.saturating_add(n))
        } else {
            // --to-datetime: no record at or after the time means the log end.
            match by_time.as_ref().and_then(|m| m.get(tp)) {
                Some(&o) if o >= 0 => o,
                _ => end,
            }
        };
        plan.insert(tp.clone(), offset);
    }
    Ok(plan)
}

/// Commits `plan` as the group's offsets, as an admin client does (no generation, no member).
fn commit(
    client: &mut Client,
    node: i32,
    group: &str,
    plan: &BTreeMap<Tp, i64>,
) -> Result<(), AdminError> {
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((topic, partition), offset) in plan {
        topics.entry(topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset)
                .with_committed_leader_epoch(-1),
        );
    }
    let req_topics = topics
        .into_iter()
        .map(|(name, parts)| {
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                .with_partitions(parts)
        })
        .collect();
    let (_, resp) = client.call(Target::Node(node), (2, 8), |_| {
        OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::default())
            .with_retention_time_ms(-1)
            .with_topics(req_topics)
    })?;
    for t in resp.topics {
        for p in t.partitions {
            AdminError::check(p.error_code, None)?;
        }
    }
    Ok(())
}

/// Kafka's `Utils.getDateTime`: `yyyy-MM-ddTHH:mm:ss.SSS` and an optional zone (`Z`, `+HH`,
/// `+HHMM`, `+HH:MM`); UTC without one. Milliseconds since the epoch.
fn parse_datetime_ms(s: &str) -> Result<i64, String> {
    let bad = || {
        format!("Error parsing timestamp '{s}': expected the format yyyy-MM-dd'T'HH:mm:ss.SSS with an optional zone such as Z or +01:00")
    };
    let b = s.as_bytes();
    if b.len() < 23
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
    {
        return Err(bad());
    }
    let num = |from: usize, to: usize| -> Result<i64, String> {
        let part = s.get(from..to).ok_or_else(bad)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<i64>().map_err(|_| bad())
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second, milli) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    let zone = &s[23..];
    let offset_minutes = match zone {
        "" | "Z" => 0,
        _ => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(bad()),
            };
            let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
            if !digits.bytes().all(|c| c.is_ascii_digit())
                || !(digits.len() == 2 || digits.len() == 4)
            {
                return Err(bad());
            }
            let hours: i64 = digits[..2].parse().map_err(|_| bad())?;
            let minutes: i64 = if digits.len() == 4 {
                digits[2..].parse().map_err(|_| bad())?
            } else {
                0
            };
            sign * (hours * 60 + minutes)
        }
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1000 + milli)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Times parse as Kafka's tool reads them: UTC without a zone, every zone form.
    #[test]
    fn datetimes_parse_as_kafka_does() {
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:00.000").unwrap(), 0);
        assert_eq!(
            parse_datetime_ms("2024-02-29T12:34:56.789Z").unwrap(),
            1_709_210_096_789
        );
        assert_eq!(
            parse_datetime_ms("2024-02-29T13:34:56.789+01:00").unwrap(),
            1_709_210_096_789
        );
        assert_eq!(
            parse_datetime_ms("2024-02-29T13:34:56.789+0100").unwrap(),
            1_709_210_096_789
        );
        assert_eq!(
            parse_datetime_ms("2024-02-29T11:34:56.789-01").unwrap(),
            1_709_210_096_789
        );
        assert!(parse_datetime_ms("2024-02-29 12:34:56.789").is_err());
        assert!(parse_datetime_ms("2024-02-29T12:34:56").is_err());
        assert!(parse_datetime_ms("2024-13-01T00:00:00.000").is_err());
    }

    /// A member's assignment as librdkafka sends it (version 0: topic "x", partitions 0 and 1,
    /// empty user data) decodes to its partitions; garbage decodes to none.
    #[test]
    fn assignments_decode() {
        let bytes =
            bytes::Bytes::from_static(b"\0\0\0\0\0\x01\0\x01x\0\0\0\x02\0\0\0\0\0\0\0\x01\0\0\0\0");
        assert_eq!(
            assigned(&bytes),
            [("x".to_string(), 0), ("x".to_string(), 1)]
        );
        assert!(assigned(&bytes::Bytes::from_static(b"\0\0\xff")).is_empty());
        assert!(assigned(&bytes::Bytes::new()).is_empty());
    }

    /// The table has Kafka's columns, widths of at least 15, "-" for what is missing, one row
    /// per line and a final newline.
    #[test]
    fn offsets_table_matches_kafka_layout() {
        let rows = [Row {
            topic: Some("t".into()),
            partition: Some(0),
            current: Some(3),
            log_end: Some(10),
            consumer_id: MISSING.into(),
            host: MISSING.into(),
            client_id: MISSING.into(),
        }];
        let s = offsets_table("g", &rows);
        let lines: Vec<&str> = s.split('\n').collect();
        assert_eq!(lines[0], "");
        assert_eq!(
            lines[1],
            "GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID     HOST            CLIENT-ID"
        );
        assert_eq!(
            lines[2],
            "g               t               0          3               10              7               -               -               -"
        );
        assert_eq!(lines[3], "");
        assert_eq!(lines.len(), 4);
    }
}
