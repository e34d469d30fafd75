//! What the command line prints: the tables (operations, the store, bars), the health
//! lines, an operation's outcome, and the one form of every time. Each table is built
//! as text first and printed by the caller, so its layout is tested without a terminal.

use std::fmt::Write as _;

use host_service_base::operations::OperationInfo;
use serde_json::Value;

/// How a client command prints: the gateway's JSON or text, with or without progress.
#[derive(Debug, Clone, Copy)]
pub(super) struct Output {
    pub(super) json: bool,
    pub(super) quiet: bool,
}

impl Output {
    pub(super) fn print_json(self, value: &Value) {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        );
    }
}

/// Prints one line of a stream's output. A reader that went away (`| head`) ends the
/// command quietly, as Unix tools do, instead of panicking on the broken pipe.
pub fn print_line(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("hostbridge: writing to stdout: {e}");
        std::process::exit(1);
    }
}

// Writing to a `String` cannot fail, so the `fmt::Result`s below are dropped.

/// `ops list`: one row per operation of the gateway's list answer, then the counts.
pub(super) fn operations_table(answer: &Value) -> String {
    let mut out = String::new();
    let ops = answer["data"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(
        out,
        "{:<44} {:<10} {:<10} {:>5}  STEP",
        "OPERATION", "TYPE", "STATUS", "%"
    );
    for op in &ops {
        let _ = writeln!(
            out,
            "{:<44} {:<10} {:<10} {:>5.0}  {}",
            op["operation_id"].as_str().unwrap_or("?"),
            op["operation_type"].as_str().unwrap_or("?"),
            op["status"].as_str().unwrap_or("?"),
            op["progress_percentage"]
                .as_f64()
                .or_else(|| op["progress"]["percentage"].as_f64())
                .unwrap_or(0.0),
            op["current_step"]
                .as_str()
                .or_else(|| op["progress"]["current_step"].as_str())
                .unwrap_or(""),
        );
    }
    let _ = writeln!(
        out,
        "{} of {} shown, {} active",
        ops.len(),
        answer["total_count"],
        answer["active_count"]
    );
    out
}

/// `data show` without arguments: one row per stored series.
pub(super) fn store_table(answer: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:<4} {:>8}  {:<25} LAST",
        "SYMBOL", "TF", "BARS", "FIRST"
    );
    for s in answer["data"].as_array().cloned().unwrap_or_default() {
        let _ = writeln!(
            out,
            "{:<10} {:<4} {:>8}  {:<25} {}",
            s["symbol"].as_str().unwrap_or("?"),
            s["timeframe"].as_str().unwrap_or("?"),
            s["rows"].as_u64().unwrap_or(0),
            show_time(s["first"].as_str()),
            show_time(s["last"].as_str()),
        );
    }
    out
}

/// `data show SYMBOL TIMEFRAME`: a summary line and the `last` bars of the answer's
/// `data` (dates beside OHLCV rows).
pub(super) fn bars_table(symbol: &str, timeframe: &str, data: &Value, last: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}: {} bars from {} to {}",
        symbol,
        timeframe,
        data["points"],
        show_time(data["start"].as_str()),
        show_time(data["end"].as_str())
    );
    let dates = data["dates"].as_array().cloned().unwrap_or_default();
    let ohlcv = data["ohlcv"].as_array().cloned().unwrap_or_default();
    let from = dates.len().saturating_sub(last);
    let _ = writeln!(
        out,
        "{:<26} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "TIME", "OPEN", "HIGH", "LOW", "CLOSE", "VOLUME"
    );
    for (date, bar) in dates.iter().zip(&ohlcv).skip(from) {
        let v = |i: usize| bar[i].as_f64().unwrap_or(f64::NAN);
        let _ = writeln!(
            out,
            "{:<26} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>12.0}",
            show_time(date.as_str()),
            v(0),
            v(1),
            v(2),
            v(3),
            v(4)
        );
    }
    out
}

