//! Request versions Kafka 3.9 serves that kafka-protocol no longer knows (it is generated from
//! Kafka 4, which removed them in KIP-896): Produce v0-2, Fetch v0-3, ListOffsets v0,
//! OffsetCommit v0-1 and OffsetFetch v0. Each is decoded into the request a newer version
//! sends and answered by that API's handler, on the path the newer versions take; only the wire
//! layout is handled here.
//!
//! - Produce v0-2 are decoded here into the `ProduceRequest` v3 would send, each partition's
//!   message set up-converted to a v2 batch (`message_sets`); a set that cannot be converted
//!   is answered with its error. Their responses (v0: offsets, v1: and throttle time, v2: and
//!   log append time) are encoded here.
//! - Fetch v0-3 are decoded here into a v4 `FetchRequest` (read_uncommitted, as they were);
//!   the handler down-converts what it read (`message_sets`) and the response is encoded here.
//! - OffsetFetch v0 has v1's layout both ways: kafka-protocol decodes and encodes it as v1.
//! - OffsetCommit v0-1 are decoded here into an `OffsetCommitRequest` (v0 carries no
//!   generation or member: a simple commit); their response has v2's layout.
//! - ListOffsets v0 is decoded here into the `ListOffsetsRequest` v1 would send, with each
//!   partition's `max_num_offsets` beside it, and its answer (a list of offsets per partition)
//!   is encoded here.
//!
//! These decoders read untrusted bytes as kafka-protocol's do: every count is checked against
//! the bytes left (at the smallest size an element can have) before anything is allocated by
//! it, every length before it is read, and nothing panics.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::{
    BrokerId, GroupId, ListOffsetsRequest, OffsetCommitRequest, OffsetFetchRequest, RequestKind,
    TopicName,
};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::message_sets::{self, ConvertError};
use super::{Ctx, Decoded};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{FetchRequest, ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;

/// The smallest encoded ListOffsets v0 topic: an empty name and an empty partition array.
const TOPIC_BYTES_MIN: usize = 2 + 4;
/// A ListOffsets v0 partition: index, timestamp, max_num_offsets.
const LIST_OFFSETS_V0_PARTITION_BYTES: usize = 4 + 8 + 4;
/// The smallest OffsetCommit v0 partition: index, offset, empty metadata.
const OFFSET_COMMIT_V0_PARTITION_BYTES_MIN: usize = 4 + 8 + 2;
/// The smallest OffsetCommit v1 partition: v0's and a commit timestamp.
const OFFSET_COMMIT_V1_PARTITION_BYTES_MIN: usize = OFFSET_COMMIT_V0_PARTITION_BYTES_MIN + 8;
/// The smallest Produce v0-2 partition: index and an empty message set.
const PRODUCE_V0_PARTITION_BYTES_MIN: usize = 4 + 4;
/// A Fetch v0-3 partition: index, fetch offset, partition max bytes.
const FETCH_V0_PARTITION_BYTES: usize = 4 + 8 + 4;

/// The layout kafka-protocol reads and writes for a version it does not know but a newer one
/// shares both ways; `None` for every other version.
fn same_layout_as(api_key: ApiKey, version: i16) -> Option<i16> {
    match (api_key, version) {
        (ApiKey::OffsetFetch, 0) => Some(1),
        _ => None,
    }
}

/// Decodes the body of a request whose version this module handles (`ctx` from its header);
/// `None` for every other request, which kafka-protocol decodes. `Err` closes the connection.
pub fn decode(ctx: &Ctx, body: &mut Bytes) -> Option<Result<Decoded, String>> {
    let bad = |e: String| format!("bad {:?} v{} request: {e}", ctx.api_key, ctx.version);
    let decoded = match (ctx.api_key, ctx.version) {
        (ApiKey::ListOffsets, 0) => list_offsets_v0(body)
            .map(|(req, max)| Decoded::ListOffsetsV0(ctx.clone(), req, max))
            .map_err(bad),
        (ApiKey::Produce, 0..=2) => produce_v0_v2(body)
            .map(|(req, refused)| Decoded::ProduceLegacy(ctx.clone(), req, refused))
            .map_err(bad),
        (ApiKey::Fetch, v @ 0..=3) => fetch_v0_v3(body, v)
            .map(|req| Decoded::Request(ctx.clone(), RequestKind::Fetch(req)))
            .map_err(bad),
        (ApiKey::OffsetCommit, v @ (0 | 1)) => offset_commit_v0_v1(body, v)
            .map(|req| {
                let ctx = Ctx {
                    layout_version: 2,
                    ..ctx.clone()
                };
                Decoded::Request(ctx, RequestKind::OffsetCommit(req))
            })
            .map_err(bad),
        (key, v) => {
            let layout = same_layout_as(key, v)?;
            OffsetFetchRequest::decode(body, layout)
                .map(|req| {
                    let ctx = Ctx {
                        layout_version: layout,
                        ..ctx.clone()
                    };
                    Decoded::Request(ctx, RequestKind::OffsetFetch(req))
                })
                .map_err(|e| bad(e.to_string()))
        }
    };
    Some(decoded)
}

/// A bounded big-endian reader over a request body.
struct Reader<'a>(&'a mut Bytes);

