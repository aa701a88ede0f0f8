//! DeleteTopics: by name (or by id from v6), applied on the control shard; each owning shard
//! closes the topic's partitions and removes their directories.

use std::rc::Rc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::ResponseError;

use super::{errors, str_bytes, topic_name, Broker, Ctx, Reply, Versions};
use crate::catalog::change::{self, Change};

pub const VERSIONS: Versions = Versions { min: 1, max: 6 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: DeleteTopicsRequest) -> Reply {
    let catalog = broker.catalog.get();
    // v0-5 name topics in `topic_names`; v6 in `topics`, by name or id.
    let mut wanted: Vec<(Option<String>, uuid::Uuid)> = req
        .topic_names
        .iter()
        .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
        .collect();
    for t in &req.topics {
        let name = match &t.name {
            Some(n) => Some(n.0.to_string()),
            None => catalog.topic_by_id(t.topic_id).map(|(n, _)| n.to_string()),
        };
        wanted.push((name, t.topic_id));
    }
    let names: Vec<String> = wanted.iter().filter_map(|(n, _)| n.clone()).collect();
    let outcome = if names.is_empty() {
        Vec::new()
    } else {
        change::request(&broker.shard, Change::DeleteTopics { names })
            .await
            .unwrap_or_default()
    };
    let responses = wanted
        .into_iter()
        .map(|(name, id)| {
            let mut r = DeletableTopicResult::default().with_name(name.as_deref().map(topic_name));
            if ctx.version >= 6 {
                r.topic_id = catalog
                    .topic(name.as_deref().unwrap_or(""))
                    .map_or(id, |t| t.id);
            }
            let with_message = |r: DeletableTopicResult, code: i16, msg: String| {
                let r = r.with_error_code(code);
                if ctx.version >= 5 {
                    r.with_error_message(Some(str_bytes(msg)))
                } else {
                    r
                }
            };
            let Some(name) = name else {
                return with_message(
                    r,
                    ResponseError::UnknownTopicId.code(),
                    "unknown topic id".into(),
                );
            };
            match outcome
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, r)| r.clone())
            {
                Some(Ok(())) => r,
                Some(Err(e)) => with_message(r, errors::change(&e).code(), e.to_string()),
                None => r.with_error_code(ResponseError::UnknownServerError.code()),
            }
        })
        .collect();
    ctx.reply(&DeleteTopicsResponse::default().with_responses(responses))
}
