use aws_sdk_dynamodb::error::DisplayErrorContext;

/// Why the local emulator or the router could not do what a test or the stack asked.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// A service the local stack starts is not there: the variable naming it is unset or not a
    /// loopback address.
    #[error(
        "{var} is '{value}': run this through ./tests/run (or ./sandbox), which starts {service}"
    )]
    NotStarted {
        var: &'static str,
        value: String,
        service: &'static str,
    },

    /// A call to the emulator failed; `detail` is the SDK's whole error chain.
    #[error("{call}: {detail}")]
    Aws { call: String, detail: String },

    #[error("{request}: the router did not answer: {source}")]
    RouterUnreachable {
        request: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("{request}: the router answered {status}: {body}")]
    RouterRefused {
        request: String,
        status: reqwest::StatusCode,
        body: String,
    },
}

impl KitError {
    /// For `map_err`: an SDK call (or request builder) that failed, with its whole error chain.
    pub fn aws<E: std::error::Error>(call: impl Into<String>) -> impl FnOnce(E) -> KitError {
        let call = call.into();
        move |e| KitError::Aws {
            call,
            detail: DisplayErrorContext(&e).to_string(),
        }
    }
}
