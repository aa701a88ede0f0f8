//! Kafka APIs: one file per API, each stating the versions it supports next to its handler.
//! This module decodes the request header and body, routes to the handler, and encodes the
//! response with the right header. ApiVersions is answered from `SUPPORTED`, built from the
//! handlers' own ranges, so each range is stated once.
//!
//! This is the only layer that knows wire versions and Kafka error codes: handlers call the
//! layers below with their own types and map their errors in one place (`errors`).
//! Per-partition APIs share one plan, scatter and gather helper (`partitioned`).

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_producers;
pub mod describe_transactions;
pub mod end_txn;
pub mod errors;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
pub mod message_sets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod old_versions;
pub mod partitioned;
pub mod produce;
pub mod sync_group;
pub mod txn_offset_commit;

use std::future::Future;
use std::rc::Rc;

use bytes::{BufMut, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::catalog::Replica;
use crate::shard::Shard;
use crate::util::scatter::{Part, Pieces, ScatterBuf};

/// What handlers reach from the shard that took a request: the transport (and through it the
/// shards that own partitions and groups) and this shard's copy of the catalog.
pub struct Broker {
    pub shard: Rc<Shard>,
    pub catalog: Rc<Replica>,
}

/// A supported version range, inclusive.
#[derive(Debug, Clone, Copy)]
pub struct Versions {
    pub min: i16,
    pub max: i16,
}

/// Every API we serve, with the range its handler states.
pub const SUPPORTED: &[(ApiKey, Versions)] = &[
    (ApiKey::Produce, produce::VERSIONS),
    (ApiKey::Fetch, fetch::VERSIONS),
    (ApiKey::ListOffsets, list_offsets::VERSIONS),
    (ApiKey::OffsetCommit, offset_commit::VERSIONS),
    (ApiKey::OffsetFetch, offset_fetch::VERSIONS),
    (ApiKey::FindCoordinator, find_coordinator::VERSIONS),
    (ApiKey::JoinGroup, join_group::VERSIONS),
    (ApiKey::Heartbeat, heartbeat::VERSIONS),
    (ApiKey::LeaveGroup, leave_group::VERSIONS),
    (ApiKey::SyncGroup, sync_group::VERSIONS),
    (ApiKey::DescribeGroups, describe_groups::VERSIONS),
    (ApiKey::ListGroups, list_groups::VERSIONS),
    (ApiKey::Metadata, metadata::VERSIONS),
    (ApiKey::ApiVersions, api_versions::VERSIONS),
    (ApiKey::CreateTopics, create_topics::VERSIONS),
    (ApiKey::DeleteTopics, delete_topics::VERSIONS),
    (ApiKey::CreateAcls, create_acls::VERSIONS),
    (ApiKey::DescribeAcls, describe_acls::VERSIONS),
    (ApiKey::DeleteAcls, delete_acls::VERSIONS),
    (ApiKey::DescribeConfigs, describe_configs::VERSIONS),
    (ApiKey::CreatePartitions, create_partitions::VERSIONS),
    (ApiKey::DeleteGroups, delete_groups::VERSIONS),
    (ApiKey::OffsetDelete, offset_delete::VERSIONS),
    (
        ApiKey::ConsumerGroupHeartbeat,
        consumer_group_heartbeat::VERSIONS,
    ),
    (
        ApiKey::ConsumerGroupDescribe,
        consumer_group_describe::VERSIONS,
    ),
    (ApiKey::DescribeCluster, describe_cluster::VERSIONS),
    (ApiKey::DeleteRecords, delete_records::VERSIONS),
    (ApiKey::AlterConfigs, alter_configs::VERSIONS),
    (
        ApiKey::IncrementalAlterConfigs,
        alter_configs::INCREMENTAL_VERSIONS,
    ),
    (ApiKey::InitProducerId, init_producer_id::VERSIONS),
    (ApiKey::AddPartitionsToTxn, add_partitions_to_txn::VERSIONS),
    (ApiKey::AddOffsetsToTxn, add_offsets_to_txn::VERSIONS),
    (ApiKey::EndTxn, end_txn::VERSIONS),
    (ApiKey::TxnOffsetCommit, txn_offset_commit::VERSIONS),
    (ApiKey::DescribeProducers, describe_producers::VERSIONS),
    (
        ApiKey::DescribeTransactions,
        describe_transactions::VERSIONS,
    ),
    (ApiKey::ListTransactions, list_transactions::VERSIONS),
];

pub fn supported(key: ApiKey) -> Option<Versions> {
    SUPPORTED.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// What the connection writes for one request.
pub enum Reply {
    /// A complete response frame (size prefix included), in parts to be written in order:
    /// owned header and fields, and record bytes where the log holds them (in memory, or a
    /// range of a segment file).
    Frame(Vec<Part>),
    /// Nothing: a produce with acks=0.
    Nothing,
    /// Close the connection (a response could not be built).
    Close,
}

pub type ReplyTask = glommio::task::JoinHandle<Reply>;

/// The request context handlers need besides the body.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub api_key: ApiKey,
    pub version: i16,
    /// The version whose layout the response body is encoded in: `version`, except for an
    /// old version kafka-protocol does not know whose response has a newer one's layout
    /// (`old_versions`: OffsetCommit v0-1 answer in v2's, OffsetFetch v0 in v1's).
    pub layout_version: i16,
    pub correlation_id: i32,
    /// The request header's client id ("" when null).
    pub client_id: kafka_protocol::protocol::StrBytes,
    /// The client's address as Kafka reports it ("/127.0.0.1"); set by `dispatch`.
    pub client_host: Rc<str>,
    /// The request frame's size (its body, which the request's byte fields are slices of).
    pub frame_bytes: usize,
}

impl Ctx {
    /// Encodes `body` as this request's response frame.
    pub fn reply<R: Encodable>(&self, body: &R) -> Reply {
        self.reply_referencing(body, std::iter::empty())
    }

    /// Encodes `body` as this request's response frame, taking the pieces of `refs` (the
    /// slice the body holds for some record bytes, and where those bytes are; in the order the
    /// body holds them) into the frame instead of the slice: record bytes go from where the
    /// log holds them to the socket with no copy in user space.
    pub fn reply_referencing<R: Encodable>(
        &self,
        body: &R,
        refs: impl IntoIterator<Item = (Bytes, Pieces)>,
    ) -> Reply {
        // ApiVersions responses always use header v0, whatever the request version: clients
        // parse it before they know the broker's versions (librdkafka 2.0.2 depends on it).
        let header_version = if self.api_key == ApiKey::ApiVersions {
            0
        } else {
            self.api_key.response_header_version(self.version)
        };
        let header = ResponseHeader::default().with_correlation_id(self.correlation_id);
        let encoded = header
            .compute_size(header_version)
            .and_then(|h| body.compute_size(self.layout_version).map(|b| h + b))
            .and_then(|size| {
                let size =
                    i32::try_from(size).map_err(|_| anyhow::anyhow!("response of {size} bytes"))?;
                let refs: Vec<(Bytes, Pieces)> = refs.into_iter().collect();
                let referenced: usize = refs.iter().map(|(b, _)| b.len()).sum();
                let owned = (4 + size as usize).saturating_sub(referenced);
                let mut buf = ScatterBuf::new(refs, owned);
                buf.put_i32(size);
                header.encode(&mut buf, header_version)?;
                body.encode(&mut buf, self.layout_version)?;
                anyhow::ensure!(buf.is_complete(), "record pieces were not all placed");
                anyhow::ensure!(
                    buf.len() == 4 + size as usize,
                    "encoded {} bytes where compute_size said {}",
                    buf.len() - 4,
                    size
                );
                Ok(buf.finish())
            });
        match encoded {
            Ok(parts) => Reply::Frame(parts),
            Err(e) => {
                tracing::error!(api = ?self.api_key, version = self.version, error = %e, "cannot encode a response; closing the connection");
                Reply::Close
            }
        }
    }
}

fn spawn<F: Future<Output = Reply> + 'static>(f: F) -> ReplyTask {
    glommio::spawn_local(f).detach()
}

