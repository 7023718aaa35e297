//! An incremental parser for `text/event-stream` bodies (the WHATWG server-sent events
//! format) as LLM upstreams send them: bytes in, whole events out, with a bound on how
//! much an event may hold so an upstream cannot make us buffer without end. It knows
//! nothing of what the events mean and never touches the network.

/// One dispatched event: its `event:` name (empty when none was given) and its `data:`
/// lines joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Why a body is not an event stream we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an event is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the event stream is not UTF-8")]
    NotUtf8,
}

/// The parser's state between chunks of the body.
#[derive(Debug)]
pub struct SseParser {
    /// Bytes of the line not yet ended.
    line: Vec<u8>,
    /// A `\r` ended the last line; a `\n` right after it belongs to the same line end.
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
    limit: usize,
}

impl SseParser {
    /// A parser that refuses an event (its pending line plus its data) over `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            event: String::new(),
            data: String::new(),
            has_data: false,
            limit,
        }
    }

    /// Feeds the next chunk of the body; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut events = Vec::new();
        for &byte in chunk {
            match byte {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.end_line(&line)? {
                        events.push(event);
                    }
                }
                _ => {
                    self.after_cr = false;
                    self.line.push(byte);
                    if self.line.len().saturating_add(self.data.len()) > self.limit {
                        return Err(SseError::TooLarge(self.limit));
                    }
                }
            }
        }
        Ok(events)
    }

    /// The body ended. Per the format, an event not followed by a blank line is dropped;
    /// what remains tells the caller whether the body stopped mid-event.
    pub fn finish(&mut self) -> bool {
        let partial = !self.line.is_empty() || self.has_data;
        self.line.clear();
        self.data.clear();
        self.event.clear();
        self.has_data = false;
        partial
    }

    fn end_line(&mut self, line: &[u8]) -> Result<Option<SseEvent>, SseError> {
        if line.is_empty() {
            if !self.has_data {
                self.event.clear();
                return Ok(None);
            }
            self.has_data = false;
            return Ok(Some(SseEvent {
                event: std::mem::take(&mut self.event),
                data: std::mem::take(&mut self.data),
            }));
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                if self.data.len() > self.limit {
                    return Err(SseError::TooLarge(self.limit));
                }
            }
            "event" => value.clone_into(&mut self.event),
            // `id` and `retry` steer browser reconnection, which we never do.
            _ => {}
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(parser: &mut SseParser, body: &[u8]) -> Vec<SseEvent> {
        parser.push(body).unwrap()
    }

    #[test]
    fn events_split_anywhere_come_out_whole() {
        let body = b"event: message_start\ndata: {\"a\":1}\n\n: keep-alive\r\n\r\ndata: x\r\ndata: y\r\rdata:[DONE]\n\n";
        let whole = all(&mut SseParser::new(1024), body);
        assert_eq!(
            whole,
            vec![
                SseEvent {
                    event: "message_start".into(),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    event: String::new(),
                    data: "x\ny".into()
                },
                SseEvent {
                    event: String::new(),
                    data: "[DONE]".into()
                },
            ]
        );
        for split in 0..body.len() {
            let mut parser = SseParser::new(1024);
            let (a, b) = body.split_at(split);
            let mut events = all(&mut parser, a);
            events.extend(all(&mut parser, b));
            assert_eq!(events, whole, "split at {split}");
        }
    }

    #[test]
    fn an_endless_line_is_refused_not_buffered() {
        let mut parser = SseParser::new(64);
        let err = parser.push(&[b'a'; 100]).unwrap_err();
        assert_eq!(err, SseError::TooLarge(64));
        let mut parser = SseParser::new(64);
        let many: Vec<u8> = b"data: 0123456789\n".repeat(10);
        assert_eq!(parser.push(&many).unwrap_err(), SseError::TooLarge(64));
    }

    #[test]
    fn a_body_cut_mid_event_is_told_apart_from_a_clean_end() {
        let mut parser = SseParser::new(64);
        all(&mut parser, b"data: a\n\n");
        assert!(!parser.finish());
        all(&mut parser, b"data: b\n");
        assert!(parser.finish());
    }
}
