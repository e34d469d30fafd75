use std::collections::BTreeMap;

use serde_json::json;

use super::*;

fn info(name: &str, partitions: usize, retention_ms: Option<&str>) -> TopicInfo {
    TopicInfo {
        name: name.to_owned(),
        partitions,
        replication: 1,
        configs: retention_ms
            .map(|ms| BTreeMap::from([(RETENTION_MS.to_owned(), ms.to_owned())]))
            .unwrap_or_default(),
    }
}

#[test]
fn the_default_catalogue_is_the_designs() {
    let catalogue = Catalogue::default();
    let rows: Vec<(&str, i32, String, &str)> = catalogue
        .topics()
        .iter()
        .map(|t| (t.name.as_str(), t.partitions, t.retention_ms(), t.key))
        .collect();
    assert_eq!(
        rows,
        [
            ("hostbridge.events", 6, "604800000".to_owned(), "subject"),
            ("hostbridge.commands", 3, "86400000".to_owned(), "subject"),
            (
                "hostbridge.commands.dlq",
                1,
                "2592000000".to_owned(),
                "the failed message's key"
            ),
            ("hostbridge.market-data", 8, "86400000".to_owned(), "symbol"),
        ]
    );
}

#[test]
fn names_are_parameters_and_the_dlq_follows_the_commands_topic() {
    let catalogue = Catalogue::new("t1.ev", "t1.cmd", "t1.md");
    let names: Vec<&str> = catalogue.topics().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["t1.ev", "t1.cmd", "t1.cmd.dlq", "t1.md"]);
    assert_eq!(catalogue.get("t1.cmd.dlq").map(|t| t.partitions), Some(1));
    assert_eq!(catalogue.get("hostbridge.events"), None);
}

#[test]
fn a_matching_topic_has_no_differences() {
    let catalogue = Catalogue::default();
    let events = &catalogue.topics()[0];
    assert_eq!(
        events.compare(&info(&events.name, 6, Some("604800000"))),
        []
    );
    assert_eq!(
        events.status(&info(&events.name, 6, Some("604800000"))),
        TopicStatus::Ok
    );
}

#[test]
fn partitions_and_retention_differences_are_named_with_both_values() {
    let catalogue = Catalogue::default();
    let events = &catalogue.topics()[0];
    let differences = events.compare(&info(&events.name, 3, Some("86400000")));
    assert_eq!(
        differences,
        [
            Difference {
                what: Setting::Partitions,
                expected: "6".into(),
                actual: "3".into()
            },
            Difference {
                what: Setting::Retention,
                expected: "7 d".into(),
                actual: "1 d".into()
            },
        ]
    );
    assert_eq!(differences[0].to_string(), "partitions 3 (catalogue: 6)");
}

#[test]
fn an_unreported_retention_is_a_difference_not_a_match() {
    let catalogue = Catalogue::default();
    let md = &catalogue.topics()[3];
    let differences = md.compare(&info(&md.name, 8, None));
    assert_eq!(differences.len(), 1);
    assert_eq!(differences[0].what, Setting::Retention);
    assert_eq!(differences[0].actual, "not reported by the broker");
}

#[test]
fn the_report_serialises_flat_with_a_status_tag() {
    let catalogue = Catalogue::new("a", "b", "c");
    let report = SetupReport {
        topics: vec![
            TopicReport {
                spec: catalogue.topics()[0].clone(),
                status: TopicStatus::Created,
            },
            TopicReport {
                spec: catalogue.topics()[1].clone(),
                status: TopicStatus::Differs {
                    differences: vec![Difference {
                        what: Setting::Partitions,
                        expected: "3".into(),
                        actual: "1".into(),
                    }],
                },
            },
        ],
    };
    let value = serde_json::to_value(&report).expect("serialises");
    assert_eq!(
        value["topics"][0],
        json!({"name": "a", "partitions": 6, "retention_ms": 604800000u64, "key": "subject", "status": "created"})
    );
    assert_eq!(value["topics"][1]["status"], "differs");
    assert_eq!(
        value["topics"][1]["differences"][0],
        json!({"what": "partitions", "expected": "3", "actual": "1"})
    );
    let differing: Vec<&str> = report.differing().map(|t| t.spec.name.as_str()).collect();
    assert_eq!(differing, ["b"]);
}

#[test]
fn retention_reads_in_the_largest_whole_unit() {
    for (ms, shown) in [
        ("604800000", "7 d"),
        ("86400000", "1 d"),
        ("43200000", "12 h"),
        ("5400000", "90 min"),
        ("1500", "1500 ms"),
        ("0", "0 ms"),
        ("-1", "forever"),
        ("soon", "soon"),
    ] {
        assert_eq!(format_retention_ms(ms), shown, "{ms}");
    }
}
