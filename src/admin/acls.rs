//! `shardlog acls` (`bin/kafka-acls.sh`): add, remove and list ACLs with the flags and output of
//! Kafka 3.9's `kafka-acls.sh` (`kafka.admin.AclCommand`, its `--bootstrap-server` mode), over
//! CreateAcls, DeleteAcls and DescribeAcls.
//!
//! The command line is turned into a [`Plan`] first (which bindings to create, which filters to
//! delete or describe: Kafka's expansion of `--producer`, `--consumer`, default hosts and
//! operations), then the plan is run. As Kafka 3.9 (since KAFKA-15713), `--add` and `--remove`
//! print what they do and do not list the ACLs afterwards. Errors print
//! `Error while executing ACL command: ...` on stdout and exit 1, as Kafka's tool; usage errors
//! print on stderr and exit 1.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt;
use std::io::BufRead;
use std::process::ExitCode;

use clap::Parser;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

use super::client::{AdminError, Client, Target};
use super::{parse, Common};
// Kafka's wire codes, stated once for the broker and this tool.
use shardlog::catalog::acl::{
    CLUSTER_NAME, OP_ALL, OP_ANY, OP_CREATE, OP_DESCRIBE, OP_IDEMPOTENT_WRITE, OP_READ, OP_WRITE,
    PATTERN_ANY, PATTERN_LITERAL, PATTERN_MATCH, PATTERN_PREFIXED, PERMISSION_ALLOW,
    PERMISSION_ANY, PERMISSION_DENY, RESOURCE_ANY, RESOURCE_CLUSTER, RESOURCE_DELEGATION_TOKEN,
    RESOURCE_GROUP, RESOURCE_TOPIC, RESOURCE_TRANSACTIONAL_ID, RESOURCE_USER,
};

/// The versions of CreateAcls, DescribeAcls and DeleteAcls this tool sends (v1 brought
/// pattern types; kafka-protocol knows 1 to 3).
const ACL_VERSIONS: (i16, i16) = (1, 3);

/// `AclOperation` codes and names: the enum's name (what `toString` prints) and its Pascal-case
/// name (what the command line takes, case-insensitively, and what usage messages print).
const OPERATIONS: &[(i8, &str, &str)] = &[
    (0, "UNKNOWN", "Unknown"),
    (1, "ANY", "Any"),
    (2, "ALL", "All"),
    (3, "READ", "Read"),
    (4, "WRITE", "Write"),
    (5, "CREATE", "Create"),
    (6, "DELETE", "Delete"),
    (7, "ALTER", "Alter"),
    (8, "DESCRIBE", "Describe"),
    (9, "CLUSTER_ACTION", "ClusterAction"),
    (10, "DESCRIBE_CONFIGS", "DescribeConfigs"),
    (11, "ALTER_CONFIGS", "AlterConfigs"),
    (12, "IDEMPOTENT_WRITE", "IdempotentWrite"),
    (13, "CREATE_TOKENS", "CreateTokens"),
    (14, "DESCRIBE_TOKENS", "DescribeTokens"),
];
const OP_UNKNOWN: i8 = 0;

/// Add, remove and list ACLs (kafka-acls.sh).
#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    common: Common,
    /// Add ACLs.
    #[arg(long)]
    add: bool,
    /// Remove ACLs (asks for confirmation unless --force).
    #[arg(long)]
    remove: bool,
    /// List ACLs (of the resources given, else all of them).
    #[arg(long)]
    list: bool,
    /// Assume yes to every question.
    #[arg(long)]
    force: bool,
    /// A topic ('*': every topic). Repeatable.
    #[arg(long, value_name = "TOPIC")]
    topic: Vec<String>,
    /// A consumer group ('*': every group). Repeatable.
    #[arg(long, value_name = "GROUP")]
    group: Vec<String>,
    /// The cluster.
    #[arg(long)]
    cluster: bool,
    /// A transactional id ('*': every one). Repeatable.
    #[arg(long, value_name = "ID")]
    transactional_id: Vec<String>,
    /// A delegation token id ('*': every one). Repeatable.
    #[arg(long, value_name = "TOKEN")]
    delegation_token: Vec<String>,
    /// A user principal as a resource (for CreateTokens, DescribeTokens). Repeatable.
    #[arg(long, value_name = "USER")]
    user_principal: Vec<String>,
    /// With --producer: also IdempotentWrite on the cluster.
    #[arg(long)]
    idempotent: bool,
    /// literal (default) or prefixed; for --list and --remove also any or match.
    #[arg(long, value_name = "TYPE")]
    resource_pattern_type: Option<String>,
    /// The operation allowed or denied (default All): All, Read, Write, Create, Delete, Alter,
    /// Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, CreateTokens,
    /// DescribeTokens. Repeatable.
    #[arg(long, value_name = "OPERATION")]
    operation: Vec<String>,
    /// A principal allowed, as Type:name (User:'*' is every user). Repeatable.
    #[arg(long, value_name = "PRINCIPAL")]
    allow_principal: Vec<String>,
    /// A principal denied, as Type:name. Repeatable.
    #[arg(long, value_name = "PRINCIPAL")]
    deny_principal: Vec<String>,
    /// A host the allowed principals may come from (default '*'). Repeatable.
    #[arg(long, value_name = "HOST")]
    allow_host: Vec<String>,
    /// A host the denied principals are denied from (default '*'). Repeatable.
    #[arg(long, value_name = "HOST")]
    deny_host: Vec<String>,
    /// Producer ACLs: Write, Describe, Create on the topics (Write, Describe on transactional ids).
    #[arg(long)]
    producer: bool,
    /// Consumer ACLs: Read, Describe on the topics, Read on the groups.
    #[arg(long)]
    consumer: bool,
    /// With --list: only the ACLs of this principal. Repeatable.
    #[arg(long, value_name = "PRINCIPAL")]
    principal: Vec<String>,
}

/// A resource pattern (with --add) or a resource pattern filter (with --remove and --list).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Resource {
    resource_type: i8,
    name: String,
    pattern_type: i8,
}

