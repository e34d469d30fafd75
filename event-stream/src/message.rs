//! `Message<K, V>`: a key, a value and headers, plus where a reader found it.

use bytes::Bytes;

/// Ordered message headers (Kafka allows repeated names; order is kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, Bytes)>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a header (a repeated name is kept as a second entry).
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<Bytes>) {
        self.0.push((name.into(), value.into()));
    }

    /// Builder form of [`Headers::push`].
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.push(name, value);
        self
    }

    /// Replaces every header called `name` with one entry.
    pub fn set(&mut self, name: &str, value: impl Into<Bytes>) {
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_owned(), value.into()));
    }

    /// The last value of `name`.
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.0.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The last value of `name` as UTF-8, if it is.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every header in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// How many headers.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No headers at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<N: Into<String>, V: Into<Bytes>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        Headers(
            iter.into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        )
    }
}

/// Where a reader found a message: the unit of acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    /// Topic (Kafka, memory) or file path.
    pub topic: String,
    /// Partition (0 for transports without partitions).
    pub partition: i32,
    /// Offset within the partition (line number for files).
    pub offset: i64,
}

/// One message: an optional key, a value, headers; `position` and `timestamp_ms` are
/// filled in by readers and ignored by writers.
#[derive(Debug, Clone, PartialEq)]
pub struct Message<K, V> {
    /// The key (Kafka partitions by it).
    pub key: Option<K>,
    /// The payload.
    pub value: V,
    /// Headers.
    pub headers: Headers,
    /// Where a reader found it (`None` for a message about to be written).
    pub position: Option<Position>,
    /// Broker or file timestamp in ms since the epoch, when the transport has one.
    pub timestamp_ms: Option<i64>,
}

impl<K, V> Message<K, V> {
    /// A message with a value only.
    pub fn new(value: V) -> Self {
        Message {
            key: None,
            value,
            headers: Headers::new(),
            position: None,
            timestamp_ms: None,
        }
    }

    /// A message with a key and a value.
    pub fn keyed(key: K, value: V) -> Self {
        Message {
            key: Some(key),
            ..Message::new(value)
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(name, value);
        self
    }

    /// Maps key and value, keeping headers and position.
    pub fn map<K2, V2>(
        self,
        key: impl FnOnce(K) -> K2,
        value: impl FnOnce(V) -> V2,
    ) -> Message<K2, V2> {
        Message {
            key: self.key.map(key),
            value: value(self.value),
            headers: self.headers,
            position: self.position,
            timestamp_ms: self.timestamp_ms,
        }
    }

    /// Maps key and value with fallible functions.
    pub fn try_map<K2, V2, E>(
        self,
        key: impl FnOnce(K) -> Result<K2, E>,
        value: impl FnOnce(V) -> Result<V2, E>,
    ) -> Result<Message<K2, V2>, E> {
        Ok(Message {
            key: self.key.map(key).transpose()?,
            value: value(self.value)?,
            headers: self.headers,
            position: self.position,
            timestamp_ms: self.timestamp_ms,
        })
    }
}

/// A message whose key and value are bytes: what transports carry.
pub type RawMessage = Message<Bytes, Bytes>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_keep_order_and_repeats() {
        let mut h = Headers::new().with("a", "1").with("b", "2").with("a", "3");
        assert_eq!(h.len(), 3);
        assert_eq!(h.get_str("a"), Some("3"));
        h.set("a", "4");
        let names: Vec<_> = h.iter().map(|(n, _)| n.to_owned()).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(h.get_str("a"), Some("4"));
        assert!(h.get("zz").is_none());
    }

    #[test]
    fn try_map_stops_at_the_first_error() {
        let m: Message<&str, &str> = Message::keyed("k", "v").with_header("h", "x");
        let ok: Result<Message<String, usize>, ()> =
            m.clone().try_map(|k| Ok(k.to_owned()), |v| Ok(v.len()));
        let ok = ok.expect("maps");
        assert_eq!(ok.key.as_deref(), Some("k"));
        assert_eq!(ok.headers.get_str("h"), Some("x"));
        let bad: Result<Message<String, usize>, &str> = m.try_map(|_| Err("key"), |v| Ok(v.len()));
        assert_eq!(bad.err(), Some("key"));
    }
}
