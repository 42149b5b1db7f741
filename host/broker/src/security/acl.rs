//! Kafka's authorization model: ACL entries (principal, host, operation, permission on a
//! resource named literally or by prefix), super users, and the rules for which granted
//! operation implies which other one.

use strom_metadata::{AclEntry, MetadataImage};

use crate::config::{settings::AUTHORIZER_NAMES, BrokerConfig};

/// Kafka's resource type codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ResourceType {
    Any = 1,
    Topic = 2,
    Group = 3,
    Cluster = 4,
    TransactionalId = 5,
    DelegationToken = 6,
    User = 7,
}

/// Kafka's operation codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum Operation {
    Any = 1,
    All = 2,
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
    CreateTokens = 13,
    DescribeTokens = 14,
}

pub const PATTERN_ANY: i8 = 1;
pub const PATTERN_MATCH: i8 = 2;
pub const PATTERN_LITERAL: i8 = 3;
pub const PATTERN_PREFIXED: i8 = 4;
pub const PERMISSION_ANY: i8 = 1;
pub const PERMISSION_DENY: i8 = 2;
pub const PERMISSION_ALLOW: i8 = 3;

/// The literal resource name that matches every name.
pub const WILDCARD: &str = "*";
/// The cluster resource's only name.
pub const CLUSTER_NAME: &str = "kafka-cluster";

impl ResourceType {
    pub fn from_code(code: i8) -> Option<ResourceType> {
        use ResourceType::*;
        [Any, Topic, Group, Cluster, TransactionalId, DelegationToken, User]
            .into_iter()
            .find(|r| *r as i8 == code)
    }
}

impl Operation {
    pub fn from_code(code: i8) -> Option<Operation> {
        Operation::ALL_OPERATIONS.into_iter().find(|o| *o as i8 == code)
    }

    const ALL_OPERATIONS: [Operation; 14] = [
        Operation::Any,
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
        Operation::CreateTokens,
        Operation::DescribeTokens,
    ];

    /// Operations whose grant also grants this one (Kafka: READ, WRITE, DELETE and ALTER
    /// imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS).
    fn implied_by(self) -> &'static [Operation] {
        match self {
            Operation::Describe => &[
                Operation::Describe,
                Operation::Read,
                Operation::Write,
                Operation::Delete,
                Operation::Alter,
            ],
            Operation::DescribeConfigs => &[Operation::DescribeConfigs, Operation::AlterConfigs],
            _ => &[],
        }
    }
}

/// Decides whether a principal may perform an operation on a resource.
#[derive(Debug, Clone)]
pub struct Authorizer {
    enabled: bool,
    super_users: Vec<String>,
    allow_if_no_acl: bool,
}