impl Resource {
    fn new(resource_type: i8, name: &str, pattern_type: i8) -> Resource {
        Resource {
            resource_type,
            name: name.to_string(),
            pattern_type,
        }
    }

    /// As Kafka's `ResourcePattern.toString`.
    fn pattern(&self) -> String {
        format!(
            "ResourcePattern(resourceType={}, name={}, patternType={})",
            resource_type_name(self.resource_type),
            self.name,
            pattern_type_name(self.pattern_type)
        )
    }

    /// As Kafka's `ResourcePatternFilter.toString`.
    fn filter(&self) -> String {
        format!(
            "ResourcePatternFilter(resourceType={}, name={}, patternType={})",
            resource_type_name(self.resource_type),
            self.name,
            pattern_type_name(self.pattern_type)
        )
    }
}

/// An access control entry: who, from where, what, allowed or denied.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    principal: String,
    host: String,
    operation: i8,
    permission: i8,
}

impl fmt::Display for Entry {
    /// As Kafka's `AccessControlEntry.toString`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "(principal={}, host={}, operation={}, permissionType={})",
            self.principal,
            self.host,
            operation_name(self.operation),
            permission_name(self.permission)
        )
    }
}

/// What a command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// Bindings to create, by resource pattern.
    Add(Vec<(Resource, Vec<Entry>)>),
    /// Per resource filter, the entries to delete (none: every ACL of the filter).
    Remove(Vec<(Resource, Vec<Entry>)>),
    /// The filters to describe (none: every ACL), and the principals to show (none: all).
    List {
        filters: Vec<Resource>,
        principals: Vec<String>,
    },
}

/// Why a command line cannot run.
#[derive(Debug, PartialEq, Eq)]
enum PlanError {
    /// Kafka's `printUsageAndExit`: a message on stderr.
    Usage(String),
    /// What Kafka's tool fails with once running (a malformed principal).
    Command(String),
}

/// Runs `shardlog acls`; `args[0]` is the program name.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let args: Args = match parse(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let plan = match plan(&args) {
        Ok(p) => p,
        Err(PlanError::Usage(m)) => {
            eprintln!("{m}");
            return ExitCode::from(1);
        }
        Err(PlanError::Command(m)) => {
            println!("Error while executing ACL command: {m}");
            return ExitCode::from(1);
        }
    };
    let result = args.common.connect().and_then(|mut client| match &plan {
        Plan::Add(bindings) => add(&mut client, bindings),
        Plan::Remove(filters) => remove(&mut client, filters, args.force),
        Plan::List {
            filters,
            principals,
        } => list(&mut client, filters, principals),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("Error while executing ACL command: {}", java_message(&e));
            ExitCode::from(1)
        }
    }
}

/// Kafka's `AclCommandOptions.checkArgs` and the expansion of the flags into bindings or
/// filters (`getResourceToAcls`, `getResourceFilterToAcls`, `getResourceFilter`).
fn plan(args: &Args) -> Result<Plan, PlanError> {
    check_args(args)?;
    let pattern_type = match &args.resource_pattern_type {
        Some(p) => parse_pattern_type(p).map_err(PlanError::Usage)?,
        None => PATTERN_LITERAL,
    };
    if args.list {
        let principals = args
            .principal
            .iter()
            .map(|p| parse_principal(p))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Plan::List {
            filters: resources(args, pattern_type, false)?,
            principals: dedup(principals),
        });
    }
    if args.add && pattern_type != PATTERN_LITERAL && pattern_type != PATTERN_PREFIXED {
        return Err(PlanError::Usage(format!(
            "A '--resource-pattern-type' value of '{}' is not valid when adding acls.",
            pattern_type_name(pattern_type)
        )));
    }
    let bindings = bindings(args, pattern_type)?;
    if args.add {
        if bindings.iter().any(|(_, acls)| acls.is_empty()) {
            return Err(PlanError::Usage(
                "You must specify one of: --allow-principal, --deny-principal when trying to add ACLs."
                    .into(),
            ));
        }
        Ok(Plan::Add(bindings))
    } else {
        Ok(Plan::Remove(bindings))
    }
}

/// Kafka's `checkArgs` (the parts that apply with `--bootstrap-server`).
fn check_args(a: &Args) -> Result<(), PlanError> {
    let usage = |m: &str| Err(PlanError::Usage(m.to_string()));
    if [a.add, a.remove, a.list].iter().filter(|x| **x).count() != 1 {
        return usage("Command must include exactly one action: --list, --add, --remove. ");
    }
    let invalid = |used: (&str, bool), others: &[(&str, bool)]| -> Result<(), PlanError> {
        if used.1 {
            if let Some((name, _)) = others.iter().find(|(_, set)| *set) {
                return Err(PlanError::Usage(format!(
                    "Option \"[{}]\" can't be used with option \"[{name}]\"",
                    used.0
                )));
            }
        }
        Ok(())
    };
    invalid(
        ("list", a.list),
        &[
            ("producer", a.producer),
            ("consumer", a.consumer),
            ("allow-host", !a.allow_host.is_empty()),
            ("allow-principal", !a.allow_principal.is_empty()),
            ("deny-host", !a.deny_host.is_empty()),
            ("deny-principal", !a.deny_principal.is_empty()),
        ],
    )?;
    let role_conflicts = [
        ("operation", !a.operation.is_empty()),
        ("deny-principal", !a.deny_principal.is_empty()),
        ("deny-host", !a.deny_host.is_empty()),
    ];
    invalid(("producer", a.producer), &role_conflicts)?;
    invalid(("consumer", a.consumer), &role_conflicts)?;
    if !a.principal.is_empty() && !a.list {
        return usage("The --principal option is only available if --list is set");
    }
    if a.producer && a.topic.is_empty() {
        return usage("With --producer you must specify a --topic");
    }
    if a.idempotent && !a.producer {
        return usage("The --idempotent option is only available if --producer is set");
    }
    if a.consumer
        && (a.topic.is_empty()
            || a.group.is_empty()
            || (!a.producer && (a.cluster || !a.transactional_id.is_empty())))
    {
        return usage("With --consumer you must specify a --topic and a --group and no --cluster or --transactional-id option should be specified.");
    }
    Ok(())
}

