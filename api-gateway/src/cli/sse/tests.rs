use super::*;

fn event(name: &str, data: &str, id: Option<&str>) -> SseEvent {
    SseEvent {
        event: name.to_owned(),
        data: data.to_owned(),
        id: id.map(str::to_owned),
    }
}

/// Feeds `text` cut at every possible place into two chunks: the events must not depend
/// on where the network split the bytes.
fn every_split(text: &str) -> Vec<SseEvent> {
    let bytes = text.as_bytes();
    let whole = SseParser::default().feed(bytes);
    for cut in 0..=bytes.len() {
        let mut parser = SseParser::default();
        let mut events = parser.feed(&bytes[..cut]);
        events.extend(parser.feed(&bytes[cut..]));
        assert_eq!(events, whole, "split at byte {cut}");
    }
    whole
}

#[test]
fn one_event_with_name_id_and_json_data() {
    let events = every_split("event: operation.started\nid: 7\ndata: {\"a\":1}\n\n");
    assert_eq!(events, [event("operation.started", "{\"a\":1}", Some("7"))]);
}

#[test]
fn split_byte_by_byte() {
    let text = "event: x\ndata: é\n\nevent: y\ndata: 2\n\n";
    let mut parser = SseParser::default();
    let events: Vec<SseEvent> = text
        .as_bytes()
        .iter()
        .flat_map(|b| parser.feed(std::slice::from_ref(b)))
        .collect();
    assert_eq!(events, [event("x", "é", None), event("y", "2", None)]);
}

#[test]
fn data_lines_join_with_newlines() {
    let events = every_split("data: first\ndata:second\ndata\ndata:  indented\n\n");
    assert_eq!(
        events,
        [event("message", "first\nsecond\n\n indented", None)]
    );
}

#[test]
fn comments_are_heartbeats_not_events() {
    let events = every_split(":\n\n: keep-alive\n\nevent: a\n: between\ndata: 1\n\n");
    assert_eq!(events, [event("a", "1", None)]);
}

#[test]
fn crlf_and_lone_cr_end_lines() {
    assert_eq!(
        every_split("event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\r"),
        [event("a", "1", None), event("b", "2", None)]
    );
}

#[test]
fn a_crlf_split_between_chunks_is_one_line_end() {
    let mut parser = SseParser::default();
    assert_eq!(parser.feed(b"data: 1\r"), []);
    // The LF completing that CRLF, not a blank line.
    assert_eq!(parser.feed(b"\n"), []);
    assert_eq!(parser.feed(b"\n"), [event("message", "1", None)]);
}

#[test]
fn an_event_without_data_is_not_dispatched_and_ids_carry_over() {
    let events = every_split("event: lonely\n\nid: 9\ndata: a\n\ndata: b\n\n");
    assert_eq!(
        events,
        [
            event("message", "a", Some("9")),
            event("message", "b", Some("9"))
        ]
    );
}

#[test]
fn an_unfinished_event_waits_for_its_blank_line() {
    let mut parser = SseParser::default();
    assert_eq!(parser.feed(b"event: a\ndata: 1\n"), []);
    assert_eq!(parser.feed(b"\n"), [event("a", "1", None)]);
}
