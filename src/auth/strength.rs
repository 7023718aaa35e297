//! How hard a password is to guess: a compact estimate, made where its list cannot stay.
//!
//! The estimate is a small cousin of zxcvbn's: the password is covered by the cheapest
//! sequence of guessable pieces, and the guesses an attacker needs are the product of
//! the pieces' guesses times the orderings of the pieces (`l!`, plus zxcvbn's additive
//! `10^4^(l-1)` for long chains). The pieces it knows are the 10,000 most common
//! passwords (by rank; also reversed, capitalised and in l33t spelling), the context
//! words (the username, rank 1), repeats (`abcabc`), sequences (`abcdef`, `97531`),
//! keyboard rows and columns (`qwertyuiop`, `1qaz2wsx`, `zaq1`, AZERTY and the number
//! pad), years and dates (`1987`, `31/12/1999`, `19991231`); anything else counts ten
//! guesses a character. The list is embedded as text (`common-passwords.txt`, see its
//! NOTICE) and built into a table only while a password is checked, so an idle process
//! never holds more than the pages it touched.
//!
//! A running gateway still asks a short-lived child, this same binary started with
//! [`HELPER_ARG`], so that even the check's short-lived table never lands in its heap.
//! Commands that end anyway (the CLI offline) estimate in their own process. The
//! password travels over the child's stdin, never its arguments or environment; the
//! child has an empty environment and a deadline. If the child cannot answer, the
//! estimate is made in-process (the same answer) and that is logged. This module never
//! logs or returns a password; [`super::password`] decides what the estimate means.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::secret::Secret;

/// The first argument that makes the binary a strength helper instead of the CLI.
pub const HELPER_ARG: &str = "__aisopod-password-strength";
/// The longest request a helper reads: a capped password and a few context words.
const MAX_REQUEST: u64 = 64 * 1024;
/// How long a helper may take before it is killed and the estimate made in-process.
const HELPER_DEADLINE: Duration = Duration::from_secs(10);

/// Where estimates are made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Estimator {
    /// In this process.
    #[default]
    InProcess,
    /// In a child: `program` started with [`HELPER_ARG`].
    Helper(PathBuf),
}

#[derive(Serialize, Deserialize)]
struct Request {
    password: String,
    context: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Answer {
    guesses_log10: f64,
}

impl Estimator {
    /// log10 of the guesses [`estimate`] says `password` needs; `context` holds words
    /// it must not be built from.
    pub fn guesses_log10(&self, password: &Secret, context: &[&str]) -> f64 {
        match self {
            Estimator::InProcess => in_process(password.expose(), context),
            Estimator::Helper(program) => match ask_helper(program, password, context) {
                Ok(answer) => answer,
                Err(reason) => {
                    tracing::warn!(%reason, helper = %program.display(), "the password strength helper failed; estimating in this process");
                    in_process(password.expose(), context)
                }
            },
        }
    }
}

fn in_process(password: &str, context: &[&str]) -> f64 {
    estimate(password, context)
}

fn ask_helper(program: &Path, password: &Secret, context: &[&str]) -> Result<f64, String> {
    let request = Secret::new(
        serde_json::to_string(&Request {
            password: password.expose().to_string(),
            context: context.iter().map(|c| c.to_string()).collect(),
        })
        .map_err(|e| e.to_string())?,
    );
    let mut child = Command::new(program)
        .arg(HELPER_ARG)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start it: {e}"))?;
    let written = child.stdin.take().ok_or("no stdin").and_then(|mut stdin| {
        stdin
            .write_all(request.expose().as_bytes())
            .map_err(|_| "cannot write to it")
    });
    let deadline = Instant::now() + HELPER_DEADLINE;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("it did not answer in time".into());
            }
        }
    };
    written?;
    let mut output = String::new();
    child
        .stdout
        .take()
        .ok_or("no stdout")?
        .take(4096)
        .read_to_string(&mut output)
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("it exited with {status}"));
    }
    let answer: Answer =
        serde_json::from_str(output.trim()).map_err(|_| "its answer is malformed".to_string())?;
    if answer.guesses_log10.is_finite() {
        Ok(answer.guesses_log10)
    } else {
        Err("its answer is not a number".into())
    }
}

/// Whether this process was started as a strength helper.
pub fn is_helper(args: &[std::ffi::OsString]) -> bool {
    args.get(1).is_some_and(|arg| arg == HELPER_ARG)
}

