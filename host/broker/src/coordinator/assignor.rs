//! Server-side partition assignors of the consumer group protocol (KIP-848), chosen by the
//! member's `server_assignor` among `group.consumer.assignors`:
//!
//! - `uniform` (the default): every member gets as many partitions as the others, give or
//!   take one among members with the same subscriptions, and keeps the partitions of its
//!   previous target assignment wherever that balance allows (sticky).
//! - `range`: per topic, the members subscribed to it (ordered by member id) get contiguous
//!   ranges of partitions, the first ones one more when the count does not divide evenly;
//!   co-partitioned topics thus line up.
//!
//! Pure functions of the members, their subscriptions and the partition counts.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use uuid::Uuid;

/// Partitions per topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

pub const UNIFORM: &str = "uniform";
pub const RANGE: &str = "range";
/// Kafka's class names of its assignors, accepted in `group.consumer.assignors`.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    match name.trim() {
        "uniform" | "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => Some(UNIFORM),
        "range" | "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => Some(RANGE),
        _ => None,
    }
}

/// One member as the assignor sees it.
pub struct MemberSpec<'a> {
    pub id: &'a str,
    /// Ids of the existing topics the member subscribes to.
    pub topics: BTreeSet<Uuid>,
    /// The member's previous target assignment (for stickiness).
    pub previous: Option<&'a Assignment>,
}

/// Computes the target assignment of every member. `topics` holds the partition count of
/// every subscribed topic that exists; a member's assignment only names those.
pub fn assign(assignor: &str, members: &[MemberSpec], topics: &BTreeMap<Uuid, u32>) -> HashMap<String, Assignment> {
    let mut order: Vec<&MemberSpec> = members.iter().collect();
    order.sort_by(|a, b| a.id.cmp(b.id));
    let result = match assignor {
        RANGE => range(&order, topics),
        _ => uniform(&order, topics),
    };
    order.iter().zip(result).map(|(m, a)| (m.id.to_string(), a)).collect()
}

fn range(members: &[&MemberSpec], topics: &BTreeMap<Uuid, u32>) -> Vec<Assignment> {
    let mut out = vec![Assignment::new(); members.len()];
    for (topic, &count) in topics {
        let subscribers: Vec<usize> = (0..members.len())
            .filter(|&i| members[i].topics.contains(topic))
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        let n = subscribers.len() as u32;
        let (each, extra) = (count / n, count % n);
        for (rank, &i) in subscribers.iter().enumerate() {
            let rank = rank as u32;
            let start = rank * each + rank.min(extra);
            let len = each + u32::from(rank < extra);
            if len > 0 {
                out[i].insert(*topic, (start as i32..(start + len) as i32).collect());
            }
        }
    }
    out
}

