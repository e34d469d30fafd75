//! Admission of a load: one load per series at a time, and a command delivered twice
//! starts nothing new. The check and the start happen under one lock, so two requests
//! racing for the same series cannot both start.

use std::sync::PoisonError;

use data_host::InstrumentType;
use host_service_base::HostError;
use host_service_base::operations::{OperationFilter, OperationInfo};
use serde_json::json;

use super::{DataManager, LOAD_OPERATION, LoadSpec};

impl DataManager {
    /// Starts the load of a validated request ([`LoadRequest::validate`]); nothing
    /// starts when a load of the same series is already running (409).
    pub fn start_load(&self, spec: LoadSpec) -> Result<OperationInfo, HostError> {
        let handle = {
            let _admission = self
                .inner
                .admission
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let running = OperationFilter {
                operation_type: Some(LOAD_OPERATION.to_owned()),
                active_only: true,
                ..OperationFilter::default()
            };
            // A command delivered again: its operation exists, nothing starts.
            if let Some(existing) = spec
                .operation_id
                .as_deref()
                .and_then(|id| self.inner.ops.get(id))
            {
                return Ok(existing);
            }
            let (active, _, _) = self.inner.ops.list(&running);
            if let Some(op) = active.iter().find(|op| {
                op.metadata["symbol"] == spec.symbol.as_str()
                    && op.metadata["timeframe"] == spec.timeframe.as_str()
            }) {
                return Err(HostError::Conflict {
                    message: format!(
                        "a load of {} {} is already running ({}); cancel it or wait",
                        spec.symbol, spec.timeframe, op.operation_id
                    ),
                });
            }
            let metadata = json!({
                "symbol": spec.symbol.as_str(),
                "timeframe": spec.timeframe.as_str(),
                "mode": spec.mode.as_str(),
                "start_date": spec.start.map(|t| t.to_rfc3339()),
                "end_date": spec.end.map(|t| t.to_rfc3339()),
                "instrument_type": spec.instrument_type.map(InstrumentType::as_str),
                "source": self.inner.provider.name(),
                "correlation_id": spec.correlation_id,
            });
            match &spec.operation_id {
                Some(id) => self
                    .inner
                    .ops
                    .create_with_id(id, LOAD_OPERATION, metadata)?,
                None => self.inner.ops.create(LOAD_OPERATION, metadata),
            }
        };
        let info = handle.info();
        let manager = self.clone();
        self.inner.ops.tracker().spawn(async move {
            manager.run_load(handle, spec).await;
        });
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{manager, spec};

    #[tokio::test]
    async fn a_second_load_of_a_running_series_is_a_conflict_naming_the_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = manager(dir.path());
        let first = data.start_load(spec("AAPL", "1h")).expect("starts");
        let second = data.start_load(spec("aapl", "1h")).expect_err("refused");
        assert_eq!(second.status(), 409);
        assert!(second.to_string().contains(&first.operation_id), "{second}");
        // Another series of the same symbol is not held up.
        data.start_load(spec("AAPL", "1d"))
            .expect("another timeframe starts");
    }

    #[tokio::test]
    async fn a_command_delivered_again_gets_its_operation_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = manager(dir.path());
        let mut once = spec("MSFT", "1d");
        once.operation_id = Some("op_command_1".into());
        let first = data.start_load(once.clone()).expect("starts");
        let again = data.start_load(once).expect("the same operation");
        assert_eq!(again.operation_id, first.operation_id);
        assert_eq!(first.metadata["symbol"], "MSFT");
    }
}
