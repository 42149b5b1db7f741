//! CreateAcls, DescribeAcls and DeleteAcls: ACL entries live in the metadata log, so every
//! broker of a cluster enforces the same ones.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse,
};
use strom_metadata::{AclEntry, MetadataRecord};

use super::str_bytes;
use crate::broker::{Broker, RequestContext};
use crate::security::acl::*;

/// The filter a DescribeAcls request or a DeleteAcls filter carries (same field names).
macro_rules! acl_filter {
    ($wire:expr, $version:expr) => {
        AclFilter {
            resource_type: $wire.resource_type_filter,
            resource_name: $wire.resource_name_filter.map(|s| s.to_string()),
            pattern_type: pattern_type($version, $wire.pattern_type_filter),
            principal: $wire.principal_filter.map(|s| s.to_string()),
            host: $wire.host_filter.map(|s| s.to_string()),
            operation: $wire.operation,
            permission: $wire.permission_type,
        }
    };
}

/// v0 of the ACL APIs has no pattern type: every ACL is literal.
fn pattern_type(version: i16, sent: i8) -> i8 {
    if version == 0 {
        PATTERN_LITERAL
    } else {
        sent
    }
}

const SECURITY_DISABLED: &str = "No authorizer is configured on the broker (authorizer.class.name is empty)";

pub async fn create(broker: &Broker, ctx: &RequestContext, request: CreateAclsRequest) -> CreateAclsResponse {
    let mut response = CreateAclsResponse::default();
    let refusal = refusal(broker, ctx, Operation::Alter);
    let mut valid = Vec::new();
    for creation in request.creations {
        let mut result = AclCreationResult::default();
        let entry = AclEntry {
            resource_type: creation.resource_type,
            resource_name: creation.resource_name.to_string(),
            pattern_type: pattern_type(ctx.version, creation.resource_pattern_type),
            principal: creation.principal.to_string(),
            host: creation.host.to_string(),
            operation: creation.operation,
            permission: creation.permission_type,
        };
        if let Some((code, message)) = &refusal {
            result.error_code = code.code();
            result.error_message = Some(str_bytes(*message));
        } else if let Err(message) = validate_new(&entry) {
            result.error_code = ResponseError::InvalidRequest.code();
            result.error_message = Some(str_bytes(message));
        } else {
            valid.push(entry);
        }
        response.results.push(result);
    }
    if !valid.is_empty() {
        let records = valid
            .into_iter()
            .map(|acl| MetadataRecord::AclCreated { acl })
            .collect();
        if let Err(e) = broker.metadata.submit(records) {
            tracing::error!(error = %e, "CreateAcls: metadata write failed");
            for result in response.results.iter_mut().filter(|r| r.error_code == 0) {
                result.error_code = ResponseError::UnknownServerError.code();
                result.error_message = Some(str_bytes(format!("metadata write failed: {e}")));
            }
        }
    }
    response
}

pub async fn describe(broker: &Broker, ctx: &RequestContext, request: DescribeAclsRequest) -> DescribeAclsResponse {
    let mut response = DescribeAclsResponse::default();
    if let Some((code, message)) = refusal(broker, ctx, Operation::Describe) {
        response.error_code = code.code();
        response.error_message = Some(str_bytes(message));
        return response;
    }
    let filter = acl_filter!(request, ctx.version);
    let image = broker.metadata.image();
    for acl in image.acls().filter(|acl| filter.matches(acl)) {
        let same_resource = |r: &DescribeAclsResource| {
            r.resource_type == acl.resource_type
                && *r.resource_name == *acl.resource_name
                && r.pattern_type == acl.pattern_type
        };
        if !response.resources.last().is_some_and(same_resource) {
            let mut resource = DescribeAclsResource::default();
            resource.resource_type = acl.resource_type;
            resource.resource_name = str_bytes(acl.resource_name.clone());
            resource.pattern_type = acl.pattern_type;
            response.resources.push(resource);
        }
        let mut description = AclDescription::default();
        description.principal = str_bytes(acl.principal.clone());
        description.host = str_bytes(acl.host.clone());
        description.operation = acl.operation;
        description.permission_type = acl.permission;
        response
            .resources
            .last_mut()
            .expect("pushed above")
            .acls
            .push(description);
    }
    response
}