/// `health`: the gateway's status, then one line per service behind it.
pub(super) fn health_text(base_url: &str, answer: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "gateway {} — {}",
        base_url,
        answer["status"].as_str().unwrap_or("?")
    );
    for name in ["data", "training"] {
        let s = &answer["services"][name];
        let state = if s["healthy"] == true {
            "healthy"
        } else {
            "DOWN"
        };
        let latency = s["latency_ms"]
            .as_f64()
            .map(|l| format!(" {l:.1} ms"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {name:<9} {:<6} {state}{latency}",
            s["mode"].as_str().unwrap_or("?")
        );
        if let Some(e) = s["error"].as_str() {
            let _ = writeln!(out, "            {e}");
        }
    }
    out
}

/// Prints how an operation ended (or where it stands).
pub(super) fn print_outcome(info: &OperationInfo) {
    print!("{}", outcome_text(info));
}

/// How an operation ended: status, error, warnings, and its result in words (a load's
/// bars, a training's figures), or its progress while it runs.
pub(super) fn outcome_text(info: &OperationInfo) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} — {}",
        info.operation_type,
        info.operation_id,
        info.status.as_str()
    );
    if let Some(e) = &info.error_message {
        let _ = writeln!(out, "  error: {e}");
    }
    for w in &info.warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    let Some(r) = &info.result_summary else {
        if let Some(step) = &info.progress.current_step {
            let _ = writeln!(out, "  {:.0}% {step}", info.progress.percentage);
        }
        return out;
    };
    if info.operation_type == crate::data::LOAD_OPERATION {
        let _ = writeln!(
            out,
            "  {} {} ({}): +{} bars ({} fetched in {} of {} segments; {} replaced); store: {} bars, {} → {}",
            r["symbol"].as_str().unwrap_or("?"),
            r["timeframe"].as_str().unwrap_or("?"),
            r["mode"].as_str().unwrap_or("?"),
            r["bars_added"],
            r["bars_fetched"],
            r["segments_fetched"],
            r["segments_total"],
            r["bars_replaced"],
            r["bars_after"],
            show_time(r["first_bar"].as_str()),
            show_time(r["last_bar"].as_str()),
        );
    } else if info.operation_type == crate::training::TRAINING_OPERATION {
        let t = &r["training_metrics"];
        let m = &r["test_metrics"];
        let _ = writeln!(
            out,
            "  {} epochs, final train loss {}, val accuracy {}; test accuracy {}, F1 {}",
            t["epochs_trained"],
            figure(&t["final_train_loss"], 4),
            figure(&t["final_val_accuracy"], 3),
            figure(&m["test_accuracy"], 3),
            figure(&m["f1_score"], 3),
        );
        if let Some(message) = m["message"].as_str() {
            let _ = writeln!(out, "  {message}");
        }
        if let Some(path) = r["model_path"].as_str() {
            let _ = writeln!(out, "  model: {path}");
        }
    } else {
        let _ = writeln!(out, "  {r}");
    }
    out
}

/// A result figure with `decimals`, or `n/a` where the result has none (`null`: no
/// validation or test split, or stopped before the first epoch ended).
fn figure(value: &Value, decimals: usize) -> String {
    value
        .as_f64()
        .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.decimals$}"))
}