/// The helper: reads one request from stdin, prints the estimate, exits.
pub fn helper_main() -> ExitCode {
    let mut raw = String::new();
    let read = std::io::stdin().take(MAX_REQUEST).read_to_string(&mut raw);
    let raw = Secret::new(raw);
    let Ok(_) = read else {
        return ExitCode::FAILURE;
    };
    let Ok(request) = serde_json::from_str::<Request>(raw.expose()) else {
        return ExitCode::FAILURE;
    };
    let password = Secret::new(request.password);
    let context: Vec<&str> = request.context.iter().map(String::as_str).collect();
    let answer = Answer {
        guesses_log10: in_process(password.expose(), &context),
    };
    match serde_json::to_string(&answer) {
        Ok(line) if writeln!(std::io::stdout(), "{line}").is_ok() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// The 10,000 most common passwords, most common first, one a line (see the NOTICE).
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");
/// Only this many characters are analysed; a longer password is at least as strong as
/// its first 128 characters, and the cost of the analysis grows with the cube of this.
const MAX_ANALYSED_CHARS: usize = 128;
/// The longest context word looked up as one piece.
const MAX_WORD_CHARS: usize = 64;
/// zxcvbn's `MIN_GUESSES_BEFORE_GROWING_SEQUENCE`: a chain of `l` pieces costs at
/// least `10^4^(l-1)` guesses, since an attacker tries short chains first.
const CHAIN_LOG10: f64 = 4.0;
/// The fewest guesses a piece that is not the whole password counts for: 10 for one
/// character, 50 for more (zxcvbn's minima).
const MIN_SINGLE_LOG10: f64 = 1.0;
const MIN_MULTI_LOG10: f64 = 1.698_970_004_336_018_8;
/// Dates count the years around this one as the likeliest.
const REFERENCE_YEAR: i64 = 2025;
/// Keys on a keyboard, the start positions of a keyboard walk.
const KEYBOARD_KEYS: f64 = 47.0;
/// Keyboard lines a walk may follow, each also read backwards: rows, row after row,
/// column after column (top down and bottom up), the zigzag of the top two rows,
/// AZERTY's rows and the number pad's rows and columns.
const KEYBOARD_LINES: &[&str] = &[
    "`1234567890-=",
    "qwertyuiop[]\\",
    "asdfghjkl;'",
    "zxcvbnm,./",
    "qwertyuiopasdfghjklzxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/-['=]",
    "zaq1xsw2cde3vfr4bgt5nhy6mju7,ki8.lo9/;p0",
    "qazwsxedcrfvtgbyhnujmikolp",
    "1q2w3e4r5t6y7u8i9o0p",
    "q1w2e3r4t5y6u7i8o9p0",
    "azertyuiop",
    "qsdfghjklm",
    "wxcvbn",
    "7894561230",
    "147258369",
    "159357",
];
/// l33t spellings read back as letters; `1`, `!` and `|` are tried as both `i` and `l`.
const LEET: &[(char, char)] = &[
    ('4', 'a'),
    ('@', 'a'),
    ('8', 'b'),
    ('(', 'c'),
    ('{', 'c'),
    ('[', 'c'),
    ('<', 'c'),
    ('3', 'e'),
    ('6', 'g'),
    ('9', 'g'),
    ('0', 'o'),
    ('$', 's'),
    ('5', 's'),
    ('7', 't'),
    ('+', 't'),
    ('%', 'x'),
    ('2', 'z'),
];
const LEET_I_OR_L: &[char] = &['1', '!', '|'];

/// log10 of the guesses an attacker who knows the usual patterns needs for `password`,
/// never more than ten guesses a character. `context` holds words (the username) that
/// count as the first guess. Pure and bounded: any input, however long or strange,
/// gets an answer in a few milliseconds, and nothing derived from it outlives the call.
pub fn estimate(password: &str, context: &[&str]) -> f64 {
    let mut chars: Vec<char> = password.chars().take(MAX_ANALYSED_CHARS).collect();
    if chars.is_empty() {
        return 0.0;
    }
    let mut analysis = Analysis::new(context);
    let matches = analysis.matches(&chars, true);
    // Ten guesses a character always guess it (the brute force every piece is measured
    // against), so the ordering terms of the cover never lift the estimate above that: a
    // one-character password counts 10 guesses, not zxcvbn's 10 + 1.
    let guesses = cheapest_cover(chars.len(), &matches).min(chars.len() as f64);
    chars.zeroize();
    analysis.forget();
    guesses
}

/// A guessable piece of the password: characters `start..end` and log10 of its guesses.
#[derive(Debug, Clone, Copy)]
struct Piece {
    start: usize,
    end: usize,
    log10: f64,
}

/// The ranked words of one check, and the guesses of the repeated units seen so far.
struct Analysis<'a> {
    ranks: std::collections::HashMap<Cow<'a, str>, u32>,
    longest_word: usize,
    units: std::collections::HashMap<Vec<char>, f64>,
    key: String,
}

impl<'a> Analysis<'a> {
    fn new(context: &'a [&'a str]) -> Analysis<'a> {
        let mut ranks = std::collections::HashMap::with_capacity(10_016);
        let mut longest_word = 0;
        for (rank, word) in (1..).zip(COMMON_PASSWORDS.lines()) {
            longest_word = longest_word.max(word.chars().count());
            ranks.entry(Cow::Borrowed(word)).or_insert(rank);
        }
        let mut analysis = Analysis {
            ranks,
            longest_word: longest_word.min(MAX_WORD_CHARS),
            units: std::collections::HashMap::new(),
            key: String::new(),
        };
        for word in context {
            let length = word.chars().count();
            if (1..=MAX_WORD_CHARS).contains(&length) {
                let word: String = word.chars().map(lowercase).collect();
                analysis.ranks.insert(Cow::Owned(word), 1);
                analysis.longest_word = analysis.longest_word.max(length);
            }
        }
        analysis
    }

    fn rank(&self, key: &str) -> Option<u32> {
        self.ranks.get(key).copied()
    }

    fn forget(&mut self) {
        self.key.zeroize();
        for (word, _) in self.ranks.drain() {
            if let Cow::Owned(mut word) = word {
                word.zeroize();
            }
        }
        for (mut unit, _) in self.units.drain() {
            unit.zeroize();
        }
    }

    /// Every guessable piece of `chars`; repeats only at the top level (a repeated
    /// unit's own guesses come from the other patterns).
    fn matches(&mut self, chars: &[char], repeats: bool) -> Vec<Piece> {
        let lower: Vec<char> = chars.iter().map(|&c| lowercase(c)).collect();
        let mut pieces = Vec::new();
        self.dictionary(chars, &lower, &mut pieces);
        sequences(chars, &mut pieces);
        keyboard(chars, &mut pieces);
        dates(chars, &mut pieces);
        if repeats {
            self.repeats(chars, &mut pieces);
        }
        pieces
    }

    fn dictionary(&mut self, chars: &[char], lower: &[char], pieces: &mut Vec<Piece>) {
        for start in 0..lower.len() {
            let last = lower.len().min(start + self.longest_word);
            for end in start + 1..=last {
                let original = chars.get(start..end).unwrap_or_default();
                let word = lower.get(start..end).unwrap_or_default();
                if let Some(log10) = self.word_guesses(original, word) {
                    pieces.push(Piece { start, end, log10 });
                }
            }
        }
    }

    /// The cheapest reading of one stretch as a listed word: as typed, reversed, or in
    /// l33t; `None` if it is none of them.
    fn word_guesses(&mut self, original: &[char], word: &[char]) -> Option<f64> {
        let case = case_variations(original);
        let mut best: Option<f64> = None;
        let mut consider = |log10: f64| best = Some(best.map_or(log10, |b: f64| b.min(log10)));
        self.key.clear();
        self.key.extend(word.iter());
        if let Some(rank) = self.rank(&self.key) {
            consider(f64::from(rank).log10() + case);
        }
        if word.len() > 1 {
            self.key.clear();
            self.key.extend(word.iter().rev());
            if let Some(rank) = self.rank(&self.key) {
                consider(f64::from(rank).log10() + case + 2f64.log10());
            }
        }
        if word.iter().any(|c| leet(*c, 'i').is_some()) {
            for i_or_l in ['i', 'l'] {
                self.key.clear();
                self.key
                    .extend(word.iter().map(|&c| leet(c, i_or_l).unwrap_or(c)));
                if let Some(rank) = self.rank(&self.key) {
                    consider(f64::from(rank).log10() + case + leet_variations(word, i_or_l));
                }
            }
        }
        best
    }

    /// At each start, the longest run of the shortest unit repeated at least twice.
    fn repeats(&mut self, chars: &[char], pieces: &mut Vec<Piece>) {
        let n = chars.len();
        for start in 0..n {
            for period in 1..=(n - start) / 2 {
                let mut end = start + period;
                while end < n && chars.get(end) == chars.get(end - period) {
                    end += 1;
                }
                let count = (end - start) / period;
                if count < 2 {
                    continue;
                }
                let unit = chars.get(start..start + period).unwrap_or_default();
                let unit_log10 = match self.units.get(unit) {
                    Some(known) => *known,
                    None => {
                        let matches = self.matches(unit, false);
                        let log10 = cheapest_cover(unit.len(), &matches);
                        self.units.insert(unit.to_vec(), log10);
                        log10
                    }
                };
                pieces.push(Piece {
                    start,
                    end: start + count * period,
                    log10: unit_log10 + (count as f64).log10(),
                });
                break;
            }
        }
    }
}

