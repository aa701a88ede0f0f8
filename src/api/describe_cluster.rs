//! DescribeCluster: this broker, as the cluster's only member and controller.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{str_bytes, Broker, Ctx, Reply, Versions};

pub const VERSIONS: Versions = Versions { min: 0, max: 1 };

pub fn handle(broker: &Broker, ctx: Ctx, _req: DescribeClusterRequest) -> Reply {
    let c = &broker.shard.config;
    let broker = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(c.node_id))
        .with_host(str_bytes(c.advertise_host.clone()))
        .with_port(i32::from(c.advertise_port));
    let resp = DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(super::metadata::cluster_id(c)))
        .with_controller_id(BrokerId(c.node_id))
        .with_brokers(vec![broker])
        .with_cluster_authorized_operations(i32::MIN);
    ctx.reply(&resp)
}
