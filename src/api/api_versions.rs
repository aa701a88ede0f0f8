//! ApiVersions: the versions of every API we serve, from the handlers' own ranges.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use super::{Ctx, Reply, Versions, SUPPORTED};

pub const VERSIONS: Versions = Versions { min: 0, max: 4 };

fn ranges() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|(key, v)| {
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(v.min)
                .with_max_version(v.max)
        })
        .collect()
}

pub fn handle(ctx: Ctx, _req: ApiVersionsRequest) -> Reply {
    ctx.reply(&ApiVersionsResponse::default().with_api_keys(ranges()))
}

/// The v0 answer to an ApiVersions request of a version we do not know (KIP-511).
pub fn unsupported() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(ranges())
}
