//! The records of `__consumer_offsets`, in Kafka's own formats (GroupMetadataManager and the
//! generated OffsetCommitKey/Value, GroupMetadataKey/Value schemas), so the topic reads the same
//! as a Kafka broker's and Kafka's tools could decode it.
//!
//! Keys say what a record is about: versions 0 and 1 are an offset commit (group, topic,
//! partition), version 2 is a group's metadata (group). A null value deletes (a tombstone).
//! Values are written in the newest non-flexible version (offset commit v3, group metadata v3)
//! and read in every version up to those.
//!
//! These bytes come from disk, so decoding is bounded and never panics: a short or malformed
//! record is `None`, and loading skips it.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// What one `__consumer_offsets` record says.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// The committed offset of a group for a partition; `None` removes it.
    Offset {
        group: String,
        topic: String,
        partition: i32,
        value: Option<OffsetValue>,
    },
    /// A group's membership at its last stable point; `None` removes the group.
    Group {
        group: String,
        value: Option<GroupValue>,
    },
}

impl Entry {
    /// The record that removes a group's committed offset of a partition.
    pub fn offset_tombstone(group: &str, topic: String, partition: i32) -> Entry {
        Entry::Offset {
            group: group.to_string(),
            topic,
            partition,
            value: None,
        }
    }

