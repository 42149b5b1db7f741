//! ApiVersions: advertises exactly the APIs and versions Strom implements.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use crate::broker::{Broker, RequestContext};
use crate::protocol;

pub async fn handle(_broker: &Broker, _ctx: &RequestContext, _request: ApiVersionsRequest) -> ApiVersionsResponse {
    response(0)
}

/// The response body, also sent (encoded as v0) to a client that asked with a version we
/// do not support, so it can retry with one we do.
pub fn response(error_code: i16) -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.error_code = error_code;
    response.api_keys = protocol::supported_versions()
        .into_iter()
        .map(|(key, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = key as i16;
            v.min_version = min;
            v.max_version = max;
            v
        })
        .collect();
    // No tagged fields (features) in the response: librdkafka 2.0 mis-parses tagged
    // fields it did not ask for, and Strom has no feature flags to report yet.
    response.finalized_features_epoch = -1;
    response.supported_features.clear();
    response.finalized_features.clear();
    response.zk_migration_ready = false;
    response
}