/// A character's lowercase form, one character for one (so positions stay aligned).
fn lowercase(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// The letter a l33t character stands for, `i_or_l` for the ambiguous ones.
fn leet(c: char, i_or_l: char) -> Option<char> {
    if LEET_I_OR_L.contains(&c) {
        return Some(i_or_l);
    }
    LEET.iter().find(|(from, _)| *from == c).map(|(_, to)| *to)
}

/// log10 of the ways an attacker spells a word with the l33t substitutions found in
/// `word` (zxcvbn's count: for each substitution, the ways to choose which of the
/// letter's places were substituted).
fn leet_variations(word: &[char], i_or_l: char) -> f64 {
    let mut log10 = 0.0;
    let mut seen: Vec<char> = Vec::new();
    for &c in word {
        let Some(letter) = leet(c, i_or_l) else {
            continue;
        };
        if seen.contains(&c) {
            continue;
        }
        seen.push(c);
        let subbed = word.iter().filter(|&&x| x == c).count();
        let unsubbed = word.iter().filter(|&&x| x == letter).count();
        log10 += if unsubbed == 0 {
            2f64.log10()
        } else {
            choices_log10(subbed + unsubbed, subbed.min(unsubbed))
        };
    }
    log10
}

/// log10 of the capitalisations an attacker tries before this one: none for lowercase,
/// a factor 2 for the common ones (first letter, last letter, all), else the ways to
/// place this many capitals.
fn case_variations(word: &[char]) -> f64 {
    let upper = word.iter().filter(|c| c.is_uppercase()).count();
    let lower = word.iter().filter(|c| c.is_lowercase()).count();
    if upper == 0 {
        return 0.0;
    }
    let first_only = upper == 1 && word.first().is_some_and(|c| c.is_uppercase());
    let last_only = upper == 1 && word.last().is_some_and(|c| c.is_uppercase());
    if lower == 0 || first_only || last_only {
        return 2f64.log10();
    }
    choices_log10(upper + lower, upper.min(lower))
}

/// log10 of `sum(C(n, i) for i in 1..=k)`.
fn choices_log10(n: usize, k: usize) -> f64 {
    let mut term = 1.0f64;
    let mut sum = 0.0f64;
    for i in 1..=k {
        term = term * (n + 1 - i) as f64 / i as f64;
        sum += term;
    }
    sum.max(1.0).log10()
}

/// Runs of three or more characters a constant small step apart (`abc`, `97531`).
fn sequences(chars: &[char], pieces: &mut Vec<Piece>) {
    let step = |i: usize| -> Option<i64> {
        let a = i64::from(u32::from(*chars.get(i)?));
        let b = i64::from(u32::from(*chars.get(i + 1)?));
        Some(b - a)
    };
    let mut start = 0;
    while start + 2 < chars.len() {
        let delta = step(start).unwrap_or(0);
        let mut end = start + 2;
        while end < chars.len() && step(end - 1) == Some(delta) {
            end += 1;
        }
        if delta != 0 && delta.abs() <= 5 && end - start >= 3 {
            let first = chars.get(start).copied().unwrap_or('a');
            let mut base: f64 = if "aAzZ019".contains(first) {
                4.0
            } else if first.is_ascii_digit() {
                10.0
            } else {
                26.0
            };
            if delta < 0 {
                base *= 2.0;
            }
            pieces.push(Piece {
                start,
                end,
                log10: (base * (end - start) as f64).log10(),
            });
            start = end - 1;
        } else {
            start += 1;
        }
    }
}

/// The unshifted key of a character typed with shift on a US keyboard, and whether it
/// was shifted.
fn unshifted(c: char) -> (char, bool) {
    const SHIFTED: &str = "~!@#$%^&*()_+{}|:\"<>?";
    const PLAIN: &str = "`1234567890-=[]\\;',./";
    if let Some(i) = SHIFTED.chars().position(|s| s == c) {
        return (PLAIN.chars().nth(i).unwrap_or(c), true);
    }
    if c.is_ascii_uppercase() {
        return (c.to_ascii_lowercase(), true);
    }
    (c, false)
}

/// Stretches of three or more keys along a keyboard line, either way.
fn keyboard(chars: &[char], pieces: &mut Vec<Piece>) {
    let keys: Vec<(char, bool)> = chars.iter().map(|&c| unshifted(c)).collect();
    let lines = KEYBOARD_LINES.len() as f64 * 2.0;
    for start in 0..keys.len() {
        let mut longest = 0;
        for line in KEYBOARD_LINES {
            let line: Vec<char> = line.chars().collect();
            for backwards in [false, true] {
                let at = |i: usize| {
                    if backwards {
                        line.len().checked_sub(i + 1).and_then(|j| line.get(j))
                    } else {
                        line.get(i)
                    }
                };
                for offset in 0..line.len() {
                    let run = keys
                        .iter()
                        .skip(start)
                        .enumerate()
                        .take_while(|(k, (key, _))| at(offset + k) == Some(key))
                        .count();
                    longest = longest.max(run);
                }
            }
        }
        for end in start + 3..=start + longest {
            let stretch = keys.get(start..end).unwrap_or_default();
            let shifted = stretch.iter().filter(|(_, s)| *s).count();
            let shift = if shifted == 0 {
                0.0
            } else if shifted == stretch.len() {
                2f64.log10()
            } else {
                choices_log10(stretch.len(), shifted.min(stretch.len() - shifted))
            };
            pieces.push(Piece {
                start,
                end,
                log10: (lines * KEYBOARD_KEYS * (end - start) as f64).log10() + shift,
            });
        }
    }
}

/// Years (1900-2099) and dates: day, month and year in any usual order, with or
/// without one repeated separator.
fn dates(chars: &[char], pieces: &mut Vec<Piece>) {
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = chars.get(from..from + len)?;
        part.iter()
            .try_fold(0i64, |n, c| c.to_digit(10).map(|d| n * 10 + i64::from(d)))
    };
    let year_guesses = |year: i64| ((year - REFERENCE_YEAR).abs().max(20)) as f64;
    for start in 0..chars.len() {
        if let Some(year) = digits(start, 4).filter(|y| (1900..=2099).contains(y)) {
            pieces.push(Piece {
                start,
                end: start + 4,
                log10: year_guesses(year).log10(),
            });
        }
        // Without separators: 4 to 8 digits split into day, month and year.
        for len in 4..=8 {
            if digits(start, len).is_none() {
                break;
            }
            let mut best: Option<i64> = None;
            for (a, b) in splits(len) {
                let parts = [
                    digits(start, a),
                    digits(start + a, b),
                    digits(start + a + b, len - a - b),
                ];
                let [Some(x), Some(y), Some(z)] = parts else {
                    continue;
                };
                if let Some(year) = as_date([x, y, z], [a, b, len - a - b]) {
                    best = Some(best.map_or(year, |b: i64| {
                        if year_guesses(year) < year_guesses(b) {
                            year
                        } else {
                            b
                        }
                    }));
                }
            }
            if let Some(year) = best {
                pieces.push(Piece {
                    start,
                    end: start + len,
                    log10: (365.0 * year_guesses(year)).log10(),
                });
            }
        }
        // With separators: digits, separator, digits, the same separator, digits.
        if let Some((end, parts, lens)) = separated_date(chars, start)
            && let Some(year) = as_date(parts, lens)
        {
            pieces.push(Piece {
                start,
                end,
                log10: (4.0 * 365.0 * year_guesses(year)).log10(),
            });
        }
    }
}

