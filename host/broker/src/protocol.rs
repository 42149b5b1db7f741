//! Thin glue over the `kafka-protocol` crate: which APIs and versions Strom serves, request
//! header parsing, and response framing. Knows nothing of sockets.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message};

/// The APIs Strom implements, with the versions it serves. The minimum is what Kafka 4.x
/// still accepts (the `kafka-protocol` crate's floor); the maximum is what is implemented.
pub fn supported_versions() -> Vec<(ApiKey, i16, i16)> {
    fn range<M: Message>(key: ApiKey, max: i16) -> (ApiKey, i16, i16) {
        (key, M::VERSIONS.min, max.min(M::VERSIONS.max))
    }
    vec![
        range::<ProduceRequest>(ApiKey::Produce, 11),
        range::<FetchRequest>(ApiKey::Fetch, 16),
        range::<ListOffsetsRequest>(ApiKey::ListOffsets, 8),
        range::<MetadataRequest>(ApiKey::Metadata, 12),
        range::<ApiVersionsRequest>(ApiKey::ApiVersions, 3),
        range::<CreateTopicsRequest>(ApiKey::CreateTopics, 7),
        range::<DeleteTopicsRequest>(ApiKey::DeleteTopics, 6),
        range::<DeleteRecordsRequest>(ApiKey::DeleteRecords, 2),
        range::<InitProducerIdRequest>(ApiKey::InitProducerId, 4),
        range::<DescribeConfigsRequest>(ApiKey::DescribeConfigs, 4),
        range::<AlterConfigsRequest>(ApiKey::AlterConfigs, 2),
        range::<CreatePartitionsRequest>(ApiKey::CreatePartitions, 3),
        range::<IncrementalAlterConfigsRequest>(ApiKey::IncrementalAlterConfigs, 1),
        range::<DescribeClusterRequest>(ApiKey::DescribeCluster, 1),
        range::<FindCoordinatorRequest>(ApiKey::FindCoordinator, 5),
        range::<JoinGroupRequest>(ApiKey::JoinGroup, 9),
        range::<SyncGroupRequest>(ApiKey::SyncGroup, 5),
        range::<HeartbeatRequest>(ApiKey::Heartbeat, 4),
        range::<LeaveGroupRequest>(ApiKey::LeaveGroup, 5),
        range::<DescribeGroupsRequest>(ApiKey::DescribeGroups, 5),
        range::<ListGroupsRequest>(ApiKey::ListGroups, 5),
        range::<DeleteGroupsRequest>(ApiKey::DeleteGroups, 2),
        range::<OffsetCommitRequest>(ApiKey::OffsetCommit, 9),
        range::<OffsetFetchRequest>(ApiKey::OffsetFetch, 9),
        range::<OffsetDeleteRequest>(ApiKey::OffsetDelete, 0),
        range::<SaslHandshakeRequest>(ApiKey::SaslHandshake, 1),
        range::<SaslAuthenticateRequest>(ApiKey::SaslAuthenticate, 2),
        range::<CreateAclsRequest>(ApiKey::CreateAcls, 3),
        range::<DescribeAclsRequest>(ApiKey::DescribeAcls, 3),
        range::<DeleteAclsRequest>(ApiKey::DeleteAcls, 3),
        range::<DescribeUserScramCredentialsRequest>(ApiKey::DescribeUserScramCredentials, 0),
        range::<AlterUserScramCredentialsRequest>(ApiKey::AlterUserScramCredentials, 0),
        range::<ConsumerGroupHeartbeatRequest>(ApiKey::ConsumerGroupHeartbeat, 1),
        range::<ConsumerGroupDescribeRequest>(ApiKey::ConsumerGroupDescribe, 1),
    ]
}

pub fn version_range(key: ApiKey) -> Option<(i16, i16)> {
    supported_versions()
        .into_iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (min, max))
}

/// The parsed header of a request frame and its undecoded body.
#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    pub client_id: String,
    pub body: Bytes,
}

/// Why a frame cannot be served. Every variant closes the connection except
/// `UnsupportedApiVersions`, which Kafka answers so the client can downgrade.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes is too short for a request header")]
    TooShort(usize),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("{key:?} v{version} is not supported")]
    UnsupportedVersion { key: ApiKey, version: i16 },
    #[error("ApiVersions v{version} is not supported")]
    UnsupportedApiVersions { version: i16, correlation_id: i32 },
    #[error("acks=0 produce failed: {0}")]
    AcksZeroFailure(String),
    #[error("malformed {what}: {detail}")]
    Malformed { what: String, detail: String },
}

/// Parses the request header of one frame (size prefix already removed).
pub fn parse_request(mut frame: Bytes) -> Result<Request, FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::TooShort(frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api_key = ApiKey::try_from(raw_key).map_err(|_| FrameError::UnknownApiKey(raw_key))?;
    let Some((min, max)) = version_range(api_key) else {
        return Err(FrameError::UnknownApiKey(raw_key));
    };
    if version < min || version > max {
        if api_key == ApiKey::ApiVersions {
            return Err(FrameError::UnsupportedApiVersions {
                version,
                correlation_id,
            });
        }
        return Err(FrameError::UnsupportedVersion { key: api_key, version });
    }
    let header = RequestHeader::decode(&mut frame, api_key.request_header_version(version)).map_err(|e| {
        FrameError::Malformed {
            what: format!("{api_key:?} v{version} request header"),
            detail: e.to_string(),
        }
    })?;
    Ok(Request {
        api_key,
        version,
        correlation_id,
        client_id: header.client_id.map(|c| c.to_string()).unwrap_or_default(),
        body: frame,
    })
}

/// Decodes a request body. Bytes left over after the body are ignored, as Kafka does:
/// librdkafka 2.16 sends three extra bytes after a Metadata v12 request for all topics.
pub fn decode_body<T: Decodable>(request: &Request) -> Result<T, FrameError> {
    let mut body = request.body.clone();
    let decoded = T::decode(&mut body, request.version).map_err(|e| FrameError::Malformed {
        what: format!("{:?} v{} request", request.api_key, request.version),
        detail: format!("{e:#}"),
    })?;
    if body.has_remaining() {
        tracing::trace!(api = ?request.api_key, version = request.version, extra = body.remaining(), "ignoring bytes after the request body");
    }
    Ok(decoded)
}

/// Encodes a response with its size prefix and header. The header version comes from the
/// response type (ApiVersions always uses header v0, even when flexible).
pub fn encode_response<T: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    response: &T,
) -> anyhow::Result<Bytes> {
    let header_version = T::header_version(version);
    let body_size = response.compute_size(version)?;
    let header_size = if header_version >= 1 { 5 } else { 4 };
    let mut buf = BytesMut::with_capacity(4 + header_size + body_size);
    buf.put_i32((header_size + body_size) as i32);
    buf.put_i32(correlation_id);
    if header_version >= 1 {
        buf.put_u8(0); // no tagged fields
    }
    response.encode(&mut buf, version)?;
    Ok(buf.freeze())
}