/// A request frame, decoded. Returned once per request and consumed at once, so the size
/// difference between the variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Decoded {
    Request(Ctx, RequestKind),
    /// An ApiVersions request of a version we do not know: answered in v0 (KIP-511).
    ApiVersionsUnsupported(Ctx),
    /// ListOffsets v0 (`old_versions`): the request v1 would send, and each partition's
    /// `max_num_offsets` in request order.
    ListOffsetsV0(Ctx, kafka_protocol::messages::ListOffsetsRequest, Vec<i32>),
    /// Produce v0-2 (`old_versions`): the request v3 would send, each partition's message
    /// set up-converted to a v2 batch, and the partitions whose set could not be converted
    /// with the error each answers.
    ProduceLegacy(
        Ctx,
        kafka_protocol::messages::ProduceRequest,
        Vec<produce::Refused>,
    ),
}

/// Decodes one request frame (size prefix removed). Pure: no I/O, no shard state. `Err` means
/// close the connection, with the reason for the log. Never panics, whatever the bytes
/// (see the property test below and `fuzz/`).
pub fn decode_request(mut frame: Bytes) -> Result<Decoded, String> {
    if frame.len() < 8 {
        return Err(format!(
            "request of {} bytes is shorter than a request header",
            frame.len()
        ));
    }
    let api_key_raw = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api_key =
        ApiKey::try_from(api_key_raw).map_err(|_| format!("unknown API key {api_key_raw}"))?;
    let Some(range) = supported(api_key) else {
        return Err(format!("API {api_key:?} is not supported"));
    };
    let mut ctx = Ctx {
        api_key,
        version,
        layout_version: version,
        correlation_id,
        client_id: Default::default(),
        client_host: Rc::from(""),
        frame_bytes: frame.len(),
    };
    if version < range.min || version > range.max {
        if api_key == ApiKey::ApiVersions {
            return Ok(Decoded::ApiVersionsUnsupported(Ctx {
                version: 0,
                layout_version: 0,
                ..ctx
            }));
        }
        return Err(format!(
            "{api_key:?} v{version} is not supported (we serve v{}-v{})",
            range.min, range.max
        ));
    }
    let header_version = api_key.request_header_version(version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| format!("bad {api_key:?} request header: {e}"))?;
    ctx.client_id = header.client_id.unwrap_or_default();
    if let Some(decoded) = old_versions::decode(&ctx, &mut frame) {
        return decoded;
    }
    let request = RequestKind::decode(api_key, &mut frame, version)
        .map_err(|e| format!("bad {api_key:?} v{version} request: {e}"))?;
    Ok(Decoded::Request(ctx, request))
}

