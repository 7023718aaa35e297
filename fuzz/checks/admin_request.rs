//! Fuzz check: the admin socket's request parser reads any line without panicking, and
//! every refusal carries an answer the sender can read. Arbitrary bytes are read as
//! lossy UTF-8, as the gateway's line reader would hand them over. An accepted request
//! must survive being written back and read again as the same command.

use aisopod::admin::protocol::{RequestLine, parse_reply, parse_request};

/// Runs the check on one input; panics on a broken promise.
pub fn run(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    match parse_request(&line) {
        Ok(request) => {
            let name = request.name();
            let again = serde_json::to_string(&RequestLine::new(request))
                .unwrap_or_else(|e| panic!("an accepted request did not encode: {e}"));
            match parse_request(&again) {
                Ok(back) => assert_eq!(back.name(), name),
                Err((error, _)) => panic!("an accepted request did not parse back: {error}"),
            }
        }
        Err((_, answer)) => {
            let answer = String::from_utf8_lossy(&answer);
            assert!(answer.ends_with('\n'), "an answer is one line");
            // Either this protocol's error line or 0.1.0's shape; never garbage.
            let ours = parse_reply(&answer).is_ok();
            let legacy = serde_json::from_str::<serde_json::Value>(&answer)
                .is_ok_and(|v| v["ok"] == false && v["error"].is_string());
            assert!(ours || legacy, "unreadable answer: {answer}");
        }
    }
}
