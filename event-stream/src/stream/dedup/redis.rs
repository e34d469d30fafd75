//! The Redis dedup store: a small Lua script to take an id with a lease (atomic in
//! Redis), `SET key done EX ttl` to remember it, over one multiplexed connection that
//! reconnects by itself.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use async_trait::async_trait;

use super::{SharedStore, StoreError, Taken};

/// How long one call may take before it counts as a failure (a store that hangs must
/// not hang the consumer).
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// Takes `KEYS[1]` for holder `ARGV[1]` for `ARGV[2]` ms when it is free or the holder's
/// already: 1. Leased to another holder (values starting `lease:`): 2. Remembered (any
/// other value, `1` as earlier versions wrote too): 0. One script, so no other client's
/// command runs between the read and the write.
const TAKE: &str = r#"
local v = redis.call('GET', KEYS[1])
if (not v) or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if string.sub(v, 1, 6) == 'lease:' then
  return 2
end
return 0
"#;

/// The value of a remembered id.
const DONE: &str = "done";

/// Ids in Redis, shared by every consumer of a group and kept across restarts.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    url: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store at `url` (`redis://host:port/db`). Connects on first use, so a Redis that
    /// is down at start-up is a failing call (and the policy), not a start-up error; a
    /// URL that does not parse is one.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let client = ::redis::Client::open(url).map_err(|e| StoreError {
            store: "redis",
            message: format!("REDIS_URL `{}`: {e}", redact(url)),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            // Reconnect attempts happen on the next calls; one try per call keeps a
            // call's time bounded while Redis is down.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(|e| StoreError {
                store: "redis",
                message: e.to_string(),
            })?;
        Ok(Self {
            connection,
            url: redact(url),
        })
    }

    fn failed(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError {
            store: "redis",
            message: format!("{}: {e}", self.url),
        }
    }
}

#[async_trait]
impl SharedStore for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn seen(&self, key: &str) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let mut command = ::redis::cmd("EXISTS");
        command.arg(key);
        let call = command.query_async::<i64>(&mut connection);
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(n)) => Ok(n > 0),
            Ok(Err(e)) => Err(self.failed(e)),
            Err(_) => Err(self.failed(format!("no answer within {CALL_TIMEOUT:?}"))),
        }
    }

    async fn take(&self, key: &str, holder: &str, lease: Duration) -> Result<Taken, StoreError> {
        let mut connection = self.connection.clone();
        let mut command = ::redis::cmd("EVAL");
        let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1);
        command.arg(TAKE).arg(1).arg(key).arg(holder).arg(lease_ms);
        let call = command.query_async::<i64>(&mut connection);
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(1)) => Ok(Taken::Yours),
            Ok(Ok(2)) => Ok(Taken::Elsewhere),
            Ok(Ok(_)) => Ok(Taken::Done),
            Ok(Err(e)) => Err(self.failed(e)),
            Err(_) => Err(self.failed(format!("no answer within {CALL_TIMEOUT:?}"))),
        }
    }

    async fn remember(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let mut command = ::redis::cmd("SET");
        // Replaces this process's lease (or a lapsed one's successor: handled is handled).
        command
            .arg(key)
            .arg(DONE)
            .arg("EX")
            .arg(ttl.as_secs().max(1));
        let call = command.query_async::<Option<String>>(&mut connection);
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.failed(e)),
            Err(_) => Err(self.failed(format!("no answer within {CALL_TIMEOUT:?}"))),
        }
    }
}

/// The URL without a password, for logs and errors.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparsable>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redact("redis://:hunter2@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact("not a url"), "<unparsable>");
    }

    #[test]
    fn a_url_that_does_not_parse_is_refused_naming_the_variable() {
        let error = RedisStore::new("http://[::1").expect_err("refused");
        assert!(error.message.contains("REDIS_URL"), "{error}");
    }

    #[tokio::test]
    async fn a_redis_that_is_down_is_a_failed_call_not_a_hang() {
        // A port nothing listens on.
        let port = {
            let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            socket.local_addr().expect("addr").port()
        };
        let store = RedisStore::new(&format!("redis://127.0.0.1:{port}")).expect("store");
        let error = store.seen("k").await.expect_err("down");
        assert_eq!(error.store, "redis");
        assert!(
            store
                .take("k", "lease:me", Duration::from_secs(5))
                .await
                .is_err()
        );
        assert!(store.remember("k", Duration::from_secs(5)).await.is_err());
    }
}