impl Reader<'_> {
    fn need(&self, bytes: usize, what: &str) -> Result<(), String> {
        if self.0.remaining() < bytes {
            return Err(format!(
                "{what}: {bytes} bytes needed, {} left",
                self.0.remaining()
            ));
        }
        Ok(())
    }

    fn i32(&mut self, what: &str) -> Result<i32, String> {
        self.need(4, what)?;
        Ok(self.0.get_i32())
    }

    fn i64(&mut self, what: &str) -> Result<i64, String> {
        self.need(8, what)?;
        Ok(self.0.get_i64())
    }

    /// A nullable string (i16 length, -1 for null).
    fn nullable_string(&mut self, what: &str) -> Result<Option<StrBytes>, String> {
        self.need(2, what)?;
        let len = self.0.get_i16();
        if len < 0 {
            return if len == -1 {
                Ok(None)
            } else {
                Err(format!("{what}: length {len}"))
            };
        }
        let len = len as usize;
        self.need(len, what)?;
        StrBytes::from_utf8(self.0.split_to(len))
            .map(Some)
            .map_err(|e| format!("{what}: {e}"))
    }

    fn i16(&mut self, what: &str) -> Result<i16, String> {
        self.need(2, what)?;
        Ok(self.0.get_i16())
    }

    /// Nullable bytes (i32 length, -1 for null), as a slice of the body.
    fn nullable_bytes(&mut self, what: &str) -> Result<Option<Bytes>, String> {
        let len = self.i32(what)?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| format!("{what}: length {len}"))?;
        self.need(len, what)?;
        Ok(Some(self.0.split_to(len)))
    }

    fn string(&mut self, what: &str) -> Result<StrBytes, String> {
        self.nullable_string(what)?
            .ok_or_else(|| format!("{what}: null"))
    }

    /// An array's element count, refused when negative (null) or when `element_bytes_min`
    /// bytes each would not fit in what is left.
    fn count(&mut self, element_bytes_min: usize, what: &str) -> Result<usize, String> {
        let n = self.i32(what)?;
        let n = usize::try_from(n).map_err(|_| format!("{what}: count {n}"))?;
        if n > self.0.remaining() / element_bytes_min {
            return Err(format!(
                "{what}: {n} elements cannot fit in {} bytes",
                self.0.remaining()
            ));
        }
        Ok(n)
    }
}

/// ListOffsets v0: `replica_id, [topic, [partition, timestamp, max_num_offsets]]`. Returns
/// the request v1 would send and each partition's `max_num_offsets`, in request order.
fn list_offsets_v0(body: &mut Bytes) -> Result<(ListOffsetsRequest, Vec<i32>), String> {
    let mut r = Reader(body);
    let replica_id = r.i32("replica_id")?;
    let topic_count = r.count(TOPIC_BYTES_MIN, "topics")?;
    let mut topics = Vec::with_capacity(topic_count);
    let mut max_num_offsets = Vec::new();
    for _ in 0..topic_count {
        let name = r.string("topic name")?;
        let partition_count = r.count(LIST_OFFSETS_V0_PARTITION_BYTES, "partitions")?;
        let mut partitions = Vec::with_capacity(partition_count);
        max_num_offsets.reserve(partition_count);
        for _ in 0..partition_count {
            let index = r.i32("partition_index")?;
            let timestamp = r.i64("timestamp")?;
            max_num_offsets.push(r.i32("max_num_offsets")?);
            partitions.push(
                ListOffsetsPartition::default()
                    .with_partition_index(index)
                    .with_timestamp(timestamp),
            );
        }
        topics.push(
            ListOffsetsTopic::default()
                .with_name(TopicName(name))
                .with_partitions(partitions),
        );
    }
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(replica_id))
        .with_topics(topics);
    Ok((req, max_num_offsets))
}