/// The resources (patterns or filters) the flags name, in Kafka's order: topics, the cluster,
/// groups, transactional ids, delegation tokens, users. As Kafka, `--cluster` only counts with
/// the literal pattern type. None is a usage error when `die_if_empty` (not with --list, where
/// none means every ACL).
fn resources(
    args: &Args,
    pattern_type: i8,
    die_if_empty: bool,
) -> Result<Vec<Resource>, PlanError> {
    let mut out = Vec::new();
    for t in &args.topic {
        out.push(Resource::new(RESOURCE_TOPIC, t.trim(), pattern_type));
    }
    if pattern_type == PATTERN_LITERAL && (args.cluster || args.idempotent) {
        out.push(Resource::new(
            RESOURCE_CLUSTER,
            CLUSTER_NAME,
            PATTERN_LITERAL,
        ));
    }
    for g in &args.group {
        out.push(Resource::new(RESOURCE_GROUP, g.trim(), pattern_type));
    }
    // Kafka does not trim transactional ids.
    for t in &args.transactional_id {
        out.push(Resource::new(RESOURCE_TRANSACTIONAL_ID, t, pattern_type));
    }
    for t in &args.delegation_token {
        out.push(Resource::new(
            RESOURCE_DELEGATION_TOKEN,
            t.trim(),
            pattern_type,
        ));
    }
    for u in &args.user_principal {
        out.push(Resource::new(RESOURCE_USER, u.trim(), pattern_type));
    }
    let out = dedup(out);
    if out.is_empty() && die_if_empty {
        return Err(PlanError::Usage("You must provide at least one resource: --topic <topic> or --cluster or --group <group> or --delegation-token <Delegation Token ID>".into()));
    }
    Ok(out)
}

/// Kafka's `getResourceFilterToAcls`: the entries for each resource, from --operation or from
/// the --producer / --consumer roles, checked against what each resource type supports.
fn bindings(args: &Args, pattern_type: i8) -> Result<Vec<(Resource, Vec<Entry>)>, PlanError> {
    let mut out: Vec<(Resource, Vec<Entry>)> = Vec::new();
    let mut put = |r: Resource, acls: Vec<Entry>| match out.iter_mut().find(|(k, _)| *k == r) {
        Some((_, existing)) => {
            for a in acls {
                if !existing.contains(&a) {
                    existing.push(a);
                }
            }
        }
        None => out.push((r, acls)),
    };
    let filters = resources(args, pattern_type, true)?;
    let of_type = |t: i8| {
        filters
            .iter()
            .filter(move |r| r.resource_type == t)
            .cloned()
    };
    if !args.producer && !args.consumer {
        let mut ops = Vec::new();
        for o in &args.operation {
            ops.push(parse_operation(o));
        }
        if ops.is_empty() {
            ops.push(OP_ALL);
        }
        let acls = entries(args, &dedup(ops))?;
        for r in &filters {
            put(r.clone(), acls.clone());
        }
    }
    if args.producer {
        let topic_acls = entries(args, &[OP_WRITE, OP_DESCRIBE, OP_CREATE])?;
        let txn_acls = entries(args, &[OP_WRITE, OP_DESCRIBE])?;
        for r in of_type(RESOURCE_TOPIC) {
            put(r, topic_acls.clone());
        }
        for r in of_type(RESOURCE_TRANSACTIONAL_ID) {
            put(r, txn_acls.clone());
        }
        if args.idempotent {
            put(
                Resource::new(RESOURCE_CLUSTER, CLUSTER_NAME, PATTERN_LITERAL),
                entries(args, &[OP_IDEMPOTENT_WRITE])?,
            );
        }
    }
    if args.consumer {
        let topic_acls = entries(args, &[OP_READ, OP_DESCRIBE])?;
        let group_acls = entries(args, &[OP_READ])?;
        for r in of_type(RESOURCE_TOPIC) {
            put(r, topic_acls.clone());
        }
        for r in of_type(RESOURCE_GROUP) {
            put(r, group_acls.clone());
        }
    }
    for (r, acls) in &out {
        let valid = supported_operations(r.resource_type);
        if acls
            .iter()
            .any(|a| a.operation != OP_ALL && !valid.contains(&a.operation))
        {
            let mut names: Vec<&str> = valid.iter().map(|o| operation_pascal(*o)).collect();
            names.push("All");
            return Err(PlanError::Usage(format!(
                "ResourceType {} only supports operations {}",
                resource_type_name(r.resource_type),
                names.join(", ")
            )));
        }
    }
    Ok(out)
}

/// Kafka's `getAcl`: every allowed principal × operation × allowed host, then the same for the
/// denied ones; hosts default to `*` when principals are given.
fn entries(args: &Args, operations: &[i8]) -> Result<Vec<Entry>, PlanError> {
    let mut out = Vec::new();
    for (principals, hosts, permission) in [
        (&args.allow_principal, &args.allow_host, PERMISSION_ALLOW),
        (&args.deny_principal, &args.deny_host, PERMISSION_DENY),
    ] {
        let principals = dedup(
            principals
                .iter()
                .map(|p| parse_principal(p))
                .collect::<Result<Vec<_>, _>>()?,
        );
        let hosts = if hosts.is_empty() {
            vec!["*".to_string()]
        } else {
            dedup(hosts.iter().map(|h| h.trim().to_string()).collect())
        };
        for p in &principals {
            for &operation in operations {
                for h in &hosts {
                    out.push(Entry {
                        principal: p.clone(),
                        host: h.clone(),
                        operation,
                        permission,
                    });
                }
            }
        }
    }
    Ok(dedup(out))
}

/// Kafka's `SecurityUtils.parseKafkaPrincipal`: `Type:name`, printed back the same way.
fn parse_principal(s: &str) -> Result<String, PlanError> {
    let s = s.trim();
    match s.split_once(':') {
        Some(_) => Ok(s.to_string()),
        None => Err(PlanError::Command(format!(
            "expected a string in format principalType:principalName but got {s}"
        ))),
    }
}

