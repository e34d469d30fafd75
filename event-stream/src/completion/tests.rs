use super::*;

fn at(partition: i32, offset: i64) -> Position {
    Position {
        topic: "t".to_owned(),
        partition,
        offset,
    }
}

#[test]
fn a_commit_never_passes_an_unfinished_message() {
    let mut t = CompletionTracker::new();
    for offset in 0..5 {
        t.start(&at(0, offset));
    }
    // Finished out of order: 3, 1, 4 — 0 and 2 still running.
    for offset in [3, 1, 4] {
        assert!(t.finish(&at(0, offset)));
    }
    assert_eq!(t.committable("t", 0), Some(0));
    assert!(t.finish(&at(0, 0)));
    assert_eq!(t.committable("t", 0), Some(2), "1 is done, 2 is not");
    assert!(t.finish(&at(0, 2)));
    assert_eq!(
        t.committable("t", 0),
        Some(5),
        "everything done: one past the newest"
    );
    assert_eq!(t.in_flight(), 0);
}

#[test]
fn every_finishing_order_commits_only_finished_prefixes() {
    // All 5! orders of finishing five messages: after each step the committable offset
    // is exactly the length of the finished prefix.
    fn permutations(items: Vec<i64>) -> Vec<Vec<i64>> {
        if items.len() <= 1 {
            return vec![items];
        }
        let mut out = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.clone();
            let first = rest.remove(i);
            for mut tail in permutations(rest) {
                tail.insert(0, first);
                out.push(tail);
            }
        }
        out
    }
    let orders = permutations((0..5).collect());
    assert_eq!(orders.len(), 120);
    for order in orders {
        let mut t = CompletionTracker::new();
        (0..5).for_each(|o| t.start(&at(0, o)));
        let mut done = BTreeSet::new();
        for offset in order {
            t.finish(&at(0, offset));
            done.insert(offset);
            let prefix = (0..5).take_while(|o| done.contains(o)).count() as i64;
            assert_eq!(t.committable("t", 0), Some(prefix));
        }
    }
}

#[test]
fn gaps_in_offsets_and_partitions_are_independent() {
    let mut t = CompletionTracker::new();
    // A compacted partition: offsets 10, 14, 20 only.
    for offset in [10, 14, 20] {
        t.start(&at(0, offset));
    }
    t.start(&at(1, 0));
    t.finish(&at(0, 10));
    assert_eq!(t.committable("t", 0), Some(14));
    assert_eq!(t.committable("t", 1), Some(0));
    t.finish(&at(0, 20));
    t.finish(&at(0, 14));
    assert_eq!(t.committable("t", 0), Some(21));
    assert_eq!(t.committable("t", 2), None, "never handed out");
}

#[test]
fn take_committable_reports_each_move_once() {
    let mut t = CompletionTracker::new();
    t.start(&at(0, 0));
    t.start(&at(1, 7));
    assert_eq!(t.take_committable(), vec![at(0, 0), at(1, 7)]);
    assert!(t.take_committable().is_empty(), "nothing moved");
    t.finish(&at(1, 7));
    assert_eq!(t.take_committable(), vec![at(1, 8)]);
    assert!(t.take_committable().is_empty());
}

#[test]
fn a_revoked_partition_is_forgotten_and_late_finishes_are_ignored() {
    let mut t = CompletionTracker::new();
    t.start(&at(0, 0));
    t.start(&at(0, 1));
    t.revoke("t", 0);
    assert!(!t.finish(&at(0, 0)), "its new owner handles it again");
    assert_eq!(t.committable("t", 0), None);
    assert_eq!(t.in_flight(), 0);
    assert!(!t.finish(&at(3, 3)), "unknown");
}
