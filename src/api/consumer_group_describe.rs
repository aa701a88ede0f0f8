//! ConsumerGroupDescribe (KIP-848): members, epochs, current and target assignments of
//! consumer-protocol groups. Classic groups answer GROUP_ID_NOT_FOUND, as in Kafka.

use std::rc::Rc;

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};

use super::{errors, str_bytes, topic_name, Broker, Ctx, Reply, Versions};
use crate::catalog::Catalog;
use crate::group::{client, consumer};

pub const VERSIONS: Versions = Versions { min: 0, max: 1 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: ConsumerGroupDescribeRequest) -> Reply {
    let catalog = broker.catalog.get();
    let mut groups = Vec::with_capacity(req.group_ids.len());
    for id in req.group_ids {
        let mut d = DescribedGroup::default().with_group_id(id.clone());
        match client::describe_consumer(&broker.shard, &catalog, id.0.to_string()).await {
            Ok(g) => {
                d.group_state = str_bytes(g.state);
                d.group_epoch = g.epoch;
                d.assignment_epoch = g.assignment_epoch;
                d.assignor_name = str_bytes(consumer::ASSIGNORS[0]);
                d.members = g
                    .members
                    .into_iter()
                    .map(|m| {
                        Member::default()
                            .with_member_id(str_bytes(m.member_id))
                            .with_instance_id(m.instance_id.map(str_bytes))
                            .with_rack_id(m.rack_id.map(str_bytes))
                            .with_member_epoch(m.epoch)
                            .with_client_id(str_bytes(m.client_id))
                            .with_client_host(str_bytes(m.client_host))
                            .with_subscribed_topic_names(
                                m.topics.iter().map(|t| topic_name(t)).collect(),
                            )
                            .with_subscribed_topic_regex(m.regex.map(str_bytes))
                            .with_assignment(assignment(&catalog, &m.assignment))
                            .with_target_assignment(assignment(&catalog, &m.target))
                    })
                    .collect();
            }
            Err((e, msg)) => {
                d.error_code = errors::group(e).code();
                d.error_message = Some(str_bytes(msg));
            }
        }
        groups.push(d);
    }
    ctx.reply(&ConsumerGroupDescribeResponse::default().with_groups(groups))
}

fn assignment(catalog: &Catalog, a: &consumer::Assignment) -> Assignment {
    Assignment::default().with_topic_partitions(
        a.iter()
            .filter_map(|(name, parts)| {
                catalog.topic(name).map(|t| {
                    TopicPartitions::default()
                        .with_topic_id(t.id)
                        .with_topic_name(topic_name(name))
                        .with_partitions(parts.iter().copied().collect())
                })
            })
            .collect(),
    )
}