/// Kafka's `SecurityUtils.operation`: the Pascal-case name in any case (`Describe`,
/// `DESCRIBE`, `describeconfigs`); anything else is UNKNOWN (refused later as unsupported).
fn parse_operation(s: &str) -> i8 {
    let s = s.trim();
    OPERATIONS
        .iter()
        .find(|(_, _, pascal)| *pascal == s || pascal.to_ascii_uppercase() == s.to_uppercase())
        .map_or(OP_UNKNOWN, |(code, _, _)| *code)
}

/// `--resource-pattern-type`: the enum's name in any case, UNKNOWN refused.
fn parse_pattern_type(s: &str) -> Result<i8, String> {
    match s.to_ascii_uppercase().as_str() {
        "ANY" => Ok(PATTERN_ANY),
        "MATCH" => Ok(PATTERN_MATCH),
        "LITERAL" => Ok(PATTERN_LITERAL),
        "PREFIXED" => Ok(PATTERN_PREFIXED),
        _ => Err(format!("Unknown resource-pattern-type: {s}")),
    }
}

/// The operations a resource type supports (Kafka's `AclEntry.supportedOperations`), besides All.
fn supported_operations(resource_type: i8) -> &'static [i8] {
    match resource_type {
        RESOURCE_TOPIC => &[3, 4, 5, 8, 6, 7, 10, 11],
        RESOURCE_GROUP => &[3, 8, 6],
        RESOURCE_CLUSTER => &[5, 9, 10, 11, 12, 7, 8],
        RESOURCE_TRANSACTIONAL_ID => &[8, 4],
        RESOURCE_DELEGATION_TOKEN => &[8],
        RESOURCE_USER => &[13, 14],
        _ => &[],
    }
}

fn resource_type_name(code: i8) -> &'static str {
    match code {
        RESOURCE_ANY => "ANY",
        RESOURCE_TOPIC => "TOPIC",
        RESOURCE_GROUP => "GROUP",
        RESOURCE_CLUSTER => "CLUSTER",
        RESOURCE_TRANSACTIONAL_ID => "TRANSACTIONAL_ID",
        RESOURCE_DELEGATION_TOKEN => "DELEGATION_TOKEN",
        RESOURCE_USER => "USER",
        _ => "UNKNOWN",
    }
}

fn pattern_type_name(code: i8) -> &'static str {
    match code {
        PATTERN_ANY => "ANY",
        PATTERN_MATCH => "MATCH",
        PATTERN_LITERAL => "LITERAL",
        PATTERN_PREFIXED => "PREFIXED",
        _ => "UNKNOWN",
    }
}

fn permission_name(code: i8) -> &'static str {
    match code {
        PERMISSION_ANY => "ANY",
        PERMISSION_DENY => "DENY",
        PERMISSION_ALLOW => "ALLOW",
        _ => "UNKNOWN",
    }
}

fn operation_name(code: i8) -> &'static str {
    OPERATIONS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or("UNKNOWN", |(_, name, _)| name)
}

fn operation_pascal(code: i8) -> &'static str {
    OPERATIONS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or("Unknown", |(_, _, pascal)| pascal)
}

/// Drops repeats, keeping the first of each.
fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// Kafka's layout of a resource's entries: ` \t(e1)\n\t(e2) \n` after the heading's colon.
fn entry_block(entries: &[Entry]) -> String {
    let lines: Vec<String> = entries.iter().map(|e| format!("\t{e}")).collect();
    format!(" \n {} \n", lines.join("\n"))
}

/// What `--add` prints for one resource (before sending it), a blank line included.
fn adding_text(resource: &Resource, entries: &[Entry]) -> String {
    format!(
        "Adding ACLs for resource `{}`:{}\n",
        resource.pattern(),
        entry_block(entries)
    )
}

/// What `--list` prints for one resource, a blank line included.
fn current_text(resource: &Resource, entries: &[Entry]) -> String {
    format!(
        "Current ACLs for resource `{}`:{}\n",
        resource.pattern(),
        entry_block(entries)
    )
}

/// The question `--remove` asks without `--force` (one line ends it).
fn confirm_text(filter: &Resource, entries: &[Entry]) -> String {
    if entries.is_empty() {
        format!(
            "Are you sure you want to delete all ACLs for resource filter `{}`? (y/n)\n",
            filter.filter()
        )
    } else {
        format!(
            "Are you sure you want to remove ACLs:{} from resource filter `{}`? (y/n)\n",
            entry_block(entries),
            filter.filter()
        )
    }
}

/// The CreateAcls request for one resource's entries.
fn create_request(resource: &Resource, entries: &[Entry]) -> CreateAclsRequest {
    CreateAclsRequest::default().with_creations(
        entries
            .iter()
            .map(|e| {
                AclCreation::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(StrBytes::from_string(resource.name.clone()))
                    .with_resource_pattern_type(resource.pattern_type)
                    .with_principal(StrBytes::from_string(e.principal.clone()))
                    .with_host(StrBytes::from_string(e.host.clone()))
                    .with_operation(e.operation)
                    .with_permission_type(e.permission)
            })
            .collect(),
    )
}

/// The DeleteAcls request for one filter: one binding filter per entry, or one matching any
/// entry when there are none.
fn delete_request(filter: &Resource, entries: &[Entry]) -> DeleteAclsRequest {
    let base = DeleteAclsFilter::default()
        .with_resource_type_filter(filter.resource_type)
        .with_resource_name_filter(Some(StrBytes::from_string(filter.name.clone())))
        .with_pattern_type_filter(filter.pattern_type);
    let filters = if entries.is_empty() {
        vec![base
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(OP_ANY)
            .with_permission_type(PERMISSION_ANY)]
    } else {
        entries
            .iter()
            .map(|e| {
                base.clone()
                    .with_principal_filter(Some(StrBytes::from_string(e.principal.clone())))
                    .with_host_filter(Some(StrBytes::from_string(e.host.clone())))
                    .with_operation(e.operation)
                    .with_permission_type(e.permission)
            })
            .collect()
    };
    DeleteAclsRequest::default().with_filters(filters)
}