/// Decodes one request frame and starts its handler. Runs the in-order part of the request
/// before returning. `Err` means close the connection, with the reason for the log.
pub async fn dispatch(
    broker: &Rc<Broker>,
    client_host: &Rc<str>,
    frame: Bytes,
) -> Result<ReplyTask, String> {
    let (ctx, request) = match decode_request(frame)? {
        Decoded::Request(ctx, request) => (
            Ctx {
                client_host: client_host.clone(),
                ..ctx
            },
            request,
        ),
        Decoded::ApiVersionsUnsupported(ctx) => {
            return Ok(spawn(
                async move { ctx.reply(&api_versions::unsupported()) },
            ))
        }
        Decoded::ListOffsetsV0(ctx, req, max_num_offsets) => {
            let ctx = Ctx {
                client_host: client_host.clone(),
                ..ctx
            };
            tracing::trace!(api = ?ctx.api_key, version = ctx.version, correlation_id = ctx.correlation_id, "request");
            let b = broker.clone();
            return Ok(spawn(async move {
                list_offsets::handle_v0(&b, ctx, req, max_num_offsets).await
            }));
        }
        Decoded::ProduceLegacy(ctx, req, refused) => {
            let ctx = Ctx {
                client_host: client_host.clone(),
                ..ctx
            };
            tracing::trace!(api = ?ctx.api_key, version = ctx.version, correlation_id = ctx.correlation_id, "request");
            return Ok(produce::start_refusing(&broker.clone(), ctx, req, refused).await);
        }
    };
    let api_key = ctx.api_key;
    tracing::trace!(api = ?api_key, version = ctx.version, correlation_id = ctx.correlation_id, "request");
    let b = broker.clone();
    Ok(match request {
        RequestKind::Produce(req) => produce::start(&b, ctx, req).await,
        RequestKind::Fetch(req) => spawn(async move { fetch::handle(&b, ctx, req).await }),
        RequestKind::ListOffsets(req) => {
            spawn(async move { list_offsets::handle(&b, ctx, req).await })
        }
        RequestKind::Metadata(req) => spawn(async move { metadata::handle(&b, ctx, req).await }),
        RequestKind::ApiVersions(req) => spawn(async move { api_versions::handle(ctx, req) }),
        RequestKind::FindCoordinator(req) => {
            spawn(async move { find_coordinator::handle(&b, ctx, req).await })
        }
        RequestKind::JoinGroup(req) => spawn(async move { join_group::handle(&b, ctx, req).await }),
        RequestKind::SyncGroup(req) => spawn(async move { sync_group::handle(&b, ctx, req).await }),
        RequestKind::Heartbeat(req) => spawn(async move { heartbeat::handle(&b, ctx, req).await }),
        RequestKind::LeaveGroup(req) => {
            spawn(async move { leave_group::handle(&b, ctx, req).await })
        }
        RequestKind::OffsetCommit(req) => {
            spawn(async move { offset_commit::handle(&b, ctx, req).await })
        }
        RequestKind::OffsetFetch(req) => {
            spawn(async move { offset_fetch::handle(&b, ctx, req).await })
        }
        RequestKind::DescribeGroups(req) => {
            spawn(async move { describe_groups::handle(&b, ctx, req).await })
        }
        RequestKind::ListGroups(req) => {
            spawn(async move { list_groups::handle(&b, ctx, req).await })
        }
        RequestKind::DeleteGroups(req) => {
            spawn(async move { delete_groups::handle(&b, ctx, req).await })
        }
        RequestKind::ConsumerGroupHeartbeat(req) => {
            spawn(async move { consumer_group_heartbeat::handle(&b, ctx, req).await })
        }
        RequestKind::ConsumerGroupDescribe(req) => {
            spawn(async move { consumer_group_describe::handle(&b, ctx, req).await })
        }
        RequestKind::OffsetDelete(req) => {
            spawn(async move { offset_delete::handle(&b, ctx, req).await })
        }
        RequestKind::CreateTopics(req) => {
            spawn(async move { create_topics::handle(&b, ctx, req).await })
        }
        RequestKind::DeleteTopics(req) => {
            spawn(async move { delete_topics::handle(&b, ctx, req).await })
        }
        RequestKind::CreateAcls(req) => {
            spawn(async move { create_acls::handle(&b, ctx, req).await })
        }
        RequestKind::DescribeAcls(req) => {
            spawn(async move { describe_acls::handle(&b, ctx, req).await })
        }
        RequestKind::DeleteAcls(req) => {
            spawn(async move { delete_acls::handle(&b, ctx, req).await })
        }
        RequestKind::DescribeConfigs(req) => {
            spawn(async move { describe_configs::handle(&b, ctx, req) })
        }
        RequestKind::CreatePartitions(req) => {
            spawn(async move { create_partitions::handle(&b, ctx, req).await })
        }
        RequestKind::DescribeCluster(req) => {
            spawn(async move { describe_cluster::handle(&b, ctx, req) })
        }
        RequestKind::AlterConfigs(req) => {
            spawn(async move { alter_configs::handle(&b, ctx, req).await })
        }
        RequestKind::IncrementalAlterConfigs(req) => {
            spawn(async move { alter_configs::handle_incremental(&b, ctx, req).await })
        }
        RequestKind::DeleteRecords(req) => {
            spawn(async move { delete_records::handle(&b, ctx, req).await })
        }
        RequestKind::InitProducerId(req) => {
            spawn(async move { init_producer_id::handle(&b, ctx, req).await })
        }
        RequestKind::AddPartitionsToTxn(req) => {
            spawn(async move { add_partitions_to_txn::handle(&b, ctx, req).await })
        }
        RequestKind::AddOffsetsToTxn(req) => {
            spawn(async move { add_offsets_to_txn::handle(&b, ctx, req).await })
        }
        RequestKind::EndTxn(req) => spawn(async move { end_txn::handle(&b, ctx, req).await }),
        RequestKind::TxnOffsetCommit(req) => {
            spawn(async move { txn_offset_commit::handle(&b, ctx, req).await })
        }
        RequestKind::DescribeProducers(req) => {
            spawn(async move { describe_producers::handle(&b, ctx, req).await })
        }
        RequestKind::DescribeTransactions(req) => {
            spawn(async move { describe_transactions::handle(&b, ctx, req).await })
        }
        RequestKind::ListTransactions(req) => {
            spawn(async move { list_transactions::handle(&b, ctx, req).await })
        }
        _ => return Err(format!("API {api_key:?} has no handler")),
    })
}

