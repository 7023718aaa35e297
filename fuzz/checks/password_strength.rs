//! Fuzz check: the password-strength estimate answers any password and context words
//! without panicking, quickly, and never above ten guesses a character (the brute-force
//! bound it promises). Bytes up to the first NUL are the password (lossy UTF-8), the
//! rest are context words separated by NULs.

use aisopod::auth::strength::estimate;

/// Runs the check on one input; panics on a broken promise.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let password = parts.next().unwrap_or_default();
    let context: Vec<&str> = parts.collect();
    let log10 = estimate(password, &context);
    let analysed = password.chars().count().min(128) as f64;
    assert!(log10.is_finite(), "not a number for {password:?}");
    assert!(
        (0.0..=analysed).contains(&log10),
        "{log10} outside 0..={analysed} for {password:?}"
    );
}