/// Produce v0-2: `acks, timeout_ms, [topic, [partition, message_set]]`. Returns the request
/// v3 would send, with each set up-converted (`message_sets::up_convert`), and the partitions
/// whose set could not be: CORRUPT_MESSAGE, or MESSAGE_TOO_LARGE for a set that inflates past
/// the bound, as Kafka answers them.
fn produce_v0_v2(
    body: &mut Bytes,
) -> Result<(ProduceRequest, Vec<super::produce::Refused>), String> {
    let mut r = Reader(body);
    let acks = r.i16("acks")?;
    let timeout_ms = r.i32("timeout_ms")?;
    let topic_count = r.count(TOPIC_BYTES_MIN, "topics")?;
    let mut topics = Vec::with_capacity(topic_count);
    let mut refused = Vec::new();
    for _ in 0..topic_count {
        let name = r.string("topic name")?;
        let partition_count = r.count(PRODUCE_V0_PARTITION_BYTES_MIN, "partitions")?;
        let mut partitions = Vec::with_capacity(partition_count);
        for _ in 0..partition_count {
            let index = r.i32("partition_index")?;
            let set = r.nullable_bytes("message_set")?.unwrap_or_default();
            let records = match message_sets::up_convert(&set) {
                Ok(batch) => Some(Bytes::from(batch)),
                Err(e) => {
                    let code = match e {
                        ConvertError::TooLarge => ResponseError::MessageTooLarge,
                        ConvertError::Corrupt(_) => ResponseError::CorruptMessage,
                    };
                    refused.push((name.to_string(), index, code, e.to_string()));
                    None
                }
            };
            partitions.push(
                PartitionProduceData::default()
                    .with_index(index)
                    .with_records(records),
            );
        }
        topics.push(
            TopicProduceData::default()
                .with_name(TopicName(name))
                .with_partition_data(partitions),
        );
    }
    let req = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(topics);
    Ok((req, refused))
}

/// Fetch v0-3: `replica_id, max_wait_ms, min_bytes, [v3: max_bytes], [topic, [partition,
/// fetch_offset, partition_max_bytes]]`, as the v4 request (read_uncommitted, no session)
/// would send it; before v3 the response has no limit of its own.
fn fetch_v0_v3(body: &mut Bytes, version: i16) -> Result<FetchRequest, String> {
    let mut r = Reader(body);
    let replica_id = r.i32("replica_id")?;
    let max_wait_ms = r.i32("max_wait_ms")?;
    let min_bytes = r.i32("min_bytes")?;
    let max_bytes = if version >= 3 {
        r.i32("max_bytes")?
    } else {
        i32::MAX
    };
    let topic_count = r.count(TOPIC_BYTES_MIN, "topics")?;
    let mut topics = Vec::with_capacity(topic_count);
    for _ in 0..topic_count {
        let name = r.string("topic name")?;
        let partition_count = r.count(FETCH_V0_PARTITION_BYTES, "partitions")?;
        let mut partitions = Vec::with_capacity(partition_count);
        for _ in 0..partition_count {
            let partition = r.i32("partition")?;
            let fetch_offset = r.i64("fetch_offset")?;
            let partition_max_bytes = r.i32("partition_max_bytes")?;
            partitions.push(
                FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(fetch_offset)
                    .with_partition_max_bytes(partition_max_bytes),
            );
        }
        topics.push(
            FetchTopic::default()
                .with_topic(TopicName(name))
                .with_partitions(partitions),
        );
    }
    Ok(FetchRequest::default()
        .with_replica_id(BrokerId(replica_id))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(max_bytes)
        .with_isolation_level(0)
        .with_topics(topics))
}

