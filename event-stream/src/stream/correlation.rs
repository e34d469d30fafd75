//! The correlation id of the handling in progress, for everything it produces: a
//! task-local set around each handler call (and a field of its tracing span).

use std::future::Future;

tokio::task_local! {
    static CORRELATION: String;
}

/// Runs `f` with `id` as the current correlation id.
pub async fn scope<F: Future>(id: String, f: F) -> F::Output {
    CORRELATION.scope(id, f).await
}

/// The correlation id of the handling this task runs, if any.
pub fn current() -> Option<String> {
    CORRELATION.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn inside_a_scope_the_id_is_there_and_outside_it_is_not() {
        assert_eq!(current(), None);
        let inside = scope("c-1".to_owned(), async { current() }).await;
        assert_eq!(inside.as_deref(), Some("c-1"));
        assert_eq!(current(), None);
    }
}
