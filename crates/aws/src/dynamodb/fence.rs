//! What a cancelled fenced transaction means: the lock was lost, or a conflict to retry. Kept
//! apart from the transactions themselves: it only reads the lock item.

use super::{FleetTable, SK_LOCK};
use crate::error::classify;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use pairscale_core::state::Fence;
use pairscale_core::{Error, FleetName};

impl FleetTable {
    /// A cancelled transaction: `Fenced` when the lock is no longer the fence's, otherwise
    /// classified as usual (a conflict is retryable).
    pub(super) async fn explain_cancel(
        &self,
        fleet: &FleetName,
        fence: &Fence,
        e: SdkError<TransactWriteItemsError, aws_smithy_runtime_api::http::Response>,
    ) -> Error {
        let cancelled = matches!(
            &e,
            SdkError::ServiceError(se) if matches!(se.err(), TransactWriteItemsError::TransactionCanceledException(_))
        );
        if !cancelled {
            return classify("dynamodb:TransactWriteItems", e);
        }
        match self.get(fleet, SK_LOCK).await {
            Ok(item) => {
                let holder = item
                    .as_ref()
                    .and_then(|i| i.get("holder"))
                    .and_then(|v| v.as_s().ok())
                    .cloned();
                let token = item
                    .as_ref()
                    .and_then(|i| i.get("token"))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if holder.as_deref() != Some(fence.owner.as_str()) || token != Some(fence.token) {
                    Error::Fenced {
                        fleet: fleet.to_string(),
                        presented: fence.token,
                        current: match (holder, token) {
                            (Some(h), Some(t)) => format!("held by {h} with token {t}"),
                            (None, Some(t)) => format!("not held; last token {t}"),
                            _ => "no lock".into(),
                        },
                    }
                } else {
                    // Still ours: a conflicting transaction on one of the items. Retry.
                    Error::Retryable {
                        operation: "dynamodb:TransactWriteItems".into(),
                        message: format!(
                            "transaction cancelled while the lock is still ours: {e:?}"
                        ),
                    }
                }
            }
            Err(read_err) => read_err,
        }
    }
}