/// OffsetCommit v0: `group_id, [topic, [partition, offset, metadata]]`; v1 adds
/// `generation_id, member_id` after the group and a commit timestamp after each offset. Kafka
/// 3.9 stores v1's timestamp as the commit time (for expiry); offsets here do not expire by
/// commit time, so it is read and dropped.
fn offset_commit_v0_v1(body: &mut Bytes, version: i16) -> Result<OffsetCommitRequest, String> {
    let mut r = Reader(body);
    let group_id = r.string("group_id")?;
    let mut req = OffsetCommitRequest::default().with_group_id(GroupId(group_id));
    if version >= 1 {
        req.generation_id_or_member_epoch = r.i32("generation_id")?;
        req.member_id = r.string("member_id")?;
    }
    let partition_bytes_min = if version >= 1 {
        OFFSET_COMMIT_V1_PARTITION_BYTES_MIN
    } else {
        OFFSET_COMMIT_V0_PARTITION_BYTES_MIN
    };
    let topic_count = r.count(TOPIC_BYTES_MIN, "topics")?;
    let mut topics = Vec::with_capacity(topic_count);
    for _ in 0..topic_count {
        let name = r.string("topic name")?;
        let partition_count = r.count(partition_bytes_min, "partitions")?;
        let mut partitions = Vec::with_capacity(partition_count);
        for _ in 0..partition_count {
            let index = r.i32("partition_index")?;
            let offset = r.i64("committed_offset")?;
            if version >= 1 {
                let _commit_timestamp = r.i64("commit_timestamp")?;
            }
            let metadata = r.nullable_string("committed_metadata")?;
            partitions.push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(index)
                    .with_committed_offset(offset)
                    .with_committed_metadata(metadata),
            );
        }
        topics.push(
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(name))
                .with_partitions(partitions),
        );
    }
    Ok(req.with_topics(topics))
}

/// One topic of a ListOffsets v0 response: per partition, its index, error code and offsets
/// (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsV0Topic {
    pub name: String,
    pub partitions: Vec<(i32, i16, Vec<i64>)>,
}

/// A ListOffsets v0 response body: `[topic, [partition, error_code, [offset]]]`, no throttle
/// time (that came in v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsV0Response {
    pub topics: Vec<ListOffsetsV0Topic>,
}

fn array_len(n: usize, what: &str) -> anyhow::Result<i32> {
    i32::try_from(n).map_err(|_| anyhow::anyhow!("{n} {what} do not fit an array"))
}

fn put_name<B: ByteBufMut>(buf: &mut B, name: &str) -> anyhow::Result<()> {
    let len = i16::try_from(name.len())
        .map_err(|_| anyhow::anyhow!("topic name of {} bytes", name.len()))?;
    buf.put_i16(len);
    buf.put_slice(name.as_bytes());
    Ok(())
}

/// A Produce v0-2 response, from the v3 response the handler built: `[topic, [partition,
/// error_code, base_offset, (v2) log_append_time_ms]], (v1+) throttle_time_ms`.
pub struct LegacyProduceResponse(pub ProduceResponse);

impl Encodable for LegacyProduceResponse {
    fn encode<B: ByteBufMut>(&self, buf: &mut B, version: i16) -> anyhow::Result<()> {
        anyhow::ensure!((0..=2).contains(&version), "Produce response v{version}");
        buf.put_i32(array_len(self.0.responses.len(), "topics")?);
        for t in &self.0.responses {
            put_name(buf, &t.name.0)?;
            buf.put_i32(array_len(t.partition_responses.len(), "partitions")?);
            for p in &t.partition_responses {
                buf.put_i32(p.index);
                buf.put_i16(p.error_code);
                buf.put_i64(p.base_offset);
                if version >= 2 {
                    buf.put_i64(p.log_append_time_ms);
                }
            }
        }
        if version >= 1 {
            buf.put_i32(self.0.throttle_time_ms);
        }
        Ok(())
    }

    fn compute_size(&self, version: i16) -> anyhow::Result<usize> {
        anyhow::ensure!((0..=2).contains(&version), "Produce response v{version}");
        let partition = 4 + 2 + 8 + if version >= 2 { 8 } else { 0 };
        let topics: usize = self
            .0
            .responses
            .iter()
            .map(|t| 2 + t.name.0.len() + 4 + partition * t.partition_responses.len())
            .sum();
        Ok(4 + topics + if version >= 1 { 4 } else { 0 })
    }
}

/// One partition of a Fetch v0-3 response: index, error code, high watermark, message set.
pub type LegacyFetchPartition = (i32, i16, i64, Bytes);

/// A Fetch v0-3 response: `(v1+) throttle_time_ms, [topic, [partition, error_code,
/// high_watermark, message_set]]`.
pub struct LegacyFetchResponse {
    pub topics: Vec<(String, Vec<LegacyFetchPartition>)>,
}

