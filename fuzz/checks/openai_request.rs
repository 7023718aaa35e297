//! Fuzz check: the OpenAI-compatible API's request parsers (`/v1/chat/completions` and
//! `/v1/responses` bodies) read any bytes without panicking. A refusal is always a 400
//! with a message; an accepted request stays within the caps (messages, tools) and, for
//! chat, holds at least one message.

use aisopod::server::openai::request::{MAX_MESSAGES, MAX_TOOLS, parse_chat, parse_responses};

/// Runs the check on one input; panics on a broken promise.
pub fn run(data: &[u8]) {
    match parse_chat(data) {
        Ok(call) => {
            let count = call.request.messages.len();
            assert!(
                (1..=MAX_MESSAGES).contains(&count),
                "{count} messages accepted"
            );
            assert!(call.request.tools.len() <= MAX_TOOLS);
            assert!(!call.model.is_empty());
            assert!(!call.include_usage || call.stream);
        }
        Err(err) => {
            assert_eq!(err.status().as_u16(), 400, "{err}");
            assert!(!err.to_string().is_empty());
        }
    }
    match parse_responses(data) {
        Ok(call) => {
            // Instructions add one system message in front of the capped input.
            assert!(call.request.messages.len() <= MAX_MESSAGES + 1);
            assert!(call.request.tools.len() <= MAX_TOOLS);
        }
        Err(err) => {
            assert_eq!(err.status().as_u16(), 400, "{err}");
            assert!(!err.to_string().is_empty());
        }
    }
}