/// One form for every time the CLI prints: RFC 3339 in UTC ending in `Z`, as the
/// gateway's JSON writes times (its bar dates carry `+00:00`; both mean UTC).
fn show_time(text: Option<&str>) -> String {
    match text.map(|t| (t, chrono::DateTime::parse_from_rfc3339(t))) {
        Some((_, Ok(time))) => time
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        Some((t, Err(_))) => t.to_owned(),
        None => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_time_is_shown_in_one_form() {
        for (given, shown) in [
            (Some("2025-01-02T00:00:00+00:00"), "2025-01-02T00:00:00Z"),
            (Some("2025-01-02T00:00:00Z"), "2025-01-02T00:00:00Z"),
            (Some("2025-01-02T01:00:00+01:00"), "2025-01-02T00:00:00Z"),
            (Some("not a time"), "not a time"),
            (None, "-"),
        ] {
            assert_eq!(show_time(given), shown, "{given:?}");
        }
    }

    #[test]
    fn a_missing_result_figure_reads_n_a_not_nan() {
        assert_eq!(figure(&json!(0.12345), 3), "0.123");
        assert_eq!(figure(&json!(null), 3), "n/a");
        assert_eq!(figure(&json!(1), 4), "1.0000");
    }

    #[test]
    fn the_operations_table() {
        let answer = json!({
            "data": [
                {"operation_id": "op_1", "operation_type": "data_load", "status": "running",
                 "progress_percentage": 42.4, "current_step": "segment 3 of 40"},
                {"operation_id": "op_2", "operation_type": "training", "status": "pending",
                 "progress": {"percentage": 0.0}},
            ],
            "total_count": 7,
            "active_count": 2,
        });
        let text = operations_table(&answer);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("OPERATION ") && lines[0].ends_with("%  STEP"));
        assert_eq!(
            lines[1],
            format!(
                "{:<44} {:<10} {:<10} {:>5}  segment 3 of 40",
                "op_1", "data_load", "running", "42"
            )
        );
        assert_eq!(
            lines[2].trim_end(),
            format!(
                "{:<44} {:<10} {:<10} {:>5}",
                "op_2", "training", "pending", "0"
            )
        );
        assert_eq!(lines[3], "2 of 7 shown, 2 active");
    }

    #[test]
    fn the_store_table_shows_times_in_one_form() {
        let answer = json!({"data": [{
            "symbol": "AAPL", "timeframe": "1d", "rows": 250,
            "first": "2024-01-02T00:00:00+00:00", "last": "2024-12-31T00:00:00Z",
        }]});
        let text = store_table(&answer);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(
            lines[1],
            format!(
                "{:<10} {:<4} {:>8}  {:<25} {}",
                "AAPL", "1d", 250, "2024-01-02T00:00:00Z", "2024-12-31T00:00:00Z"
            )
        );
        assert_eq!(
            store_table(&json!({})).lines().count(),
            1,
            "only the header"
        );
    }

    #[test]
    fn the_bars_table_shows_the_last_bars() {
        let data = json!({
            "points": 3,
            "start": "2024-01-01T00:00:00+00:00",
            "end": "2024-01-03T00:00:00+00:00",
            "dates": ["2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00", "2024-01-03T00:00:00+00:00"],
            "ohlcv": [[1, 2, 0.5, 1.5, 100], [1.5, 2.5, 1, 2, 200], [2, 3, 1.5, 2.5, 300]],
        });
        let text = bars_table("AAPL", "1d", &data, 2);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "AAPL 1d: 3 bars from 2024-01-01T00:00:00Z to 2024-01-03T00:00:00Z"
        );
        assert!(lines[1].starts_with("TIME "), "{text}");
        assert_eq!(lines.len(), 4, "two bars: {text}");
        assert_eq!(
            lines[3],
            format!(
                "{:<26} {:>10} {:>10} {:>10} {:>10} {:>12}",
                "2024-01-03T00:00:00Z", "2.00", "3.00", "1.50", "2.50", "300"
            )
        );
    }

    #[test]
    fn health_lines_say_which_service_is_down() {
        let answer = json!({
            "status": "degraded",
            "services": {
                "data": {"healthy": true, "mode": "remote", "latency_ms": 1.26},
                "training": {"healthy": false, "mode": "local", "error": "no answer"},
            },
        });
        let text = health_text("http://127.0.0.1:8000/", &answer);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "gateway http://127.0.0.1:8000/ — degraded");
        assert_eq!(
            lines[1],
            format!("  {:<9} {:<6} healthy 1.3 ms", "data", "remote")
        );
        assert_eq!(lines[2], format!("  {:<9} {:<6} DOWN", "training", "local"));
        assert_eq!(lines[3], "            no answer");
    }
}