/// The ways to cut `len` digits into three parts of 1-4 digits.
fn splits(len: usize) -> impl Iterator<Item = (usize, usize)> {
    (1..=4)
        .flat_map(move |a| (1..=4).map(move |b| (a, b)))
        .filter(move |(a, b)| a + b < len && len - a - b <= 4)
}

/// `a sep b sep c` at `start`: its end, the three numbers and their digit counts.
fn separated_date(chars: &[char], start: usize) -> Option<(usize, [i64; 3], [usize; 3])> {
    let number = |from: usize| -> Option<(i64, usize)> {
        let len = chars
            .iter()
            .skip(from)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if !(1..=4).contains(&len) {
            return None;
        }
        let value = chars
            .get(from..from + len)?
            .iter()
            .try_fold(0i64, |n, c| c.to_digit(10).map(|d| n * 10 + i64::from(d)))?;
        Some((value, len))
    };
    let (a, a_len) = number(start)?;
    let separator = *chars.get(start + a_len)?;
    if !" -/\\_.".contains(separator) {
        return None;
    }
    let (b, b_len) = number(start + a_len + 1)?;
    let second = start + a_len + 1 + b_len;
    if chars.get(second) != Some(&separator) {
        return None;
    }
    let (c, c_len) = number(second + 1)?;
    Some((second + 1 + c_len, [a, b, c], [a_len, b_len, c_len]))
}

