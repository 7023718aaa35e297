//! Turns a streamed HTTP body into an [`EventStream`]: bytes through the SSE parser, SSE
//! events through a kind's [`Decoder`], typed events out. Reading stops at the decoder's
//! end marker; dropping the stream drops the body, which closes the upstream request.

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::sse::{SseEvent, SseParser};
use super::types::{EventStream, ProviderError, StreamEvent};

/// The most one SSE event may hold (a large tool-call argument fits many times over).
pub const MAX_EVENT: usize = 1 << 20;

/// What a provider kind does with each SSE event of its stream.
pub trait Decoder: Send + 'static {
    /// Translates one event; an error ends the stream.
    fn feed(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError>;
    /// The upstream's end marker was seen; the rest of the body is not read.
    fn done(&self) -> bool;
    /// The body ended: emit what a clean end implies, or say the answer was cut short.
    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError>;
}

struct State<B, D> {
    body: B,
    parser: SseParser,
    decoder: D,
    pending: VecDeque<Result<StreamEvent, ProviderError>>,
    over: bool,
    provider: String,
}

/// The typed events of `body`, decoded by `decoder`.
pub fn decode<B, D>(provider: &str, body: B, decoder: D) -> EventStream
where
    B: Stream<Item = Result<Bytes, ProviderError>> + Send + Unpin + 'static,
    D: Decoder,
{
    let state = State {
        body,
        parser: SseParser::new(MAX_EVENT),
        decoder,
        pending: VecDeque::new(),
        over: false,
        provider: provider.to_string(),
    };
    Box::pin(futures_util::stream::unfold(
        state,
        |mut state| async move {
            loop {
                if let Some(item) = state.pending.pop_front() {
                    return Some((item, state));
                }
                if state.over {
                    return None;
                }
                let mut out = Vec::new();
                let result = match state.body.next().await {
                    Some(Ok(chunk)) => feed_chunk(&mut state, &chunk, &mut out),
                    Some(Err(err)) => Err(err),
                    None => {
                        state.over = true;
                        state.parser.finish();
                        state.decoder.end(&mut out)
                    }
                };
                let provider = state.provider.clone();
                state.pending.extend(out.into_iter().map(Ok));
                if let Err(err) = result {
                    state.pending.push_back(Err(err.for_provider(&provider)));
                    state.over = true;
                }
                if state.decoder.done() {
                    state.over = true;
                }
            }
        },
    ))
}

fn feed_chunk<B, D: Decoder>(
    state: &mut State<B, D>,
    chunk: &[u8],
    out: &mut Vec<StreamEvent>,
) -> Result<(), ProviderError> {
    let events = state
        .parser
        .push(chunk)
        .map_err(|_| ProviderError::BadResponse {
            provider: String::new(),
            what: "an event stream that is not well formed or too large",
        })?;
    for event in events {
        state.decoder.feed(event, out)?;
        if state.decoder.done() {
            break;
        }
    }
    Ok(())
}
