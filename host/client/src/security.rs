//! Client side of Kafka's security admin APIs: SCRAM users (AlterUserScramCredentials,
//! DescribeUserScramCredentials) and ACLs (CreateAcls, DescribeAcls, DeleteAcls).

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sha2::{Sha256, Sha512};

use crate::client::Client;
use crate::error;

/// Kafka's SCRAM mechanisms and their wire codes.
pub const SCRAM_MECHANISMS: &[(&str, i8)] = &[("SCRAM-SHA-256", 1), ("SCRAM-SHA-512", 2)];

/// One ACL entry with Kafka's numeric codes (see [`names`] for their spellings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

/// Kafka's names for ACL codes, as kafka-acls.sh prints them.
pub mod names {
    pub const RESOURCE_TYPES: &[(&str, i8)] = &[
        ("Any", 1),
        ("Topic", 2),
        ("Group", 3),
        ("Cluster", 4),
        ("TransactionalId", 5),
        ("DelegationToken", 6),
        ("User", 7),
    ];
    pub const PATTERN_TYPES: &[(&str, i8)] = &[("Any", 1), ("Match", 2), ("Literal", 3), ("Prefixed", 4)];
    pub const OPERATIONS: &[(&str, i8)] = &[
        ("Any", 1),
        ("All", 2),
        ("Read", 3),
        ("Write", 4),
        ("Create", 5),
        ("Delete", 6),
        ("Alter", 7),
        ("Describe", 8),
        ("ClusterAction", 9),
        ("DescribeConfigs", 10),
        ("AlterConfigs", 11),
        ("IdempotentWrite", 12),
        ("CreateTokens", 13),
        ("DescribeTokens", 14),
    ];
    pub const PERMISSIONS: &[(&str, i8)] = &[("Any", 1), ("Deny", 2), ("Allow", 3)];