    /// The group the record is about.
    pub fn group(&self) -> &str {
        match self {
            Entry::Offset { group, .. } | Entry::Group { group, .. } => group,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp: i64,
    pub members: Vec<MemberValue>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MemberValue {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;

impl Entry {
    /// The record's key and value.
    pub fn encode(&self) -> (Bytes, Option<Bytes>) {
        let mut key = BytesMut::new();
        match self {
            Entry::Offset {
                group,
                topic,
                partition,
                value,
            } => {
                key.put_i16(OFFSET_KEY_VERSION);
                put_str(&mut key, group);
                put_str(&mut key, topic);
                key.put_i32(*partition);
                let value = value.as_ref().map(|v| {
                    let mut b = BytesMut::new();
                    b.put_i16(OFFSET_VALUE_VERSION);
                    b.put_i64(v.offset);
                    b.put_i32(v.leader_epoch);
                    put_str(&mut b, &v.metadata);
                    b.put_i64(v.commit_timestamp);
                    b.freeze()
                });
                (key.freeze(), value)
            }
            Entry::Group { group, value } => {
                key.put_i16(GROUP_KEY_VERSION);
                put_str(&mut key, group);
                let value = value.as_ref().map(|g| {
                    let mut b = BytesMut::new();
                    b.put_i16(GROUP_VALUE_VERSION);
                    put_str(&mut b, &g.protocol_type);
                    b.put_i32(g.generation);
                    put_nullable_str(&mut b, g.protocol.as_deref());
                    put_nullable_str(&mut b, g.leader.as_deref());
                    b.put_i64(g.state_timestamp);
                    b.put_i32(g.members.len() as i32);
                    for m in &g.members {
                        put_str(&mut b, &m.member_id);
                        put_nullable_str(&mut b, m.instance_id.as_deref());
                        put_str(&mut b, &m.client_id);
                        put_str(&mut b, &m.client_host);
                        b.put_i32(m.rebalance_timeout_ms);
                        b.put_i32(m.session_timeout_ms);
                        put_bytes(&mut b, &m.subscription);
                        put_bytes(&mut b, &m.assignment);
                    }
                    b.freeze()
                });
                (key.freeze(), value)
            }
        }
    }

    /// Decodes a record; `None` when the key or value is not one we understand.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<Entry> {
        let mut k = key;
        match get_i16(&mut k)? {
            0 | 1 => {
                let group = get_str(&mut k)?;
                let topic = get_str(&mut k)?;
                let partition = get_i32(&mut k)?;
                let value = match value {
                    None => None,
                    Some(mut v) => Some(decode_offset_value(&mut v)?),
                };
                Some(Entry::Offset {
                    group,
                    topic,
                    partition,
                    value,
                })
            }
            2 => {
                let group = get_str(&mut k)?;
                let value = match value {
                    None => None,
                    Some(mut v) => Some(decode_group_value(&mut v)?),
                };
                Some(Entry::Group { group, value })
            }
            _ => None,
        }
    }
}

fn decode_offset_value(v: &mut &[u8]) -> Option<OffsetValue> {
    let version = get_i16(v)?;
    if !(0..=OFFSET_VALUE_VERSION).contains(&version) {
        return None;
    }
    let offset = get_i64(v)?;
    let leader_epoch = if version >= 3 { get_i32(v)? } else { -1 };
    let metadata = get_str(v)?;
    let commit_timestamp = get_i64(v)?;
    Some(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

fn decode_group_value(v: &mut &[u8]) -> Option<GroupValue> {
    let version = get_i16(v)?;
    if !(0..=GROUP_VALUE_VERSION).contains(&version) {
        return None;
    }
    let protocol_type = get_str(v)?;
    let generation = get_i32(v)?;
    let protocol = get_nullable_str(v)?;
    let leader = get_nullable_str(v)?;
    let state_timestamp = if version >= 2 { get_i64(v)? } else { -1 };
    let count = get_i32(v)?;
    // Each member takes at least 26 bytes: bound the count by what is there.
    if count < 0 || count as usize > v.len() / 26 + 1 {
        return None;
    }
    let mut members = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let member_id = get_str(v)?;
        let instance_id = if version >= 3 {
            get_nullable_str(v)?
        } else {
            None
        };
        let client_id = get_str(v)?;
        let client_host = get_str(v)?;
        // v0 has no rebalance timeout: it was the session timeout.
        let rebalance_timeout_ms = if version >= 1 {
            Some(get_i32(v)?)
        } else {
            None
        };
        let session_timeout_ms = get_i32(v)?;
        let subscription = get_bytes(v)?;
        let assignment = get_bytes(v)?;
        members.push(MemberValue {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms: rebalance_timeout_ms.unwrap_or(session_timeout_ms),
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Some(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp,
        members,
    })
}

fn put_str(b: &mut BytesMut, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    b.put_i16(len as i16);
    b.put_slice(&s.as_bytes()[..len]);
}

fn put_nullable_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(b, s),
        None => b.put_i16(-1),
    }
}

fn put_bytes(b: &mut BytesMut, v: &[u8]) {
    b.put_i32(v.len() as i32);
    b.put_slice(v);
}

fn get_i16(b: &mut &[u8]) -> Option<i16> {
    (b.remaining() >= 2).then(|| b.get_i16())
}

fn get_i32(b: &mut &[u8]) -> Option<i32> {
    (b.remaining() >= 4).then(|| b.get_i32())
}

fn get_i64(b: &mut &[u8]) -> Option<i64> {
    (b.remaining() >= 8).then(|| b.get_i64())
}

fn get_nullable_str(b: &mut &[u8]) -> Option<Option<String>> {
    let len = get_i16(b)?;
    if len < 0 {
        return Some(None);
    }
    let len = len as usize;
    if b.len() < len {
        return None;
    }
    let s = String::from_utf8(b[..len].to_vec()).ok()?;
    b.advance(len);
    Some(Some(s))
}

fn get_str(b: &mut &[u8]) -> Option<String> {
    get_nullable_str(b)?
}

fn get_bytes(b: &mut &[u8]) -> Option<Bytes> {
    let len = get_i32(b)?;
    if len < 0 {
        return Some(Bytes::new());
    }
    let len = len as usize;
    if b.len() < len {
        return None;
    }
    let out = Bytes::copy_from_slice(&b[..len]);
    b.advance(len);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(e: Entry) {
        let (k, v) = e.encode();
        assert_eq!(Entry::decode(&k, v.as_deref()), Some(e));
    }

    #[test]
    fn entries_round_trip() {
        round_trip(Entry::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
            value: Some(OffsetValue {
                offset: 42,
                leader_epoch: 7,
                metadata: "meta".into(),
                commit_timestamp: 1_700_000_000_000,
            }),
        });
        round_trip(Entry::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
            value: None,
        });
        round_trip(Entry::Group {
            group: "g".into(),
            value: Some(GroupValue {
                protocol_type: "consumer".into(),
                generation: 5,
                protocol: Some("range".into()),
                leader: Some("m-1".into()),
                state_timestamp: 9,
                members: vec![MemberValue {
                    member_id: "m-1".into(),
                    instance_id: Some("i".into()),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    subscription: Bytes::from_static(b"sub"),
                    assignment: Bytes::from_static(b"asg"),
                }],
            }),
        });
        round_trip(Entry::Group {
            group: "g".into(),
            value: None,
        });
    }

    /// A commit as Kafka 2.x wrote it (key v1, value v1 with an expire timestamp) still reads.
    #[test]
    fn reads_older_offset_values() {
        let mut k = BytesMut::new();
        k.put_i16(1);
        put_str(&mut k, "g");
        put_str(&mut k, "t");
        k.put_i32(0);
        let mut v = BytesMut::new();
        v.put_i16(1);
        v.put_i64(10);
        put_str(&mut v, "");
        v.put_i64(5);
        v.put_i64(6);
        let e = Entry::decode(&k, Some(&v)).unwrap();
        assert!(matches!(
            e,
            Entry::Offset {
                value: Some(OffsetValue {
                    offset: 10,
                    leader_epoch: -1,
                    commit_timestamp: 5,
                    ..
                }),
                ..
            }
        ));
    }

    proptest! {
        /// Whatever is on disk, decoding never panics.
        #[test]
        fn decode_never_panics(key in prop::collection::vec(any::<u8>(), 0..64),
                               value in prop::option::of(prop::collection::vec(any::<u8>(), 0..128))) {
            let _ = Entry::decode(&key, value.as_deref());
        }
    }
}