impl Encodable for LegacyFetchResponse {
    fn encode<B: ByteBufMut>(&self, buf: &mut B, version: i16) -> anyhow::Result<()> {
        anyhow::ensure!((0..=3).contains(&version), "Fetch response v{version}");
        if version >= 1 {
            buf.put_i32(0);
        }
        buf.put_i32(array_len(self.topics.len(), "topics")?);
        for (name, partitions) in &self.topics {
            put_name(buf, name)?;
            buf.put_i32(array_len(partitions.len(), "partitions")?);
            for (index, error_code, high_watermark, set) in partitions {
                buf.put_i32(*index);
                buf.put_i16(*error_code);
                buf.put_i64(*high_watermark);
                buf.put_i32(array_len(set.len(), "message set bytes")?);
                buf.put_slice(set);
            }
        }
        Ok(())
    }

    fn compute_size(&self, version: i16) -> anyhow::Result<usize> {
        anyhow::ensure!((0..=3).contains(&version), "Fetch response v{version}");
        let topics: usize = self
            .topics
            .iter()
            .map(|(name, ps)| {
                2 + name.len()
                    + 4
                    + ps.iter()
                        .map(|(_, _, _, set)| 4 + 2 + 8 + 4 + set.len())
                        .sum::<usize>()
            })
            .sum();
        Ok(if version >= 1 { 4 } else { 0 } + 4 + topics)
    }
}

impl Encodable for ListOffsetsV0Response {
    fn encode<B: ByteBufMut>(&self, buf: &mut B, version: i16) -> anyhow::Result<()> {
        anyhow::ensure!(version == 0, "ListOffsetsV0Response encoded as v{version}");
        buf.put_i32(array_len(self.topics.len(), "topics")?);
        for t in &self.topics {
            let name_len = i16::try_from(t.name.len())
                .map_err(|_| anyhow::anyhow!("topic name of {} bytes", t.name.len()))?;
            buf.put_i16(name_len);
            buf.put_slice(t.name.as_bytes());
            buf.put_i32(array_len(t.partitions.len(), "partitions")?);
            for (index, error_code, offsets) in &t.partitions {
                buf.put_i32(*index);
                buf.put_i16(*error_code);
                buf.put_i32(array_len(offsets.len(), "offsets")?);
                for o in offsets {
                    buf.put_i64(*o);
                }
            }
        }
        Ok(())
    }