/// The topic name of a decoded request as a `String`.
pub fn name(n: &kafka_protocol::messages::TopicName) -> String {
    n.0.to_string()
}

pub fn topic_name(s: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(kafka_protocol::protocol::StrBytes::from_string(
        s.to_string(),
    ))
}

/// Groups `(topic, item)` pairs by topic, topics in order of first appearance.
pub fn by_topic<T>(items: impl IntoIterator<Item = (String, T)>) -> Vec<(String, Vec<T>)> {
    let mut out: Vec<(String, Vec<T>)> = Vec::new();
    for (topic, item) in items {
        match out.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, v)) => v.push(item),
            None => out.push((topic, vec![item])),
        }
    }
    out
}

/// Whether the client of `ctx` may do `operation` (`catalog::acl::OP_*`) on the resource
/// `(resource_type, name)`, by the catalog's ACLs. Clients are not authenticated (PLAINTEXT),
/// so every client is `User:ANONYMOUS`, from its address.
pub fn authorized(
    catalog: &crate::catalog::Catalog,
    config: &crate::config::Config,
    ctx: &Ctx,
    operation: i8,
    resource_type: i8,
    name: &str,
) -> bool {
    use crate::catalog::acl;
    if catalog.acls.is_empty() && config.allow_everyone_if_no_acl_found {
        return true;
    }
    let who = acl::Requester {
        principal: acl::ANONYMOUS,
        host: ctx.client_host.trim_start_matches('/'),
    };
    acl::authorize(
        &catalog.acls,
        config.allow_everyone_if_no_acl_found,
        who,
        operation,
        resource_type,
        name,
    )
}