/// The year of a plausible date read from three numbers, year first or last.
fn as_date(parts: [i64; 3], lens: [usize; 3]) -> Option<i64> {
    let [x, y, z] = parts;
    let [x_len, _, z_len] = lens;
    let day_month = |d: i64, m: i64| (1..=31).contains(&d) && (1..=12).contains(&m);
    let year = |value: i64, len: usize| match len {
        2 => Some(if value > 50 {
            1900 + value
        } else {
            2000 + value
        }),
        4 if (1000..=2050).contains(&value) => Some(value),
        _ => None,
    };
    if let Some(year) = year(z, z_len)
        && (day_month(x, y) || day_month(y, x))
    {
        return Some(year);
    }
    if let Some(year) = year(x, x_len)
        && (day_month(z, y) || day_month(y, z))
    {
        return Some(year);
    }
    None
}

/// log10 of the fewest guesses of any cover of `n` characters by pieces, with any
/// stretch no piece covers guessed at ten guesses a character (zxcvbn's search: the
/// product of the pieces' guesses, times `l!` for their order, plus `10^4^(l-1)`).
fn cheapest_cover(n: usize, pieces: &[Piece]) -> f64 {
    let mut ending: Vec<Vec<Piece>> = vec![Vec::new(); n + 1];
    for piece in pieces {
        if let Some(list) = ending.get_mut(piece.end) {
            list.push(*piece);
        }
    }
    let floor = |piece: &Piece| -> f64 {
        if piece.start == 0 && piece.end == n {
            piece.log10
        } else if piece.end - piece.start == 1 {
            piece.log10.max(MIN_SINGLE_LOG10)
        } else {
            piece.log10.max(MIN_MULTI_LOG10)
        }
    };
    // best[j][l]: log10 of the fewest guesses of the first j characters as l pieces.
    let mut best = vec![vec![f64::INFINITY; n + 1]; n + 1];
    if let Some(first) = best.get_mut(0).and_then(|row| row.get_mut(0)) {
        *first = 0.0;
    }
    for end in 1..=n {
        for count in 1..=end {
            let mut cheapest = f64::INFINITY;
            for start in 0..end {
                let before = best.get(start).and_then(|row| row.get(count - 1));
                if let Some(before) = before.filter(|b| b.is_finite()) {
                    let brute = Piece {
                        start,
                        end,
                        log10: (end - start) as f64,
                    };
                    cheapest = cheapest.min(before + floor(&brute));
                }
            }
            for piece in ending.get(end).map(Vec::as_slice).unwrap_or_default() {
                let before = best.get(piece.start).and_then(|row| row.get(count - 1));
                if let Some(before) = before.filter(|b| b.is_finite()) {
                    cheapest = cheapest.min(before + floor(piece));
                }
            }
            if let Some(cell) = best.get_mut(end).and_then(|row| row.get_mut(count)) {
                *cell = cheapest;
            }
        }
    }
    let mut answer = f64::INFINITY;
    let mut factorial_log10 = 0.0;
    for (count, product) in best.get(n).into_iter().flatten().enumerate().skip(1) {
        factorial_log10 += (count as f64).log10();
        if product.is_finite() {
            let chain = CHAIN_LOG10 * (count - 1) as f64;
            answer = answer.min(log10_sum(factorial_log10 + product, chain));
        }
    }
    answer
}