impl Authorizer {
    pub fn new(config: &BrokerConfig) -> Authorizer {
        Authorizer {
            enabled: AUTHORIZER_NAMES.contains(&config.get("authorizer.class.name")),
            super_users: config
                .get("super.users")
                .split(';')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            allow_if_no_acl: config.bool("allow.everyone.if.no.acl.found"),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn authorize(
        &self,
        image: &MetadataImage,
        principal: &str,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if !self.enabled || self.super_users.iter().any(|s| s == principal) {
            return true;
        }
        let mut matching = image
            .acls()
            .filter(|acl| acl.resource_type == resource_type as i8 && resource_matches(acl, name))
            .peekable();
        if matching.peek().is_none() {
            return self.allow_if_no_acl;
        }
        let applies = |acl: &AclEntry| {
            (acl.principal == principal || acl.principal == "User:*") && (acl.host == "*" || acl.host == host)
        };
        let mut allowed = false;
        for acl in matching.filter(|acl| applies(acl)) {
            let op = acl.operation;
            if acl.permission == PERMISSION_DENY && (op == operation as i8 || op == Operation::All as i8) {
                return false;
            }
            if acl.permission == PERMISSION_ALLOW
                && (op == operation as i8
                    || op == Operation::All as i8
                    || operation.implied_by().iter().any(|o| *o as i8 == op))
            {
                allowed = true;
            }
        }
        allowed
    }
}

fn resource_matches(acl: &AclEntry, name: &str) -> bool {
    match acl.pattern_type {
        PATTERN_LITERAL => acl.resource_name == name || acl.resource_name == WILDCARD,
        PATTERN_PREFIXED => name.starts_with(&acl.resource_name),
        _ => false,
    }
}

/// A filter over ACL entries as DescribeAcls and DeleteAcls send it.
#[derive(Debug, Clone)]
pub struct AclFilter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

impl AclFilter {
    pub fn matches(&self, acl: &AclEntry) -> bool {
        let type_ok = self.resource_type == ResourceType::Any as i8 || self.resource_type == acl.resource_type;
        let name_ok = match (&self.resource_name, self.pattern_type) {
            (None, _) => {
                self.pattern_type == PATTERN_ANY
                    || self.pattern_type == PATTERN_MATCH
                    || self.pattern_type == acl.pattern_type
            }
            (Some(name), PATTERN_MATCH) => resource_matches(acl, name),
            (Some(name), PATTERN_ANY) => &acl.resource_name == name,
            (Some(name), pattern) => pattern == acl.pattern_type && &acl.resource_name == name,
        };
        let principal_ok = self.principal.as_ref().is_none_or(|p| p == &acl.principal);
        let host_ok = self.host.as_ref().is_none_or(|h| h == &acl.host);
        let op_ok = self.operation == Operation::Any as i8 || self.operation == acl.operation;
        let perm_ok = self.permission == PERMISSION_ANY || self.permission == acl.permission;
        type_ok && name_ok && principal_ok && host_ok && op_ok && perm_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_metadata::MetadataRecord;

    fn acl(resource: &str, pattern: i8, principal: &str, op: Operation, permission: i8) -> AclEntry {
        AclEntry {
            resource_type: ResourceType::Topic as i8,
            resource_name: resource.into(),
            pattern_type: pattern,
            principal: principal.into(),
            host: "*".into(),
            operation: op as i8,
            permission,
        }
    }

    fn image(acls: &[AclEntry]) -> MetadataImage {
        let mut image = MetadataImage::default();
        for a in acls {
            image.apply(&MetadataRecord::AclCreated { acl: a.clone() });
        }
        image
    }

    fn authorizer(allow_if_no_acl: bool) -> Authorizer {
        Authorizer {
            enabled: true,
            super_users: vec!["User:admin".into()],
            allow_if_no_acl,
        }
    }

    #[test]
    fn kafka_rules() {
        let image = image(&[
            acl(
                "orders",
                PATTERN_LITERAL,
                "User:alice",
                Operation::Read,
                PERMISSION_ALLOW,
            ),
            acl("pay-", PATTERN_PREFIXED, "User:*", Operation::Write, PERMISSION_ALLOW),
            acl(
                "pay-secret",
                PATTERN_LITERAL,
                "User:bob",
                Operation::All,
                PERMISSION_DENY,
            ),
        ]);
        let a = authorizer(false);
        let check = |p: &str, op, name: &str| a.authorize(&image, p, "10.0.0.1", op, ResourceType::Topic, name);
        assert!(check("User:alice", Operation::Read, "orders"));
        assert!(
            check("User:alice", Operation::Describe, "orders"),
            "READ implies DESCRIBE"
        );
        assert!(!check("User:alice", Operation::Write, "orders"));
        assert!(!check("User:bob", Operation::Read, "orders"));
        assert!(
            check("User:bob", Operation::Write, "pay-in"),
            "prefixed wildcard principal"
        );
        assert!(!check("User:bob", Operation::Write, "pay-secret"), "DENY wins");
        assert!(check("User:admin", Operation::Delete, "orders"), "super user");
        assert!(!check("User:alice", Operation::Read, "unlisted"));
        assert!(authorizer(true).authorize(&image, "User:x", "h", Operation::Read, ResourceType::Topic, "unlisted"));
    }
}
