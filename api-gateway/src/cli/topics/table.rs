//! The human tables of `hostbridge topics`: returned as strings so tests read them.

use std::fmt::Write as _;

use event_stream::kafka::PartitionLag;
use event_stream::kafka::catalogue::{RETENTION_MS, SetupReport, TopicStatus, format_retention_ms};

use super::Listed;

/// Width of the name column: the longest name, at least the header's.
fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(str::len).max().unwrap_or(0).max("TOPIC".len())
}

/// `ok`, `created`, or `DIFFERS: …` listing every difference.
fn status_text(status: &TopicStatus) -> String {
    match status {
        TopicStatus::Created => "created".to_owned(),
        TopicStatus::Ok => "ok".to_owned(),
        TopicStatus::Differs { differences } => format!(
            "DIFFERS: {}",
            differences
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `NAME (what differs)`, for the error line of a setup that found differences.
pub(super) fn differing_line(name: &str, status: &TopicStatus) -> String {
    let detail = status_text(status);
    let detail = detail.strip_prefix("DIFFERS: ").unwrap_or(&detail);
    format!("{name} ({detail})")
}

fn retention(info: &event_stream::kafka::TopicInfo) -> String {
    info.configs
        .get(RETENTION_MS)
        .map_or_else(|| "-".to_owned(), |ms| format_retention_ms(ms))
}

/// `topics setup`.
pub(super) fn setup(report: &SetupReport) -> String {
    let w = name_width(report.topics.iter().map(|t| t.spec.name.as_str()));
    let mut out = format!(
        "{:<w$}  {:>10}  {:>9}  STATUS\n",
        "TOPIC", "PARTITIONS", "RETENTION"
    );
    for t in &report.topics {
        let _ = writeln!(
            out,
            "{:<w$}  {:>10}  {:>9}  {}",
            t.spec.name,
            t.spec.partitions,
            format_retention_ms(&t.spec.retention_ms()),
            status_text(&t.status)
        );
    }
    out
}

/// `topics list`.
pub(super) fn list(rows: &[Listed]) -> String {
    let w = name_width(rows.iter().map(|r| r.info.name.as_str()));
    let mut out = format!(
        "{:<w$}  {:>10}  {:>8}  {:>9}  CATALOGUE\n",
        "TOPIC", "PARTITIONS", "REPLICAS", "RETENTION"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<w$}  {:>10}  {:>8}  {:>9}  {}",
            r.info.name,
            r.info.partitions,
            r.info.replication,
            retention(&r.info),
            r.catalogue
                .as_ref()
                .map_or_else(|| "-".to_owned(), status_text)
        );
    }
    let _ = writeln!(out, "{} topic(s)", rows.len());
    out
}

/// `topics describe NAME`.
pub(super) fn describe(row: &Listed) -> String {
    let info = &row.info;
    let mut out = format!(
        "topic        {}\npartitions   {}\nreplication  {}\nretention    {}\ncatalogue    {}\n",
        info.name,
        info.partitions,
        info.replication,
        retention(info),
        row.catalogue
            .as_ref()
            .map_or_else(|| "not a catalogue topic".to_owned(), status_text)
    );
    if !info.configs.is_empty() {
        out.push_str("config\n");
        let w = info.configs.keys().map(String::len).max().unwrap_or(0);
        for (key, value) in &info.configs {
            let _ = writeln!(out, "  {key:<w$}  {value}");
        }
    }
    out
}

/// `topics lag GROUP`.
pub(super) fn lag(group: &str, lag: &[PartitionLag]) -> String {
    if lag.is_empty() {
        return format!("group {group} has no committed offsets\n");
    }
    let w = name_width(lag.iter().map(|l| l.topic.as_str()));
    let mut out = format!(
        "{:<w$}  {:>9}  {:>10}  {:>10}  {:>8}\n",
        "TOPIC", "PARTITION", "COMMITTED", "END", "LAG"
    );
    for l in lag {
        let committed = l
            .committed
            .map_or_else(|| "-".to_owned(), |c| c.to_string());
        let _ = writeln!(
            out,
            "{:<w$}  {:>9}  {:>10}  {:>10}  {:>8}",
            l.topic, l.partition, committed, l.end, l.lag
        );
    }
    let total: i64 = lag.iter().map(|l| l.lag).sum();
    let _ = writeln!(
        out,
        "group {group}: total lag {total} on {} partition(s)",
        lag.len()
    );
    out
}

#[cfg(test)]
mod tests;
