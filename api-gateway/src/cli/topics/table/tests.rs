use std::collections::BTreeMap;

use event_stream::kafka::TopicInfo;
use event_stream::kafka::catalogue::{Catalogue, TopicReport};

use super::*;

fn info(name: &str, partitions: usize, retention_ms: &str) -> TopicInfo {
    TopicInfo {
        name: name.to_owned(),
        partitions,
        replication: 1,
        configs: BTreeMap::from([
            ("cleanup.policy".to_owned(), "delete".to_owned()),
            (RETENTION_MS.to_owned(), retention_ms.to_owned()),
        ]),
    }
}

fn report() -> SetupReport {
    let catalogue = Catalogue::default();
    let events = &catalogue.topics()[0];
    let commands = &catalogue.topics()[1];
    SetupReport {
        topics: vec![
            TopicReport {
                spec: events.clone(),
                status: events.status(&info(&events.name, 3, "604800000")),
            },
            TopicReport {
                spec: commands.clone(),
                status: TopicStatus::Created,
            },
        ],
    }
}

#[test]
fn setup_shows_each_topic_with_its_status_and_what_differs() {
    let text = setup(&report());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "TOPIC                PARTITIONS  RETENTION  STATUS",
            "hostbridge.events             6        7 d  DIFFERS: partitions 3 (catalogue: 6)",
            "hostbridge.commands           3        1 d  created",
        ]
    );
}

#[test]
fn the_differing_line_names_the_topic_and_the_difference() {
    let report = report();
    let line = differing_line(&report.topics[0].spec.name, &report.topics[0].status);
    assert_eq!(line, "hostbridge.events (partitions 3 (catalogue: 6))");
}

#[test]
fn list_and_describe_compare_with_the_catalogue() {
    let catalogue = Catalogue::default();
    let rows = vec![
        Listed::compare(info("hostbridge.events", 6, "604800000"), &catalogue),
        Listed::compare(info("other", 2, "3600000"), &catalogue),
    ];
    let text = list(&rows);
    assert!(
        text.contains("hostbridge.events           6         1        7 d  ok"),
        "{text}"
    );
    assert!(
        text.contains("other                       2         1        1 h  -"),
        "{text}"
    );
    assert!(text.ends_with("2 topic(s)\n"), "{text}");

    let text = describe(&rows[1]);
    assert!(text.contains("partitions   2\n"), "{text}");
    assert!(
        text.contains("catalogue    not a catalogue topic\n"),
        "{text}"
    );
    assert!(text.contains("  retention.ms    3600000\n"), "{text}");
}

#[test]
fn lag_totals_and_says_when_the_group_has_nothing() {
    let rows = [
        PartitionLag {
            topic: "t".into(),
            partition: 0,
            committed: Some(2),
            end: 5,
            lag: 3,
        },
        PartitionLag {
            topic: "t".into(),
            partition: 1,
            committed: None,
            end: 4,
            lag: 4,
        },
    ];
    let text = lag("g", &rows);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[1],
        "t              0           2           5         3"
    );
    assert_eq!(
        lines[2],
        "t              1           -           4         4"
    );
    assert_eq!(lines[3], "group g: total lag 7 on 2 partition(s)");
    assert_eq!(lag("g", &[]), "group g has no committed offsets\n");
}