/// `authorized` for a topic.
pub fn topic_authorized(
    catalog: &crate::catalog::Catalog,
    config: &crate::config::Config,
    ctx: &Ctx,
    operation: i8,
    topic: &str,
) -> bool {
    authorized(
        catalog,
        config,
        ctx,
        operation,
        crate::catalog::acl::RESOURCE_TOPIC,
        topic,
    )
}

pub fn str_bytes(s: impl Into<String>) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Well-formed request frames captured from what librdkafka sends (header v1/v2 + body),
    /// used as seeds for mutation.
    fn seeds() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (key, version) in [
            (18i16, 3i16),
            (3, 9),
            (3, 4),
            (0, 9),
            (1, 11),
            (2, 5),
            (19, 5),
            (32, 4),
            (60, 1),
            // Old versions decoded by `old_versions`: ListOffsets v0, OffsetCommit v0-1,
            // OffsetFetch v0.
            (2, 0),
            (8, 0),
            (8, 1),
            (9, 0),
            // Produce v0-2 and Fetch v0-3 (message sets).
            (0, 0),
            (0, 2),
            (1, 0),
            (1, 3),
        ] {
            let mut f = Vec::new();
            f.extend_from_slice(&key.to_be_bytes());
            f.extend_from_slice(&version.to_be_bytes());
            f.extend_from_slice(&7i32.to_be_bytes());
            f.extend_from_slice(&[0, 3, b'c', b'l', b'i']);
            f.extend_from_slice(&[0; 24]);
            out.push(f);
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Random bytes after a valid header never panic or abort the decoder.
        #[test]
        fn decode_never_panics(key in prop::sample::select(SUPPORTED.iter().map(|(k, _)| *k as i16).collect::<Vec<_>>()),
                               version in 0i16..16,
                               body in prop::collection::vec(any::<u8>(), 0..256)) {
            let mut f = Vec::new();
            f.extend_from_slice(&key.to_be_bytes());
            f.extend_from_slice(&version.to_be_bytes());
            f.extend_from_slice(&1i32.to_be_bytes());
            f.extend_from_slice(&body);
            let _ = decode_request(Bytes::from(f));
        }

        /// Byte flips and large counts planted in plausible requests never panic or abort.
        #[test]
        fn mutated_requests_never_panic(seed in 0usize..17, at in 0usize..40, word in any::<u32>(), flips in prop::collection::vec((0usize..40, any::<u8>()), 0..6)) {
            let mut f = seeds()[seed].clone();
            let at = at.min(f.len().saturating_sub(4));
            f[at..at + 4].copy_from_slice(&word.to_be_bytes());
            for (i, b) in flips {
                if i < f.len() {
                    f[i] ^= b;
                }
            }
            let _ = decode_request(Bytes::from(f));
        }
    }

    /// A Metadata v9 request claiming 2^31-1 topics with no bytes behind them fails cleanly.
    #[test]
    fn forged_array_count_is_an_error() {
        let mut f = Vec::new();
        f.extend_from_slice(&3i16.to_be_bytes());
        f.extend_from_slice(&9i16.to_be_bytes());
        f.extend_from_slice(&1i32.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0]); // client id "", no tagged fields
        f.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x07]); // compact array count 2^31
        assert!(decode_request(Bytes::from(f)).is_err());
        let mut g = Vec::new();
        g.extend_from_slice(&3i16.to_be_bytes());
        g.extend_from_slice(&4i16.to_be_bytes());
        g.extend_from_slice(&1i32.to_be_bytes());
        g.extend_from_slice(&[0, 0]);
        g.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
        assert!(decode_request(Bytes::from(g)).is_err());
    }

    /// Old versions route to their own decoders: ListOffsets v0 to its own variant,
    /// OffsetCommit v0-1 and OffsetFetch v0 to the newer request answered in a newer layout;
    /// forged counts in them are errors.
    #[test]
    fn old_versions_route_to_their_decoders() {
        let frame = |key: i16, version: i16, body: &[u8]| {
            let mut f = Vec::new();
            f.extend_from_slice(&key.to_be_bytes());
            f.extend_from_slice(&version.to_be_bytes());
            f.extend_from_slice(&9i32.to_be_bytes());
            f.extend_from_slice(&[0, 0]); // client id ""
            f.extend_from_slice(body);
            Bytes::from(f)
        };
        let mut lo = (-1i32).to_be_bytes().to_vec();
        lo.extend_from_slice(&0i32.to_be_bytes());
        assert!(matches!(
            decode_request(frame(2, 0, &lo)),
            Ok(Decoded::ListOffsetsV0(c, _, m)) if c.version == 0 && m.is_empty()
        ));
        let commit = [0u8, 1, b'g', 0, 0, 0, 0];
        assert!(matches!(
            decode_request(frame(8, 0, &commit)),
            Ok(Decoded::Request(c, RequestKind::OffsetCommit(r)))
                if c.version == 0 && c.layout_version == 2 && r.group_id.0.as_str() == "g"
        ));
        assert!(matches!(
            decode_request(frame(9, 0, &commit)),
            Ok(Decoded::Request(c, RequestKind::OffsetFetch(r)))
                if c.version == 0 && c.layout_version == 1 && r.group_id.0.as_str() == "g"
        ));
        let mut forged = (-1i32).to_be_bytes().to_vec();
        forged.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_request(frame(2, 0, &forged)).is_err());
        let forged = [0u8, 1, b'g', 0x7f, 0xff, 0xff, 0xff];
        assert!(decode_request(frame(8, 0, &forged)).is_err());
        assert!(decode_request(frame(9, 0, &forged)).is_err());
        // Produce v0-2: sets up-converted to v2 batches, a bad set refused for its partition.
        let corpus =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode_request");
        let seed = |name: &str| Bytes::from(std::fs::read(corpus.join(name)).expect("a fuzz seed"));
        match decode_request(seed("seed-3eafe1663e522a58")) {
            Ok(Decoded::ProduceLegacy(c, req, refused)) => {
                assert_eq!((c.version, refused.len()), (1, 0));
                let partitions = &req.topic_data[0].partition_data;
                assert_eq!(partitions.len(), 2);
                for p in partitions {
                    let batch = p.records.as_deref().expect("converted");
                    assert_eq!(
                        crate::log::batch::validate_produce(batch, 1 << 20).map(|h| h.len()),
                        Ok(1)
                    );
                }
            }
            _ => panic!("Produce v1 decodes"),
        }
        let mut body = 1i16.to_be_bytes().to_vec();
        body.extend_from_slice(&0i32.to_be_bytes());
        body.extend_from_slice(&[0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 0]);
        body.extend_from_slice(&3i32.to_be_bytes());
        body.extend_from_slice(&[1, 2, 3]);
        assert!(matches!(
            decode_request(frame(0, 2, &body)),
            Ok(Decoded::ProduceLegacy(_, _, r)) if r.len() == 1 && r[0].2 == kafka_protocol::ResponseError::CorruptMessage
        ));
        // Fetch v0-3: the v4 request, with v3's response limit (none before).
        for (name, max_bytes) in [
            ("seed-c27db15c258eedae", i32::MAX),
            ("seed-3fca2a92945378b6", 1 << 20),
        ] {
            assert!(matches!(
                decode_request(seed(name)),
                Ok(Decoded::Request(c, RequestKind::Fetch(r)))
                    if c.layout_version == c.version && r.max_bytes == max_bytes
                        && r.topics[0].partitions[0].partition_max_bytes == 1 << 20
            ));
        }
        assert!(decode_request(frame(1, 0, &[0xff; 12])).is_err());
    }

    /// An ApiVersions request of an unknown version is answered in v0, not refused.
    #[test]
    fn unknown_api_versions_version() {
        let f = [0u8, 18, 0, 99, 0, 0, 0, 5];
        assert!(
            matches!(decode_request(Bytes::copy_from_slice(&f)), Ok(Decoded::ApiVersionsUnsupported(c)) if c.version == 0 && c.correlation_id == 5)
        );
    }
}