/// log10(10^a + 10^b) without overflow.
fn log10_sum(a: f64, b: f64) -> f64 {
    let (high, low) = if a > b { (a, b) } else { (b, a) };
    high + (1.0 + 10f64.powf(low - high)).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weak(password: &str) -> bool {
        estimate(password, &["alice"]) < 10.0
    }

    #[test]
    fn the_common_list_is_whole_and_ranked() {
        let words: Vec<&str> = COMMON_PASSWORDS.lines().collect();
        assert_eq!(words.len(), 10_000);
        assert_eq!(words.first(), Some(&"123456"));
        assert!(
            estimate("123456", &[]) < 0.5,
            "the most common password is among the first guesses"
        );
        assert!(estimate("password", &[]) < 0.5);
    }

    #[test]
    fn every_pattern_is_refused_when_it_makes_up_the_password() {
        for password in [
            // listed, capitalised, reversed, l33t, and chains of listed words
            "passwordpassword",
            "Password12345678",
            "drowssapdrowssap",
            "P@ssw0rdP@ssw0rd",
            "dragonfootballmonkey",
            "iloveyouiloveyou",
            // the context word
            "alicealicealice1",
            "ALICEalice12345",
            // repeats, sequences, keyboard lines
            "aaaaaaaaaaaaaaaa",
            "abcabcabcabcabca",
            "abcdefghijklmnop",
            "123456789012345",
            "zyxwvutsrqponmlk",
            "13579135791357",
            "qwertyuiopasdfgh",
            "1qaz2wsx3edc4rfv",
            "zaq1xsw2cde3vfr4",
            "!QAZ@WSX#EDC$RFV",
            "poiuytrewqlkjhgf",
            // dates and years
            "31/12/1999monkey",
            "19870412dragon1",
            "monkey1987dragon",
        ] {
            assert!(
                weak(password),
                "{password} accepted at {}",
                estimate(password, &["alice"])
            );
        }
    }

    #[test]
    fn passphrases_and_random_strings_pass() {
        for password in [
            "correct horse battery staple",
            "plinth-ocarina-sleet-mural",
            "Tz8#kq!2vW9@pLr0",
            "walrus cinnamon lantern quietly",
            "ñandú-sobre-el-hielo-azul",
            "g7Rm2xQp9wLz4vKs",
        ] {
            assert!(
                !weak(password),
                "{password} refused at {}",
                estimate(password, &["alice"])
            );
        }
    }

    #[test]
    fn the_estimate_is_bounded_by_brute_force_and_handles_any_input() {
        for password in [
            "",
            "\0\0\0",
            "🔑🔑🔑🔑🔑🔑",
            "İİİİİİİİİİİİİİİ",
            &"9".repeat(1_000),
            &"ab1!".repeat(200),
        ] {
            let log10 = estimate(password, &["", "İstanbul", &"x".repeat(500)]);
            let length = password.chars().count().min(MAX_ANALYSED_CHARS) as f64;
            assert!(
                log10.is_finite() && (0.0..=length).contains(&log10),
                "{log10}"
            );
        }
        assert!(estimate(&"9".repeat(1_000), &[]) < 10.0);
    }

    /// Found by the `password_strength` fuzz target: a one-character password (any, with
    /// or without context words) was estimated at log10(10 + 1), above the ten guesses a
    /// character that brute force needs. Random text is now exactly its brute force.
    #[test]
    fn short_random_text_counts_exactly_ten_guesses_a_character() {
        for (password, length) in [
            ("h", 1.0),
            ("\0", 1.0),
            ("🔑", 1.0),
            ("q7", 2.0),
            ("h7&", 3.0),
        ] {
            assert_eq!(estimate(password, &[]), length, "{password:?}");
            assert_eq!(
                estimate(password, &["", "password123"]),
                length,
                "{password:?}"
            );
        }
        assert_eq!(estimate("x9$Kq2!vZr", &[]), 10.0);
    }

    #[test]
    fn the_context_words_count_in_any_case() {
        assert!(estimate("Winterbottom2024!", &["winterbottom"]) < 10.0);
        assert!(estimate("winterbottom2024!", &["WinterBottom"]) < 10.0);
        assert!(estimate("winterbottom2024!", &[]) >= 10.0);
    }
}