/// The DescribeAcls request for a filter (`None`: every ACL), any entry.
fn describe_request(filter: Option<&Resource>) -> DescribeAclsRequest {
    let req = DescribeAclsRequest::default()
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(OP_ANY)
        .with_permission_type(PERMISSION_ANY);
    match filter {
        Some(f) => req
            .with_resource_type_filter(f.resource_type)
            .with_resource_name_filter(Some(StrBytes::from_string(f.name.clone())))
            .with_pattern_type_filter(f.pattern_type),
        None => req
            .with_resource_type_filter(RESOURCE_ANY)
            .with_resource_name_filter(None)
            .with_pattern_type_filter(PATTERN_ANY),
    }
}

fn add(client: &mut Client, bindings: &[(Resource, Vec<Entry>)]) -> Result<(), AdminError> {
    for (resource, entries) in bindings {
        print!("{}", adding_text(resource, entries));
        let (_, resp) = client.call(Target::Any, ACL_VERSIONS, |_| {
            create_request(resource, entries)
        })?;
        for r in &resp.results {
            AdminError::check(r.error_code, r.error_message.as_ref())?;
        }
    }
    Ok(())
}

fn remove(
    client: &mut Client,
    filters: &[(Resource, Vec<Entry>)],
    force: bool,
) -> Result<(), AdminError> {
    for (filter, entries) in filters {
        if !force && !confirm(&confirm_text(filter, entries))? {
            continue;
        }
        let (_, resp) = client.call(Target::Any, ACL_VERSIONS, |_| {
            delete_request(filter, entries)
        })?;
        for r in &resp.filter_results {
            AdminError::check(r.error_code, r.error_message.as_ref())?;
            for m in &r.matching_acls {
                AdminError::check(m.error_code, m.error_message.as_ref())?;
            }
        }
    }
    Ok(())
}

/// Prints the question and reads one line: `y` (any case) is yes. The end of input is an
/// error (Kafka's tool fails there too).
fn confirm(question: &str) -> Result<bool, AdminError> {
    print!("{question}");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| AdminError::Invalid(format!("reading the answer from stdin: {e}")))?;
    if n == 0 {
        return Err(AdminError::Invalid(
            "no answer on stdin (use --force to remove without asking)".into(),
        ));
    }
    Ok(line
        .trim_end_matches(['\r', '\n'])
        .eq_ignore_ascii_case("y"))
}

fn list(
    client: &mut Client,
    filters: &[Resource],
    principals: &[String],
) -> Result<(), AdminError> {
    let mut acls: BTreeMap<Resource, BTreeSet<Entry>> = BTreeMap::new();
    let requests: Vec<Option<&Resource>> = if filters.is_empty() {
        vec![None]
    } else {
        filters.iter().map(Some).collect()
    };
    for filter in requests {
        let (_, resp) = client.call(Target::Any, ACL_VERSIONS, |_| describe_request(filter))?;
        AdminError::check(resp.error_code, resp.error_message.as_ref())?;
        for r in resp.resources {
            let resource = Resource {
                resource_type: r.resource_type,
                name: r.resource_name.to_string(),
                pattern_type: r.pattern_type,
            };
            let set = acls.entry(resource).or_default();
            for a in r.acls {
                set.insert(Entry {
                    principal: a.principal.to_string(),
                    host: a.host.to_string(),
                    operation: a.operation,
                    permission: a.permission_type,
                });
            }
        }
    }
    print!("{}", list_text(&acls, principals));
    Ok(())
}

/// What `--list` prints: every resource's entries, or with `--principal` a section per
/// principal holding only its entries.
fn list_text(acls: &BTreeMap<Resource, BTreeSet<Entry>>, principals: &[String]) -> String {
    let mut out = String::new();
    if principals.is_empty() {
        for (r, entries) in acls {
            out.push_str(&current_text(
                r,
                &entries.iter().cloned().collect::<Vec<_>>(),
            ));
        }
        return out;
    }
    for p in principals {
        out.push_str(&format!("ACLs for principal `{p}`\n"));
        for (r, entries) in acls {
            let mine: Vec<Entry> = entries
                .iter()
                .filter(|e| e.principal == *p)
                .cloned()
                .collect();
            if !mine.is_empty() {
                out.push_str(&current_text(r, &mine));
            }
        }
    }
    out
}

/// An error as Kafka's admin client reports it (`ExecutionException.getMessage`: the cause's
/// class and message), e.g. `org.apache.kafka.common.errors.SecurityDisabledException: ...`.
fn java_message(e: &AdminError) -> String {
    const PKG: &str = "org.apache.kafka.common.errors";
    match e {
        AdminError::Kafka { error, message } => {
            let text = message.clone().unwrap_or_else(|| error.to_string());
            format!("{PKG}.{}: {text}", exception_name(*error))
        }
        AdminError::Unsupported { .. } => format!("{PKG}.UnsupportedVersionException: {e}"),
        _ => e.to_string(),
    }
}

