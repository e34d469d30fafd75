use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use super::*;

/// A shared store in memory that can be switched off: remembered keys, and leases with
/// their holder and end.
#[derive(Debug, Default)]
struct FlakyStore {
    keys: Mutex<HashSet<String>>,
    leases: Mutex<HashMap<String, (String, std::time::Instant)>>,
    down: AtomicBool,
}

#[async_trait]
impl SharedStore for FlakyStore {
    fn name(&self) -> &'static str {
        "flaky"
    }

    async fn seen(&self, key: &str) -> Result<bool, StoreError> {
        self.up()?;
        Ok(self.keys.lock().expect("lock").contains(key))
    }

    async fn take(&self, key: &str, holder: &str, lease: Duration) -> Result<Taken, StoreError> {
        self.up()?;
        if self.keys.lock().expect("lock").contains(key) {
            return Ok(Taken::Done);
        }
        let mut leases = self.leases.lock().expect("lock");
        let now = std::time::Instant::now();
        match leases.get(key) {
            Some((other, ends)) if other != holder && *ends > now => Ok(Taken::Elsewhere),
            _ => {
                leases.insert(key.to_owned(), (holder.to_owned(), now + lease));
                Ok(Taken::Yours)
            }
        }
    }

    async fn remember(&self, key: &str, _ttl: Duration) -> Result<(), StoreError> {
        self.up()?;
        self.leases.lock().expect("lock").remove(key);
        self.keys.lock().expect("lock").insert(key.to_owned());
        Ok(())
    }
}

impl FlakyStore {
    fn up(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(StoreError {
                store: "flaky",
                message: "connection refused".to_owned(),
            });
        }
        Ok(())
    }
}

fn with(store: &Arc<FlakyStore>, policy: StoreFailure) -> Dedup {
    Dedup::local(100).with_shared(store.clone(), policy, DEFAULT_TTL)
}

#[tokio::test]
async fn an_id_is_new_until_remembered_and_scopes_are_apart() {
    let dedup = Dedup::local(10);
    assert_eq!(dedup.check("gw", "a").await, Check::New);
    // Checking does not remember: a consumer that dies mid-handling loses nothing.
    assert_eq!(dedup.check("gw", "a").await, Check::New);
    dedup.remember("gw", "a").await;
    assert_eq!(
        dedup.check("gw", "a").await,
        Check::Duplicate { local: true }
    );
    assert_eq!(dedup.check("archive", "a").await, Check::New);
    let report = dedup.report();
    assert_eq!(report.store, "memory");
    assert_eq!(report.duplicates, 1);
}

#[tokio::test]
async fn the_local_lru_is_bounded_and_forgets_the_oldest() {
    let dedup = Dedup::local(2);
    for id in ["a", "b", "c"] {
        dedup.remember("gw", id).await;
    }
    assert_eq!(dedup.check("gw", "a").await, Check::New);
    assert!(matches!(
        dedup.check("gw", "c").await,
        Check::Duplicate { .. }
    ));
}

#[tokio::test]
async fn the_shared_store_knows_what_another_consumer_handled() {
    let store = Arc::new(FlakyStore::default());
    let first = with(&store, StoreFailure::Open);
    first.remember("gw", "a").await;
    // A second process (a restart, another member of the group): empty LRU.
    let second = with(&store, StoreFailure::Open);
    assert_eq!(
        second.check("gw", "a").await,
        Check::Duplicate { local: false }
    );
    // Found once in the store, then in the LRU.
    assert_eq!(
        second.check("gw", "a").await,
        Check::Duplicate { local: true }
    );
    assert_eq!(second.report().store, "flaky");
}

#[tokio::test]
async fn a_store_outage_fails_open_or_closed_as_configured_and_is_counted() {
    let store = Arc::new(FlakyStore::default());
    let open = with(&store, StoreFailure::Open);
    let closed = with(&store, StoreFailure::Closed);
    store.down.store(true, Ordering::Relaxed);

    assert_eq!(open.check("gw", "x").await, Check::New);
    assert!(matches!(
        closed.check("gw", "x").await,
        Check::Unavailable(StoreError { store: "flaky", .. })
    ));
    // Remembering while down still remembers locally.
    open.remember("gw", "x").await;
    assert!(matches!(
        open.check("gw", "x").await,
        Check::Duplicate { local: true }
    ));
    let report = open.report();
    assert!(!report.store_up);
    assert_eq!(report.store_errors, 2);
    assert_eq!(report.on_store_failure, "open");
    assert_eq!(closed.report().on_store_failure, "closed");

    store.down.store(false, Ordering::Relaxed);
    assert_eq!(closed.check("gw", "x").await, Check::New);
    assert!(closed.report().store_up);
}

#[test]
fn policies_parse_by_name_and_refuse_anything_else() {
    assert_eq!("Open".parse::<StoreFailure>(), Ok(StoreFailure::Open));
    assert_eq!(" closed ".parse::<StoreFailure>(), Ok(StoreFailure::Closed));
    let error = "maybe".parse::<StoreFailure>().expect_err("refused");
    assert!(error.contains("open or closed"), "{error}");
}

#[tokio::test]
async fn a_claimed_id_waits_for_its_holder_and_is_forgotten_after() {
    let dedup = Arc::new(Dedup::local(10));
    let first = dedup.claim("gw", "a").await;
    // Another id, or the same id for another consumer, is not held up.
    drop(dedup.claim("gw", "b").await);
    drop(dedup.claim("other", "a").await);
    let waiter = {
        let dedup = dedup.clone();
        tokio::spawn(async move {
            let _claim = dedup.claim("gw", "a").await;
            dedup.check("gw", "a").await
        })
    };
    tokio::task::yield_now().await;
    assert!(
        !waiter.is_finished(),
        "the second claim waits for the first"
    );
    dedup.remember("gw", "a").await;
    drop(first);
    let check = waiter.await.expect("join");
    assert!(
        matches!(check, Check::Duplicate { local: true }),
        "{check:?}"
    );
    assert!(
        dedup.in_flight.lock().expect("lock").is_empty(),
        "released ids are forgotten"
    );
}

#[tokio::test]
async fn a_second_process_waits_while_the_first_handles_then_finds_a_duplicate() {
    let store = Arc::new(FlakyStore::default());
    let (first, second) = (
        with(&store, StoreFailure::Open),
        with(&store, StoreFailure::Open),
    );
    assert_eq!(first.check("gw", "a").await, Check::New);
    // Checked before the first remembers: without the lease both would handle it.
    assert_eq!(second.check("gw", "a").await, Check::InFlight);
    // The first process retrying its own message finds its own lease.
    assert_eq!(first.check("gw", "a").await, Check::New);
    // Another consumer (scope) is not held up.
    assert_eq!(second.check("archive", "a").await, Check::New);
    first.remember("gw", "a").await;
    assert_eq!(
        second.check("gw", "a").await,
        Check::Duplicate { local: false }
    );
}

#[tokio::test]
async fn the_lease_of_a_holder_that_died_lapses_and_the_id_is_handled() {
    let store = Arc::new(FlakyStore::default());
    let lease = Duration::from_millis(50);
    let died = with(&store, StoreFailure::Open).lease(lease);
    let next = with(&store, StoreFailure::Open).lease(lease);
    assert_eq!(died.check("gw", "a").await, Check::New);
    assert_eq!(next.check("gw", "a").await, Check::InFlight);
    tokio::time::sleep(lease * 2).await;
    assert_eq!(next.check("gw", "a").await, Check::New);
}
