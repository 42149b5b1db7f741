//! Offset retention as Kafka has it since KIP-211 (`offsets.retention.minutes`): the
//! committed offsets of a group expire once the group has been empty for the retention
//! period, counted from when it became empty, not from each commit. Offsets of a group
//! without members or group state (a "simple" consumer's) expire by their own commit time;
//! a consumer group with members keeps the offsets of the topics it subscribes to and lets
//! the others expire by commit time (KIP-496); other groups with members keep everything.
//! Pure: the caller passes the clock and writes the tombstones.

use std::collections::HashSet;

use super::offsets::Committed;

/// Which of a group's offsets may expire, and counted from when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiry {
    /// The group has no members: every offset, counted from when the group became empty
    /// (or, if that is not known, from its commit).
    Empty { since_ms: Option<i64> },
    /// A consumer group with members: offsets of topics it does not subscribe to, counted
    /// from their commit.
    Unsubscribed(HashSet<String>),
    /// A group with members that does not use the consumer protocol.
    Never,
}

/// The (topic, partition) of every offset past retention.
pub fn expired(
    rule: &Expiry,
    offsets: &[(String, i32, Committed)],
    now_ms: i64,
    retention_ms: i64,
) -> Vec<(String, i32)> {
    offsets
        .iter()
        .filter(|(topic, _, committed)| {
            let base = match rule {
                Expiry::Never => return false,
                Expiry::Unsubscribed(subscribed) if subscribed.contains(topic) => return false,
                Expiry::Unsubscribed(_) => committed.commit_timestamp,
                Expiry::Empty { since_ms } => since_ms.unwrap_or(committed.commit_timestamp),
            };
            now_ms - base >= retention_ms
        })
        .map(|(topic, partition, _)| (topic.clone(), *partition))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(topic: &str, partition: i32, commit_timestamp: i64) -> (String, i32, Committed) {
        (
            topic.to_string(),
            partition,
            Committed {
                offset: 1,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp,
            },
        )
    }

    #[test]
    fn an_empty_group_expires_all_at_once_counted_from_when_it_became_empty() {
        let offsets = [at("a", 0, 100), at("a", 1, 900)];
        let empty = Expiry::Empty { since_ms: Some(1_000) };
        assert_eq!(expired(&empty, &offsets, 1_999, 1_000), vec![]);
        assert_eq!(expired(&empty, &offsets, 2_000, 1_000).len(), 2);
        // Without a known time, each offset counts from its commit.
        let simple = Expiry::Empty { since_ms: None };
        assert_eq!(expired(&simple, &offsets, 1_100, 1_000), vec![("a".to_string(), 0)]);
    }

    #[test]
    fn a_group_with_members_keeps_what_it_subscribes_to() {
        let offsets = [at("mine", 0, 0), at("old", 0, 0)];
        let rule = Expiry::Unsubscribed(HashSet::from(["mine".to_string()]));
        assert_eq!(expired(&rule, &offsets, 10_000, 1_000), vec![("old".to_string(), 0)]);
        assert_eq!(expired(&Expiry::Never, &offsets, 10_000, 1_000), vec![]);
    }
}
