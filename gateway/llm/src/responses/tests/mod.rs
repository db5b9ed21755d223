//! Tests of the Responses dialect, with fixtures from OpenAI's API reference and guides (each
//! test names its page).

mod props;
mod render;
mod request;
mod stream;

use super::{ResponseContext, ResponsesRequest, parse_request};

fn request(body: &str) -> ResponsesRequest {
    parse_request(body.as_bytes()).unwrap()
}

/// The context of a response to `body`, as the gateway would choose it.
fn context(body: &str) -> ResponseContext {
    request(body).context("resp_abc", 1_741_476_542)
}
