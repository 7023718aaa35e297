//! Server-sent events for the OpenAI-compatible routes: one driver reads a stream of
//! internal events, hands each to the API's own [`Frames`] (chat chunks or `response.*`
//! events), and writes what they make, with a comment line after each `keepalive` of
//! silence. An error ends the stream with the API's error event, never with an
//! upstream's text. Dropping the answer (the client went away) drops the source, which
//! cancels the upstream request. It never decides what a frame says.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use http::HeaderValue;

use super::error::OpenAiError;
use crate::gateway::providers::{Completion, StreamEvent};

/// What one API writes for each step of a streamed answer.
pub trait Frames: Send + 'static {
    fn event(&mut self, event: &StreamEvent) -> Vec<Event>;
    /// The answer ended well; `completion` is all of it.
    fn finish(&mut self, completion: &Completion) -> Vec<Event>;
    /// The answer failed after the stream had started.
    fn fail(&mut self, error: &OpenAiError) -> Vec<Event>;
}

/// The events as one `data:` line of JSON each (and an `event:` name when given).
pub fn json_event(name: Option<&str>, data: &serde_json::Value) -> Event {
    let event = Event::default().data(data.to_string());
    match name {
        Some(name) => event.event(name),
        None => event,
    }
}

/// Sets `key` of a JSON object (a no-op on anything else).
pub fn set(target: &mut serde_json::Value, key: &str, value: serde_json::Value) {
    if let Some(object) = target.as_object_mut() {
        object.insert(key.to_string(), value);
    }
}

struct Drive<S, F, D> {
    source: Option<S>,
    frames: F,
    queue: VecDeque<Event>,
    completion: Completion,
    done: Option<D>,
    /// What a source that ends without a finish counts as.
    ended_early: OpenAiError,
}

/// Streams `source` through `frames`, after `first`. `done` runs once with the whole
/// answer when it ended well (before the closing frames are written), and never when
/// it failed.
pub fn respond<S, F, D>(
    first: Vec<Event>,
    source: S,
    frames: F,
    keepalive: Duration,
    ended_early: OpenAiError,
    done: D,
) -> Response
where
    S: Stream<Item = Result<StreamEvent, OpenAiError>> + Send + Unpin + 'static,
    F: Frames,
    D: FnOnce(&Completion) + Send + 'static,
{
    let state = Drive {
        source: Some(source),
        frames,
        queue: first.into(),
        completion: Completion::default(),
        done: Some(done),
        ended_early,
    };
    let events = futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.queue.pop_front() {
                return Some((Ok::<_, Infallible>(event), state));
            }
            let source = state.source.as_mut()?;
            match source.next().await {
                Some(Ok(event)) => {
                    state.completion.apply(&event);
                    let frames = state.frames.event(&event);
                    state.queue.extend(frames);
                }
                Some(Err(error)) => {
                    state.source = None;
                    let frames = state.frames.fail(&error);
                    state.queue.extend(frames);
                }
                None => {
                    state.source = None;
                    if state.completion.finish.is_some() {
                        if let Some(done) = state.done.take() {
                            done(&state.completion);
                        }
                        let frames = state.frames.finish(&state.completion);
                        state.queue.extend(frames);
                    } else {
                        let frames = state.frames.fail(&state.ended_early);
                        state.queue.extend(frames);
                    }
                }
            }
        }
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(keepalive).text("keep-alive"))
        .into_response();
    // Tells a buffering reverse proxy (nginx) to pass each event on at once.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