pub async fn delete(broker: &Broker, ctx: &RequestContext, request: DeleteAclsRequest) -> DeleteAclsResponse {
    let mut response = DeleteAclsResponse::default();
    let refusal = refusal(broker, ctx, Operation::Alter);
    let filters: Vec<AclFilter> = request
        .filters
        .into_iter()
        .map(|f| acl_filter!(f, ctx.version))
        .collect();
    if let Some((code, message)) = refusal {
        for _ in &filters {
            let mut result = DeleteAclsFilterResult::default();
            result.error_code = code.code();
            result.error_message = Some(str_bytes(message));
            response.filter_results.push(result);
        }
        return response;
    }
    let mut matched: Vec<Vec<AclEntry>> = Vec::new();
    let committed = broker.metadata.submit_with(|image| {
        let mut records = Vec::new();
        for filter in &filters {
            let hits: Vec<AclEntry> = image.acls().filter(|acl| filter.matches(acl)).cloned().collect();
            for acl in &hits {
                let record = MetadataRecord::AclDeleted { acl: acl.clone() };
                if !records.contains(&record) {
                    records.push(record);
                }
            }
            matched.push(hits);
        }
        Ok::<_, std::convert::Infallible>(records)
    });
    let write_error = committed.err().map(|e| e.to_string());
    for hits in matched {
        let mut result = DeleteAclsFilterResult::default();
        for acl in hits {
            let mut m = DeleteAclsMatchingAcl::default();
            if let Some(e) = &write_error {
                m.error_code = ResponseError::UnknownServerError.code();
                m.error_message = Some(str_bytes(format!("metadata write failed: {e}")));
            }
            m.resource_type = acl.resource_type;
            m.resource_name = str_bytes(acl.resource_name);
            m.pattern_type = acl.pattern_type;
            m.principal = str_bytes(acl.principal);
            m.host = str_bytes(acl.host);
            m.operation = acl.operation;
            m.permission_type = acl.permission;
            result.matching_acls.push(m);
        }
        response.filter_results.push(result);
    }
    response
}

/// Why an ACL request cannot be served at all: no authorizer, or the caller may not.
fn refusal(broker: &Broker, ctx: &RequestContext, needed: Operation) -> Option<(ResponseError, &'static str)> {
    if !broker.authorizer.enabled() {
        return Some((ResponseError::SecurityDisabled, SECURITY_DISABLED));
    }
    if !broker.authorized(ctx, needed, ResourceType::Cluster, CLUSTER_NAME) {
        return Some((
            ResponseError::ClusterAuthorizationFailed,
            "the principal may not manage ACLs (needs ALTER or DESCRIBE on the cluster)",
        ));
    }
    None
}

/// Kafka's checks of a new ACL binding.
fn validate_new(acl: &AclEntry) -> Result<(), String> {
    let resource = ResourceType::from_code(acl.resource_type)
        .filter(|r| *r != ResourceType::Any)
        .ok_or_else(|| format!("invalid resource type {}", acl.resource_type))?;
    if acl.pattern_type != PATTERN_LITERAL && acl.pattern_type != PATTERN_PREFIXED {
        return Err(format!(
            "pattern type {} is not LITERAL (3) or PREFIXED (4)",
            acl.pattern_type
        ));
    }
    if acl.resource_name.is_empty() {
        return Err("resource name is empty".into());
    }
    if resource == ResourceType::Cluster && acl.resource_name != CLUSTER_NAME {
        return Err(format!("the cluster resource is named {CLUSTER_NAME}"));
    }
    Operation::from_code(acl.operation)
        .filter(|o| *o != Operation::Any)
        .ok_or_else(|| format!("invalid operation {}", acl.operation))?;
    if acl.permission != PERMISSION_ALLOW && acl.permission != PERMISSION_DENY {
        return Err(format!(
            "permission type {} is not ALLOW (3) or DENY (2)",
            acl.permission
        ));
    }
    match acl.principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
        _ => {
            return Err(format!(
                "principal {:?} is not of the form Type:name (e.g. User:alice)",
                acl.principal
            ))
        }
    }
    if acl.host.is_empty() {
        return Err("host is empty (use * for any host)".into());
    }
    Ok(())
}
