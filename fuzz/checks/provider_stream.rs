//! Fuzz check: what an LLM upstream sends is read without panicking. The first byte
//! picks the kind (OpenAI or Anthropic) and where the body is split into two reads; the
//! rest is fed as a streamed body through the SSE parser and the kind's stream decoder,
//! and also read as a whole (non-streamed) answer. The decoded events must keep their
//! promises: a tool call's deltas and end only after its start, indices from 0 in order,
//! nothing after `Finish`.

use aisopod::gateway::providers::sse::SseParser;
use aisopod::gateway::providers::{Completion, Decoder, StreamEvent, anthropic, openai};

fn check(decoder: &mut dyn Decoder, first: &[u8], second: &[u8]) {
    let mut parser = SseParser::new(4096);
    let mut events = Vec::new();
    'feed: for chunk in [first, second] {
        let Ok(sse) = parser.push(chunk) else { return };
        for event in sse {
            if decoder.feed(event, &mut events).is_err() {
                break 'feed;
            }
            if decoder.done() {
                break 'feed;
            }
        }
    }
    if !decoder.done() {
        let _ = decoder.end(&mut events);
    }
    let mut started = 0usize;
    let mut finished = false;
    let mut completion = Completion::default();
    for event in &events {
        assert!(!finished, "an event after Finish: {events:?}");
        match event {
            StreamEvent::ToolCallStart { index, .. } => {
                assert_eq!(*index, started, "tool calls numbered in order");
                started += 1;
            }
            StreamEvent::ToolCallDelta { index, .. } | StreamEvent::ToolCallEnd { index } => {
                assert!(*index < started, "a tool call used before its start");
            }
            StreamEvent::Finish(_) => finished = true,
            StreamEvent::TextDelta(_) | StreamEvent::Usage(_) => {}
        }
        completion.apply(event);
    }
    assert_eq!(completion.tool_calls.len(), started);
}

/// Runs the check on one input; panics on a broken promise.
pub fn run(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let split = usize::from(selector >> 1).min(body.len());
    let (first, second) = body.split_at(split);
    if selector & 1 == 0 {
        check(&mut openai::StreamDecoder::default(), first, second);
        let _ = openai::parse_completion(body);
        let _ = openai::parse_models(body);
    } else {
        check(&mut anthropic::StreamDecoder::default(), first, second);
        let _ = anthropic::parse_completion(body);
    }
}
