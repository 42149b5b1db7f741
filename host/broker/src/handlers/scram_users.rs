//! DescribeUserScramCredentials and AlterUserScramCredentials: SCRAM users in the metadata
//! log. Clients send the salted password; the broker keeps only the derived keys.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
};
use strom_metadata::MetadataRecord;

use super::str_bytes;
use crate::broker::{Broker, RequestContext};
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};
use crate::security::scram::{ScramMechanism, MAX_ITERATIONS, MIN_ITERATIONS};

pub async fn describe(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let mut response = DescribeUserScramCredentialsResponse::default();
    if !broker.authorized(ctx, Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        response.error_message = Some(str_bytes("describing SCRAM users needs DESCRIBE on the cluster"));
        return response;
    }
    let image = broker.metadata.image();
    let mut by_user: BTreeMap<String, Vec<CredentialInfo>> = BTreeMap::new();
    for (user, mechanism, credential) in image.scram_credentials() {
        let Some(mechanism) = ScramMechanism::from_name(mechanism) else {
            continue;
        };
        let mut info = CredentialInfo::default();
        info.mechanism = mechanism.code();
        info.iterations = credential.iterations as i32;
        by_user.entry(user.to_string()).or_default().push(info);
    }
    let users: Vec<String> = match request.users {
        Some(users) if !users.is_empty() => users.into_iter().map(|u| u.name.to_string()).collect(),
        _ => by_user.keys().cloned().collect(),
    };
    let mut seen = Vec::new();
    for user in users {
        let mut result = DescribeUserScramCredentialsResult::default();
        result.user = str_bytes(user.clone());
        if seen.contains(&user) {
            result.error_code = ResponseError::DuplicateResource.code();
            result.error_message = Some(str_bytes(format!("user {user} is named more than once")));
        } else if let Some(infos) = by_user.get(&user) {
            result.credential_infos = infos.clone();
        } else {
            result.error_code = ResponseError::ResourceNotFound.code();
            result.error_message = Some(str_bytes(format!(
                "attempt to describe a user credential that does not exist: {user}"
            )));
        }
        seen.push(user);
        response.results.push(result);
    }
    response
}

pub async fn alter(
    broker: &Broker,
    ctx: &RequestContext,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let mut response = AlterUserScramCredentialsResponse::default();
    let authorized = broker.authorized(ctx, Operation::Alter, ResourceType::Cluster, CLUSTER_NAME);
    // Kafka refuses a user named twice in one request (any mix of deletions and upsertions).
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for name in request
        .deletions
        .iter()
        .map(|d| d.name.to_string())
        .chain(request.upsertions.iter().map(|u| u.name.to_string()))
    {
        *counts.entry(name).or_default() += 1;
    }
    // Refusals that apply to a deletion and an upsertion alike.
    let refuse = |user: &str| -> Option<(ResponseError, String)> {
        if !authorized {
            Some((
                ResponseError::ClusterAuthorizationFailed,
                "altering SCRAM users needs ALTER on the cluster".to_string(),
            ))
        } else if counts[user] > 1 {
            Some((
                ResponseError::DuplicateResource,
                format!("user {user} appears more than once in the request"),
            ))
        } else {
            None
        }
    };
    let mut results: BTreeMap<String, Option<(ResponseError, String)>> = BTreeMap::new();
    let committed = broker.metadata.submit_with(|image| {
        let mut records = Vec::new();
        for deletion in &request.deletions {
            let user = deletion.name.to_string();
            let outcome = if let Some(refusal) = refuse(&user) {
                Some(refusal)
            } else {
                match ScramMechanism::from_code(deletion.mechanism) {
                    None => Some((
                        ResponseError::UnsupportedSaslMechanism,
                        format!("unknown SCRAM mechanism {}", deletion.mechanism),
                    )),
                    Some(m) if image.scram_credential(&user, m.name()).is_none() => Some((
                        ResponseError::ResourceNotFound,
                        format!(
                            "attempt to delete a user credential that does not exist: {user} {}",
                            m.name()
                        ),
                    )),
                    Some(m) => {
                        records.push(MetadataRecord::UserScramCredentialDeleted {
                            user: user.clone(),
                            mechanism: m.name().to_string(),
                        });
                        None
                    }
                }
            };
            results.insert(user, outcome);
        }
        for upsertion in &request.upsertions {
            let user = upsertion.name.to_string();
            let outcome = if let Some(refusal) = refuse(&user) {
                Some(refusal)
            } else if user.is_empty() {
                Some((
                    ResponseError::UnacceptableCredential,
                    "username must not be empty".to_string(),
                ))
            } else if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&upsertion.iterations) {
                Some((
                    ResponseError::UnacceptableCredential,
                    format!(
                        "iterations {} is outside {MIN_ITERATIONS}..={MAX_ITERATIONS}",
                        upsertion.iterations
                    ),
                ))
            } else if upsertion.salt.is_empty() || upsertion.salted_password.is_empty() {
                Some((
                    ResponseError::UnacceptableCredential,
                    "salt and salted password must not be empty".to_string(),
                ))
            } else {
                match ScramMechanism::from_code(upsertion.mechanism) {
                    None => Some((
                        ResponseError::UnsupportedSaslMechanism,
                        format!("unknown SCRAM mechanism {}", upsertion.mechanism),
                    )),
                    Some(m) => {
                        records.push(MetadataRecord::UserScramCredentialUpserted {
                            user: user.clone(),
                            mechanism: m.name().to_string(),
                            credential: m.credential(
                                &upsertion.salt,
                                &upsertion.salted_password,
                                upsertion.iterations as u32,
                            ),
                        });
                        None
                    }
                }
            };
            results.insert(user, outcome);
        }
        Ok::<_, std::convert::Infallible>(records)
    });
    let write_error = committed.err().map(|e| e.to_string());
    for (user, outcome) in results {
        let mut result = AlterUserScramCredentialsResult::default();
        result.user = str_bytes(user);
        match (outcome, &write_error) {
            (Some((code, message)), _) => {
                result.error_code = code.code();
                result.error_message = Some(str_bytes(message));
            }
            (None, Some(e)) => {
                result.error_code = ResponseError::UnknownServerError.code();
                result.error_message = Some(str_bytes(format!("metadata write failed: {e}")));
            }
            (None, None) => {}
        }
        response.results.push(result);
    }
    response
}