    fn compute_size(&self, version: i16) -> anyhow::Result<usize> {
        anyhow::ensure!(version == 0, "ListOffsetsV0Response sized as v{version}");
        Ok(4 + self
            .topics
            .iter()
            .map(|t| {
                2 + t.name.len()
                    + 4
                    + t.partitions
                        .iter()
                        .map(|(_, _, offsets)| 4 + 2 + 4 + 8 * offsets.len())
                        .sum::<usize>()
            })
            .sum::<usize>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as i16).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    /// A ListOffsets v0 body decodes into v1's request with each partition's count beside it.
    #[test]
    fn list_offsets_v0_decodes() {
        let mut b = Vec::new();
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        string(&mut b, "t");
        b.extend_from_slice(&2i32.to_be_bytes());
        for (p, ts, max) in [(0i32, -1i64, 5i32), (3, -2, 1)] {
            b.extend_from_slice(&p.to_be_bytes());
            b.extend_from_slice(&ts.to_be_bytes());
            b.extend_from_slice(&max.to_be_bytes());
        }
        let (req, max) = list_offsets_v0(&mut Bytes::from(b)).expect("decodes");
        assert_eq!(req.replica_id, BrokerId(-1));
        assert_eq!(req.topics.len(), 1);
        assert_eq!(req.topics[0].name.0.as_str(), "t");
        let parts: Vec<(i32, i64)> = req.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.timestamp))
            .collect();
        assert_eq!(parts, vec![(0, -1), (3, -2)]);
        assert_eq!(max, vec![5, 1]);
    }

    /// OffsetCommit v1 keeps its generation, member, offsets and metadata (null included);
    /// v0 is a simple commit (generation -1, no member).
    #[test]
    fn offset_commit_v0_v1_decode() {
        for version in [0i16, 1] {
            let mut b = Vec::new();
            string(&mut b, "g");
            if version == 1 {
                b.extend_from_slice(&7i32.to_be_bytes());
                string(&mut b, "m-1");
            }
            b.extend_from_slice(&1i32.to_be_bytes());
            string(&mut b, "t");
            b.extend_from_slice(&2i32.to_be_bytes());
            for (p, offset, metadata) in [(0i32, 42i64, Some("meta")), (1, 7, None)] {
                b.extend_from_slice(&p.to_be_bytes());
                b.extend_from_slice(&offset.to_be_bytes());
                if version == 1 {
                    b.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
                }
                match metadata {
                    Some(m) => string(&mut b, m),
                    None => b.extend_from_slice(&(-1i16).to_be_bytes()),
                }
            }
            let req = offset_commit_v0_v1(&mut Bytes::from(b), version).expect("decodes");
            assert_eq!(req.group_id.0.as_str(), "g");
            if version == 1 {
                assert_eq!(req.generation_id_or_member_epoch, 7);
                assert_eq!(req.member_id.as_str(), "m-1");
            } else {
                assert_eq!(req.generation_id_or_member_epoch, -1);
                assert_eq!(req.member_id.as_str(), "");
            }
            let p = &req.topics[0].partitions;
            assert_eq!((p[0].partition_index, p[0].committed_offset), (0, 42));
            assert_eq!(p[0].committed_metadata.as_deref(), Some("meta"));
            assert_eq!((p[1].partition_index, p[1].committed_offset), (1, 7));
            assert_eq!(p[1].committed_metadata, None);
        }
    }

    /// Counts that cannot fit the bytes left, negative counts and lengths, and truncation
    /// anywhere are errors, never allocations or panics.
    #[test]
    fn forged_and_truncated_bodies_are_errors() {
        let mut huge = Vec::new();
        huge.extend_from_slice(&(-1i32).to_be_bytes());
        huge.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(list_offsets_v0(&mut Bytes::from(huge)).is_err());
        let mut negative = Vec::new();
        string(&mut negative, "g");
        negative.extend_from_slice(&(-1i32).to_be_bytes());
        assert!(offset_commit_v0_v1(&mut Bytes::from(negative), 0).is_err());
        let mut bad_len = Vec::new();
        bad_len.extend_from_slice(&(-2i16).to_be_bytes());
        assert!(offset_commit_v0_v1(&mut Bytes::from(bad_len), 1).is_err());
        // One topic, one partition, cut at every byte.
        let mut whole = Vec::new();
        string(&mut whole, "g");
        whole.extend_from_slice(&3i32.to_be_bytes()); // generation
        string(&mut whole, "member");
        whole.extend_from_slice(&1i32.to_be_bytes());
        string(&mut whole, "topic");
        whole.extend_from_slice(&1i32.to_be_bytes());
        whole.extend_from_slice(&[0; 4 + 8 + 8]);
        string(&mut whole, "m");
        assert!(offset_commit_v0_v1(&mut Bytes::from(whole.clone()), 1).is_ok());
        for cut in 0..whole.len() {
            let mut b = Bytes::copy_from_slice(&whole[..cut]);
            assert!(offset_commit_v0_v1(&mut b, 1).is_err(), "cut at {cut}");
            let mut b = Bytes::copy_from_slice(&whole[..cut]);
            let _ = list_offsets_v0(&mut b);
        }
    }

    /// The v0 response encodes to the size it computes, field by field.
    #[test]
    fn list_offsets_v0_response_encodes() {
        let resp = ListOffsetsV0Response {
            topics: vec![ListOffsetsV0Topic {
                name: "t".into(),
                partitions: vec![(0, 0, vec![9, 3]), (1, 3, vec![])],
            }],
        };
        let mut buf = Vec::new();
        resp.encode(&mut buf, 0).expect("encodes");
        assert_eq!(buf.len(), resp.compute_size(0).expect("sized"));
        let mut want = Vec::new();
        want.extend_from_slice(&1i32.to_be_bytes());
        string(&mut want, "t");
        want.extend_from_slice(&2i32.to_be_bytes());
        want.extend_from_slice(&0i32.to_be_bytes());
        want.extend_from_slice(&0i16.to_be_bytes());
        want.extend_from_slice(&2i32.to_be_bytes());
        want.extend_from_slice(&9i64.to_be_bytes());
        want.extend_from_slice(&3i64.to_be_bytes());
        want.extend_from_slice(&1i32.to_be_bytes());
        want.extend_from_slice(&3i16.to_be_bytes());
        want.extend_from_slice(&0i32.to_be_bytes());
        assert_eq!(buf, want);
        assert!(resp.encode(&mut Vec::new(), 1).is_err());
    }
}