fn uniform(members: &[&MemberSpec], topics: &BTreeMap<Uuid, u32>) -> Vec<Assignment> {
    let n = members.len();
    let mut owner: BTreeMap<(Uuid, i32), usize> = BTreeMap::new();
    let mut load = vec![0usize; n];
    let eligible = |i: usize, topic: &Uuid| members[i].topics.contains(topic);

    // 1. Every member keeps what it had, up to its fair share of what it can be given.
    for (i, member) in members.iter().enumerate() {
        let reachable: u32 = member.topics.iter().filter_map(|t| topics.get(t)).sum();
        let sharing = (0..n)
            .filter(|&j| members[j].topics.iter().any(|t| member.topics.contains(t)))
            .count()
            .max(1);
        let cap = (reachable as usize).div_ceil(sharing);
        let Some(previous) = member.previous else { continue };
        for (topic, partitions) in previous {
            let Some(&count) = topics.get(topic) else { continue };
            if !eligible(i, topic) {
                continue;
            }
            for &p in partitions {
                if load[i] >= cap {
                    break;
                }
                if p >= 0 && (p as u32) < count && !owner.contains_key(&(*topic, p)) {
                    owner.insert((*topic, p), i);
                    load[i] += 1;
                }
            }
        }
    }

    // 2. Partitions nobody kept go to the least loaded member that subscribes to them.
    for (topic, &count) in topics {
        for p in 0..count as i32 {
            if owner.contains_key(&(*topic, p)) {
                continue;
            }
            if let Some(i) = (0..n).filter(|&i| eligible(i, topic)).min_by_key(|&i| (load[i], i)) {
                owner.insert((*topic, p), i);
                load[i] += 1;
            }
        }
    }

    // 3. Move partitions from a member that has two or more than another member that could
    //    take them, until no such pair is left. Every move lowers the sum of squared loads,
    //    so this ends; the bound is a safeguard.
    let mut moves_left = owner.len() * n.max(1);
    'balance: while moves_left > 0 {
        let mut by_load: Vec<usize> = (0..n).collect();
        by_load.sort_by_key(|&i| (std::cmp::Reverse(load[i]), i));
        for &from in &by_load {
            let mine: Vec<(Uuid, i32)> = owner
                .iter()
                .filter(|(_, &o)| o == from)
                .map(|(k, _)| *k)
                .rev()
                .collect();
            for (topic, p) in mine {
                let to = (0..n)
                    .filter(|&j| j != from && eligible(j, &topic))
                    .min_by_key(|&j| (load[j], j));
                if let Some(to) = to {
                    if load[from] > load[to] + 1 {
                        owner.insert((topic, p), to);
                        load[from] -= 1;
                        load[to] += 1;
                        moves_left -= 1;
                        continue 'balance;
                    }
                }
            }
        }
        break;
    }

    let mut out = vec![Assignment::new(); n];
    for ((topic, p), i) in owner {
        out[i].entry(topic).or_default().insert(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn spec<'a>(id: &'a str, topics: &[Uuid], previous: Option<&'a Assignment>) -> MemberSpec<'a> {
        MemberSpec {
            id,
            topics: topics.iter().copied().collect(),
            previous,
        }
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(|s| s.len()).sum()
    }

    /// Every partition of `topics` is assigned exactly once.
    fn assert_cover(result: &HashMap<String, Assignment>, topics: &BTreeMap<Uuid, u32>) {
        let mut seen = BTreeSet::new();
        for a in result.values() {
            for (t, ps) in a {
                for p in ps {
                    assert!(seen.insert((*t, *p)), "{t}-{p} assigned twice: {result:?}");
                }
            }
        }
        let all: BTreeSet<_> = topics
            .iter()
            .flat_map(|(t, n)| (0..*n as i32).map(move |p| (*t, p)))
            .collect();
        assert_eq!(seen, all);
    }

    #[test]
    fn uniform_balances_and_keeps_what_it_can() {
        let t = topic(1);
        let topics = BTreeMap::from([(t, 4)]);
        let two = assign(UNIFORM, &[spec("a", &[t], None), spec("b", &[t], None)], &topics);
        assert_cover(&two, &topics);
        assert_eq!((count(&two["a"]), count(&two["b"])), (2, 2));

        // A third member takes one partition from one of them; the others keep theirs.
        let three = assign(
            UNIFORM,
            &[
                spec("a", &[t], Some(&two["a"])),
                spec("b", &[t], Some(&two["b"])),
                spec("c", &[t], None),
            ],
            &topics,
        );
        assert_cover(&three, &topics);
        let mut sizes: Vec<usize> = three.values().map(count).collect();
        sizes.sort();
        assert_eq!(sizes, vec![1, 1, 2]);
        for m in ["a", "b"] {
            assert!(three[m][&t].is_subset(&two[m][&t]), "{m} kept a subset: {three:?}");
        }

        // b leaves: a and c keep theirs and share b's.
        let after = assign(
            UNIFORM,
            &[spec("a", &[t], Some(&three["a"])), spec("c", &[t], Some(&three["c"]))],
            &topics,
        );
        assert_cover(&after, &topics);
        assert_eq!((count(&after["a"]), count(&after["c"])), (2, 2));
        assert!(three["a"][&t].is_subset(&after["a"][&t]));
        assert!(three["c"][&t].is_subset(&after["c"][&t]));
    }

    #[test]
    fn uniform_with_different_subscriptions_gives_each_topic_to_its_subscribers() {
        let (x, y) = (topic(1), topic(2));
        let topics = BTreeMap::from([(x, 3), (y, 3)]);
        let r = assign(UNIFORM, &[spec("a", &[x], None), spec("b", &[x, y], None)], &topics);
        assert_cover(&r, &topics);
        assert!(!r["a"].contains_key(&y));
        assert_eq!((count(&r["a"]), count(&r["b"])), (3, 3));
    }

    #[test]
    fn range_gives_contiguous_ranges_in_member_order() {
        let (x, y) = (topic(1), topic(2));
        let topics = BTreeMap::from([(x, 5), (y, 2)]);
        let r = assign(RANGE, &[spec("b", &[x, y], None), spec("a", &[x, y], None)], &topics);
        assert_cover(&r, &topics);
        assert_eq!(r["a"][&x], BTreeSet::from([0, 1, 2]));
        assert_eq!(r["b"][&x], BTreeSet::from([3, 4]));
        assert_eq!(r["a"][&y], BTreeSet::from([0]));
        assert_eq!(r["b"][&y], BTreeSet::from([1]));
    }

    #[test]
    fn assignor_names_include_kafkas_class_names() {
        assert_eq!(
            canonical_name("org.apache.kafka.coordinator.group.assignor.RangeAssignor"),
            Some(RANGE)
        );
        assert_eq!(canonical_name("uniform"), Some(UNIFORM));
        assert_eq!(canonical_name("sticky"), None);
    }
}