/// The Java exception class of an error code: mostly the error's name in Pascal case with
/// `Exception`; the authorization failures and the unknown server error are named otherwise.
fn exception_name(error: ResponseError) -> String {
    let name = format!("{error:?}");
    if name == "UnknownServerError" {
        return "UnknownServerException".into();
    }
    let base = name.strip_suffix("Failed").unwrap_or(&name);
    format!("{base}Exception")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(args: &[&str]) -> Result<Plan, PlanError> {
        let mut v = vec!["shardlog acls", "--bootstrap-server", "127.0.0.1:1"];
        v.extend_from_slice(args);
        plan(&Args::try_parse_from(v).expect("the flags parse"))
    }

    fn entry(principal: &str, host: &str, operation: i8, permission: i8) -> Entry {
        Entry {
            principal: principal.into(),
            host: host.into(),
            operation,
            permission,
        }
    }

    fn topic(name: &str) -> Resource {
        Resource::new(RESOURCE_TOPIC, name, PATTERN_LITERAL)
    }

    fn usage(r: Result<Plan, PlanError>) -> String {
        match r {
            Err(PlanError::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    /// librdkafka's three command lines (tests 0109, 0115, 0119): one binding each, the host
    /// defaulting to `*`.
    #[test]
    fn librdkafka_command_lines() {
        let p = plan_of(&[
            "--add",
            "--deny-principal",
            "User:*",
            "--operation",
            "All",
            "--deny-host",
            "*",
            "--topic",
            "T",
        ])
        .unwrap();
        assert_eq!(
            p,
            Plan::Add(vec![(
                topic("T"),
                vec![entry("User:*", "*", OP_ALL, PERMISSION_DENY)]
            )])
        );
        let p = plan_of(&[
            "--add",
            "--allow-principal",
            "User:*",
            "--operation",
            "Describe",
            "--allow-host",
            "*",
            "--topic",
            "T",
        ])
        .unwrap();
        assert_eq!(
            p,
            Plan::Add(vec![(
                topic("T"),
                vec![entry("User:*", "*", OP_DESCRIBE, PERMISSION_ALLOW)]
            )])
        );
        let p = plan_of(&[
            "--add",
            "--deny-principal",
            "User:*",
            "--operation",
            "Read",
            "--topic",
            "T",
        ])
        .unwrap();
        assert_eq!(
            p,
            Plan::Add(vec![(
                topic("T"),
                vec![entry("User:*", "*", OP_READ, PERMISSION_DENY)]
            )])
        );
    }

    /// --producer: Write, Describe, Create on topics; Write, Describe on transactional ids;
    /// IdempotentWrite on the cluster with --idempotent. --consumer: Read, Describe on topics,
    /// Read on groups; both together merge on the topic.
    #[test]
    fn producer_and_consumer_expand_as_kafka() {
        let allow = |op| entry("User:a", "*", op, PERMISSION_ALLOW);
        let p = plan_of(&[
            "--add",
            "--producer",
            "--topic",
            "T",
            "--allow-principal",
            "User:a",
        ])
        .unwrap();
        assert_eq!(
            p,
            Plan::Add(vec![(
                topic("T"),
                vec![allow(OP_WRITE), allow(OP_DESCRIBE), allow(OP_CREATE)]
            )])
        );
        let p = plan_of(&[
            "--add",
            "--producer",
            "--idempotent",
            "--topic",
            "T",
            "--transactional-id",
            "tx",
            "--allow-principal",
            "User:a",
        ])
        .unwrap();
        assert_eq!(
            p,
            Plan::Add(vec![
                (
                    topic("T"),
                    vec![allow(OP_WRITE), allow(OP_DESCRIBE), allow(OP_CREATE)]
                ),
                (
                    Resource::new(RESOURCE_TRANSACTIONAL_ID, "tx", PATTERN_LITERAL),
                    vec![allow(OP_WRITE), allow(OP_DESCRIBE)]
                ),
                (
                    Resource::new(RESOURCE_CLUSTER, "kafka-cluster", PATTERN_LITERAL),
                    vec![allow(OP_IDEMPOTENT_WRITE)]
                ),
            ])
        );
        let p = plan_of(&[
            "--add",
            "--consumer",
            "--producer",
            "--topic",
            "T",
            "--group",
            "G",
            "--allow-principal",
            "User:a",
        ])
        .unwrap();
        assert_eq!(
            p,
            Plan::Add(vec![
                (
                    topic("T"),
                    vec![
                        allow(OP_WRITE),
                        allow(OP_DESCRIBE),
                        allow(OP_CREATE),
                        allow(OP_READ)
                    ]
                ),
                (
                    Resource::new(RESOURCE_GROUP, "G", PATTERN_LITERAL),
                    vec![allow(OP_READ)]
                ),
            ])
        );
    }

    /// Principals × operations × hosts, allowed before denied; operations in any case; the
    /// pattern type; repeated resources.
    #[test]
    fn cross_product_and_names() {
        let p = plan_of(&[
            "--add",
            "--allow-principal",
            "User:a",
            "--allow-principal",
            "User:b",
            "--allow-host",
            "h1",
            "--deny-principal",
            "User:c",
            "--operation",
            "describeconfigs",
            "--operation",
            "WRITE",
            "--topic",
            "T1",
            "--topic",
            "T2",
            "--resource-pattern-type",
            "Prefixed",
        ])
        .unwrap();
        let Plan::Add(b) = p else { panic!() };
        assert_eq!(b.len(), 2);
        assert_eq!(
            b[0].0,
            Resource::new(RESOURCE_TOPIC, "T1", PATTERN_PREFIXED)
        );
        assert_eq!(b[1].0.name, "T2");
        assert_eq!(
            b[0].1,
            vec![
                entry("User:a", "h1", 10, PERMISSION_ALLOW),
                entry("User:a", "h1", OP_WRITE, PERMISSION_ALLOW),
                entry("User:b", "h1", 10, PERMISSION_ALLOW),
                entry("User:b", "h1", OP_WRITE, PERMISSION_ALLOW),
                entry("User:c", "*", 10, PERMISSION_DENY),
                entry("User:c", "*", OP_WRITE, PERMISSION_DENY),
            ]
        );
        for (s, code) in [
            ("All", 2),
            ("ClusterAction", 9),
            ("CLUSTERACTION", 9),
            ("idempotentwrite", 12),
            ("CreateTokens", 13),
            ("DescribeTokens", 14),
            ("describe_configs", OP_UNKNOWN),
        ] {
            assert_eq!(parse_operation(s), code, "{s}");
        }
    }

    /// Kafka's usage errors.
    #[test]
    fn usage_errors() {
        assert_eq!(
            usage(plan_of(&["--topic", "T"])),
            "Command must include exactly one action: --list, --add, --remove. "
        );
        assert_eq!(
            usage(plan_of(&["--add", "--list", "--topic", "T"])),
            "Command must include exactly one action: --list, --add, --remove. "
        );
        assert_eq!(
            usage(plan_of(&["--add", "--topic", "T"])),
            "You must specify one of: --allow-principal, --deny-principal when trying to add ACLs."
        );
        assert!(usage(plan_of(&["--add", "--allow-principal", "User:a"]))
            .starts_with("You must provide at least one resource"));
        assert_eq!(
            usage(plan_of(&[
                "--add",
                "--allow-principal",
                "User:a",
                "--topic",
                "T",
                "--resource-pattern-type",
                "match"
            ])),
            "A '--resource-pattern-type' value of 'MATCH' is not valid when adding acls."
        );
        assert_eq!(
            usage(plan_of(&["--list", "--resource-pattern-type", "unknown"])),
            "Unknown resource-pattern-type: unknown"
        );
        assert_eq!(
            usage(plan_of(&[
                "--add",
                "--producer",
                "--operation",
                "Read",
                "--topic",
                "T",
                "--allow-principal",
                "User:a"
            ])),
            "Option \"[producer]\" can't be used with option \"[operation]\""
        );
        assert_eq!(
            usage(plan_of(&["--list", "--allow-principal", "User:a"])),
            "Option \"[list]\" can't be used with option \"[allow-principal]\""
        );
        assert_eq!(
            usage(plan_of(&[
                "--add",
                "--producer",
                "--allow-principal",
                "User:a"
            ])),
            "With --producer you must specify a --topic"
        );
        assert!(usage(plan_of(&[
            "--add",
            "--consumer",
            "--topic",
            "T",
            "--allow-principal",
            "User:a"
        ]))
        .starts_with("With --consumer you must specify a --topic and a --group"));
        assert_eq!(
            usage(plan_of(&["--add", "--topic", "T", "--principal", "User:a"])),
            "The --principal option is only available if --list is set"
        );
        assert_eq!(
            usage(plan_of(&[
                "--add",
                "--group",
                "G",
                "--operation",
                "Write",
                "--allow-principal",
                "User:a"
            ])),
            "ResourceType GROUP only supports operations Read, Describe, Delete, All"
        );
        assert_eq!(
            plan_of(&["--add", "--topic", "T", "--allow-principal", "nocolon"]),
            Err(PlanError::Command(
                "expected a string in format principalType:principalName but got nocolon".into()
            ))
        );
    }

    /// --remove: filters with exact entries, or with none (every ACL of the filter); --list:
    /// filters with any/match pattern types, or none at all.
    #[test]
    fn remove_and_list_filters() {
        let p = plan_of(&["--remove", "--force", "--topic", "T"]).unwrap();
        assert_eq!(p, Plan::Remove(vec![(topic("T"), vec![])]));
        let p = plan_of(&[
            "--remove",
            "--topic",
            "T",
            "--cluster",
            "--allow-principal",
            "User:a",
            "--operation",
            "Describe",
        ])
        .unwrap();
        let acl = vec![entry("User:a", "*", OP_DESCRIBE, PERMISSION_ALLOW)];
        assert_eq!(
            p,
            Plan::Remove(vec![
                (topic("T"), acl.clone()),
                (
                    Resource::new(RESOURCE_CLUSTER, "kafka-cluster", PATTERN_LITERAL),
                    acl
                ),
            ])
        );
        assert_eq!(
            plan_of(&["--list"]).unwrap(),
            Plan::List {
                filters: vec![],
                principals: vec![]
            }
        );
        assert_eq!(
            plan_of(&[
                "--list",
                "--topic",
                "T",
                "--cluster",
                "--resource-pattern-type",
                "match",
                "--principal",
                "User:a"
            ])
            .unwrap(),
            // As Kafka: --cluster only counts with the literal pattern type.
            Plan::List {
                filters: vec![Resource::new(RESOURCE_TOPIC, "T", PATTERN_MATCH)],
                principals: vec!["User:a".into()]
            }
        );
    }

    /// The wire requests carry the plan's codes and names.
    #[test]
    fn requests() {
        let deny_all = entry("User:*", "*", OP_ALL, PERMISSION_DENY);
        let req = create_request(&topic("T"), std::slice::from_ref(&deny_all));
        assert_eq!(req.creations.len(), 1);
        let c = &req.creations[0];
        assert_eq!(
            (
                c.resource_type,
                c.resource_name.as_str(),
                c.resource_pattern_type,
                c.principal.as_str(),
                c.host.as_str(),
                c.operation,
                c.permission_type
            ),
            (2, "T", 3, "User:*", "*", 2, 2)
        );
        let req = delete_request(&topic("T"), &[]);
        assert_eq!(req.filters.len(), 1);
        let f = &req.filters[0];
        assert_eq!(
            (
                f.resource_type_filter,
                f.resource_name_filter.as_ref().map(|s| s.as_str()),
                f.pattern_type_filter,
                f.principal_filter.is_none(),
                f.host_filter.is_none(),
                f.operation,
                f.permission_type
            ),
            (2, Some("T"), 3, true, true, 1, 1)
        );
        let req = delete_request(&topic("T"), std::slice::from_ref(&deny_all));
        let f = &req.filters[0];
        assert_eq!(
            (
                f.principal_filter.as_ref().map(|s| s.as_str()),
                f.host_filter.as_ref().map(|s| s.as_str()),
                f.operation,
                f.permission_type
            ),
            (Some("User:*"), Some("*"), 2, 2)
        );
        let req = describe_request(None);
        assert_eq!(
            (
                req.resource_type_filter,
                req.resource_name_filter.is_none(),
                req.pattern_type_filter,
                req.operation,
                req.permission_type
            ),
            (1, true, 1, 1, 1)
        );
        let req = describe_request(Some(&Resource::new(RESOURCE_GROUP, "G", PATTERN_MATCH)));
        assert_eq!(
            (
                req.resource_type_filter,
                req.resource_name_filter.as_ref().map(|s| s.as_str()),
                req.pattern_type_filter
            ),
            (3, Some("G"), 2)
        );
    }

    /// A broker on a loopback port that serves ApiVersions with `apis` (key, min, max) and
    /// answers every CreateAcls with `create_error`; it serves one connection.
    fn fake_broker(apis: Vec<(i16, i16, i16)>, create_error: i16) -> String {
        use bytes::{Bytes, BytesMut};
        use kafka_protocol::messages::api_versions_response::ApiVersion;
        use kafka_protocol::messages::create_acls_response::AclCreationResult;
        use kafka_protocol::messages::{
            ApiKey, ApiVersionsResponse, CreateAclsResponse, RequestHeader, ResponseHeader,
        };
        use kafka_protocol::protocol::{Decodable, Encodable};
        use std::io::{Read, Write};

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            loop {
                let mut size = [0u8; 4];
                if s.read_exact(&mut size).is_err() {
                    return;
                }
                let mut frame = vec![0u8; u32::from_be_bytes(size) as usize];
                s.read_exact(&mut frame).unwrap();
                let key = ApiKey::try_from(i16::from_be_bytes([frame[0], frame[1]])).unwrap();
                let version = i16::from_be_bytes([frame[2], frame[3]]);
                let mut buf = Bytes::from(frame);
                let header =
                    RequestHeader::decode(&mut buf, key.request_header_version(version)).unwrap();
                let mut out = BytesMut::new();
                ResponseHeader::default()
                    .with_correlation_id(header.correlation_id)
                    .encode(&mut out, key.response_header_version(version))
                    .unwrap();
                match key {
                    ApiKey::ApiVersions => ApiVersionsResponse::default()
                        .with_api_keys(
                            apis.iter()
                                .map(|(k, min, max)| {
                                    ApiVersion::default()
                                        .with_api_key(*k)
                                        .with_min_version(*min)
                                        .with_max_version(*max)
                                })
                                .collect(),
                        )
                        .encode(&mut out, version)
                        .unwrap(),
                    ApiKey::CreateAcls => CreateAclsResponse::default()
                        .with_results(vec![AclCreationResult::default()
                            .with_error_code(create_error)
                            .with_error_message(Some("No Authorizer is configured.".into()))])
                        .encode(&mut out, version)
                        .unwrap(),
                    other => panic!("unexpected request {other:?}"),
                }
                s.write_all(&(out.len() as u32).to_be_bytes()).unwrap();
                s.write_all(&out).unwrap();
            }
        });
        addr
    }

    /// A broker without the ACL APIs, and one answering SECURITY_DISABLED, are errors with
    /// Kafka's exception names (the command prints them and exits 1).
    #[test]
    fn broker_errors() {
        let binding = vec![(
            topic("T"),
            vec![entry("User:*", "*", OP_ALL, PERMISSION_DENY)],
        )];
        let addr = fake_broker(vec![(18, 0, 3)], 0);
        let mut client = Client::connect(&addr).unwrap();
        let e = add(&mut client, &binding).unwrap_err();
        assert!(
            java_message(&e)
                .starts_with("org.apache.kafka.common.errors.UnsupportedVersionException: "),
            "{e}"
        );
        let addr = fake_broker(vec![(18, 0, 3), (30, 0, 3)], 54);
        let mut client = Client::connect(&addr).unwrap();
        let e = add(&mut client, &binding).unwrap_err();
        assert_eq!(
            java_message(&e),
            "org.apache.kafka.common.errors.SecurityDisabledException: No Authorizer is configured."
        );
        let addr = fake_broker(vec![(18, 0, 3), (30, 0, 2)], 0);
        let mut client = Client::connect(&addr).unwrap();
        add(&mut client, &binding).expect("a broker that creates the ACLs");
    }

    /// Kafka 3.9's exact text.
    #[test]
    fn output_as_kafka_prints_it() {
        let deny_all = entry("User:*", "*", OP_ALL, PERMISSION_DENY);
        assert_eq!(
            adding_text(&topic("T"), std::slice::from_ref(&deny_all)),
            "Adding ACLs for resource `ResourcePattern(resourceType=TOPIC, name=T, patternType=LITERAL)`: \n \t(principal=User:*, host=*, operation=ALL, permissionType=DENY) \n\n"
        );
        let two = vec![
            entry("User:a", "h", 10, PERMISSION_ALLOW),
            entry("User:b", "*", OP_IDEMPOTENT_WRITE, PERMISSION_DENY),
        ];
        assert_eq!(
            current_text(
                &Resource::new(RESOURCE_TRANSACTIONAL_ID, "x", PATTERN_PREFIXED),
                &two
            ),
            "Current ACLs for resource `ResourcePattern(resourceType=TRANSACTIONAL_ID, name=x, patternType=PREFIXED)`: \n \t(principal=User:a, host=h, operation=DESCRIBE_CONFIGS, permissionType=ALLOW)\n\t(principal=User:b, host=*, operation=IDEMPOTENT_WRITE, permissionType=DENY) \n\n"
        );
        assert_eq!(
            confirm_text(&topic("T"), &[]),
            "Are you sure you want to delete all ACLs for resource filter `ResourcePatternFilter(resourceType=TOPIC, name=T, patternType=LITERAL)`? (y/n)\n"
        );
        assert_eq!(
            confirm_text(&topic("T"), std::slice::from_ref(&deny_all)),
            "Are you sure you want to remove ACLs: \n \t(principal=User:*, host=*, operation=ALL, permissionType=DENY) \n from resource filter `ResourcePatternFilter(resourceType=TOPIC, name=T, patternType=LITERAL)`? (y/n)\n"
        );
        let mut acls = BTreeMap::new();
        acls.insert(topic("T"), two.iter().cloned().collect::<BTreeSet<_>>());
        acls.insert(
            Resource::new(RESOURCE_GROUP, "G", PATTERN_LITERAL),
            [entry("User:b", "*", OP_READ, PERMISSION_ALLOW)]
                .into_iter()
                .collect(),
        );
        assert_eq!(
            list_text(&acls, &["User:b".into(), "User:nobody".into()]),
            "ACLs for principal `User:b`\n\
             Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=T, patternType=LITERAL)`: \n \t(principal=User:b, host=*, operation=IDEMPOTENT_WRITE, permissionType=DENY) \n\n\
             Current ACLs for resource `ResourcePattern(resourceType=GROUP, name=G, patternType=LITERAL)`: \n \t(principal=User:b, host=*, operation=READ, permissionType=ALLOW) \n\n\
             ACLs for principal `User:nobody`\n"
        );
        assert_eq!(
            java_message(&AdminError::Kafka {
                error: ResponseError::SecurityDisabled,
                message: Some("No Authorizer is configured.".into())
            }),
            "org.apache.kafka.common.errors.SecurityDisabledException: No Authorizer is configured."
        );
        assert_eq!(
            exception_name(ResponseError::ClusterAuthorizationFailed),
            "ClusterAuthorizationException"
        );
    }
}