    pub fn name(table: &[(&'static str, i8)], code: i8) -> String {
        table
            .iter()
            .find(|(_, c)| *c == code)
            .map(|(n, _)| n.to_string())
            .unwrap_or_else(|| format!("Unknown({code})"))
    }

    /// Case-insensitive, ignoring `_` and `-` (`describe-configs`, `DESCRIBE_CONFIGS`).
    pub fn code(table: &[(&'static str, i8)], name: &str) -> Option<i8> {
        let norm = |s: &str| s.replace(['_', '-'], "").to_ascii_lowercase();
        table.iter().find(|(n, _)| norm(n) == norm(name)).map(|(_, c)| *c)
    }
}

/// Sets the filter fields that DescribeAclsRequest and DeleteAclsFilter share (empty strings
/// are null: any).
macro_rules! with_acl_filter {
    ($wire:expr, $filter:expr) => {{
        let opt = |s: &str| (!s.is_empty()).then(|| StrBytes::from_string(s.to_string()));
        $wire
            .with_resource_type_filter($filter.resource_type)
            .with_resource_name_filter(opt(&$filter.resource_name))
            .with_pattern_type_filter($filter.pattern_type)
            .with_principal_filter(opt(&$filter.principal))
            .with_host_filter(opt(&$filter.host))
            .with_operation($filter.operation)
            .with_permission_type($filter.permission)
    }};
}

impl Client {
    /// Creates or replaces a user's SCRAM credential. The password is salted and iterated
    /// here; only the salted password travels, as with kafka-configs.sh.
    pub async fn upsert_scram_user(&self, user: &str, password: &str, mechanism: &str, iterations: i32) -> Result<()> {
        let code = scram_code(mechanism)?;
        let salt: [u8; 24] = rand::random();
        let salted = salted_password(mechanism, password.as_bytes(), &salt, iterations as u32);
        let request =
            AlterUserScramCredentialsRequest::default().with_upsertions(vec![ScramCredentialUpsertion::default()
                .with_name(StrBytes::from_string(user.to_string()))
                .with_mechanism(code)
                .with_iterations(iterations)
                .with_salt(Bytes::copy_from_slice(&salt))
                .with_salted_password(Bytes::from(salted))]);
        self.alter_scram(request, user).await
    }

    pub async fn delete_scram_user(&self, user: &str, mechanism: &str) -> Result<()> {
        let request =
            AlterUserScramCredentialsRequest::default().with_deletions(vec![ScramCredentialDeletion::default()
                .with_name(StrBytes::from_string(user.to_string()))
                .with_mechanism(scram_code(mechanism)?)]);
        self.alter_scram(request, user).await
    }

    async fn alter_scram(&self, request: AlterUserScramCredentialsRequest, user: &str) -> Result<()> {
        let conn = self.controller().await?;
        let version = conn.version::<AlterUserScramCredentialsRequest>()?;
        let response = conn.submit(&request, version).await?.wait().await?;
        for result in &response.results {
            error::check(result.error_code, result.error_message.as_ref()).with_context(|| format!("user {user}"))?;
        }
        Ok(())
    }

    /// Users with their SCRAM mechanisms and iteration counts, sorted by user.
    pub async fn describe_scram_users(&self) -> Result<Vec<(String, Vec<(String, i32)>)>> {
        let conn = self.controller().await?;
        let version = conn.version::<DescribeUserScramCredentialsRequest>()?;
        let request = DescribeUserScramCredentialsRequest::default().with_users(None::<Vec<UserName>>);
        let response = conn.submit(&request, version).await?.wait().await?;
        error::check(response.error_code, response.error_message.as_ref())?;
        let mut users = Vec::new();
        for result in response.results {
            error::check(result.error_code, result.error_message.as_ref())?;
            let mechanisms = result
                .credential_infos
                .iter()
                .map(|c| {
                    let name = SCRAM_MECHANISMS
                        .iter()
                        .find(|(_, code)| *code == c.mechanism)
                        .map(|(n, _)| n.to_string())
                        .unwrap_or_else(|| format!("Unknown({})", c.mechanism));
                    (name, c.iterations)
                })
                .collect();
            users.push((result.user.to_string(), mechanisms));
        }
        users.sort();
        Ok(users)
    }

    pub async fn create_acls(&self, acls: &[Acl]) -> Result<()> {
        let conn = self.controller().await?;
        let version = conn.version::<CreateAclsRequest>()?;
        let request = CreateAclsRequest::default().with_creations(
            acls.iter()
                .map(|a| {
                    AclCreation::default()
                        .with_resource_type(a.resource_type)
                        .with_resource_name(StrBytes::from_string(a.resource_name.clone()))
                        .with_resource_pattern_type(a.pattern_type)
                        .with_principal(StrBytes::from_string(a.principal.clone()))
                        .with_host(StrBytes::from_string(a.host.clone()))
                        .with_operation(a.operation)
                        .with_permission_type(a.permission)
                })
                .collect(),
        );
        let response = conn.submit(&request, version).await?.wait().await?;
        for result in &response.results {
            error::check(result.error_code, result.error_message.as_ref()).context("cannot create ACL")?;
        }
        Ok(())
    }

    /// ACLs matching the filter (an `Acl` whose codes may be Any and strings empty for any).
    pub async fn describe_acls(&self, filter: &Acl) -> Result<Vec<Acl>> {
        let conn = self.controller().await?;
        let version = conn.version::<DescribeAclsRequest>()?;
        let request = with_acl_filter!(DescribeAclsRequest::default(), filter);
        let response = conn.submit(&request, version).await?.wait().await?;
        error::check(response.error_code, response.error_message.as_ref()).context("cannot list ACLs")?;
        let mut acls = Vec::new();
        for resource in response.resources {
            for acl in resource.acls {
                acls.push(Acl {
                    resource_type: resource.resource_type,
                    resource_name: resource.resource_name.to_string(),
                    pattern_type: resource.pattern_type,
                    principal: acl.principal.to_string(),
                    host: acl.host.to_string(),
                    operation: acl.operation,
                    permission: acl.permission_type,
                });
            }
        }
        Ok(acls)
    }

    /// Deletes the ACLs matching the filter; returns them.
    pub async fn delete_acls(&self, filter: &Acl) -> Result<Vec<Acl>> {
        let conn = self.controller().await?;
        let version = conn.version::<DeleteAclsRequest>()?;
        let request =
            DeleteAclsRequest::default().with_filters(vec![with_acl_filter!(DeleteAclsFilter::default(), filter)]);
        let response = conn.submit(&request, version).await?.wait().await?;
        let mut deleted = Vec::new();
        for result in response.filter_results {
            error::check(result.error_code, result.error_message.as_ref()).context("cannot delete ACLs")?;
            for m in result.matching_acls {
                error::check(m.error_code, m.error_message.as_ref()).context("cannot delete ACL")?;
                deleted.push(Acl {
                    resource_type: m.resource_type,
                    resource_name: m.resource_name.to_string(),
                    pattern_type: m.pattern_type,
                    principal: m.principal.to_string(),
                    host: m.host.to_string(),
                    operation: m.operation,
                    permission: m.permission_type,
                });
            }
        }
        Ok(deleted)
    }
}

fn scram_code(mechanism: &str) -> Result<i8> {
    match SCRAM_MECHANISMS.iter().find(|(n, _)| n.eq_ignore_ascii_case(mechanism)) {
        Some((_, code)) => Ok(*code),
        None => bail!("unknown SCRAM mechanism {mechanism:?} (SCRAM-SHA-256 or SCRAM-SHA-512)"),
    }
}

/// Hi(password, salt, iterations) of RFC 5802 for the mechanism's hash.
fn salted_password(mechanism: &str, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    if mechanism.eq_ignore_ascii_case("SCRAM-SHA-512") {
        pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec()
    } else {
        pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec()
    }
}
