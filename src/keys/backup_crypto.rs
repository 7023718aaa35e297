//! Backup encryption: the envelope that seals a backup file under a passphrase, and the
//! same envelope under a one-time key that carries a live snapshot from the gateway to
//! the CLI.
//!
//! A backup is streamed through [`Encryptor`] and [`Decryptor`] in chunks, so a store of
//! any size never has to fit in memory. The construction is STREAM (Hoang, Reyhanitabar,
//! Rogaway and Vizár, "Online authenticated-encryption and its nonce-reuse
//! misuse-resistance", 2015), as in `age`: each chunk is sealed with ChaCha20-Poly1305
//! under a nonce made of a random per-file prefix, the chunk's index and a flag that
//! marks the last chunk, so a reordered, dropped, repeated or truncated chunk fails
//! authentication, and a file cut at a chunk boundary is told from a damaged one.
//!
//! File format, version 1 (integers big-endian):
//!
//! ```text
//! offset size  field
//!      0    8  magic "AISOPBAK"
//!      8    1  format version: 1
//!      9    1  key source: 1 = argon2id(passphrase), 2 = one-time key (live snapshots only)
//!     10    4  argon2id memory in KiB   (0 for a one-time key)
//!     14    4  argon2id iterations      (0 for a one-time key)
//!     18    4  argon2id lanes           (0 for a one-time key)
//!     22   16  salt (random)
//!     38    7  nonce prefix (random)
//!     45    4  chunk size: plaintext bytes per chunk (65536)
//!     49   32  key check
//!     81    …  chunks: ChaCha20-Poly1305(plaintext chunk) ‖ 16-byte tag
//! ```
//!
//! Keys: `ikm` is argon2id(passphrase, salt, memory, iterations, lanes) (32 bytes) or the
//! one-time key; HKDF-SHA256 with the salt then gives the chunk key (info
//! `aisopod/v1/backup/key`) and the key check (info `aisopod/v1/backup/check`), which
//! tells a wrong passphrase from a damaged file without decrypting anything (guessing
//! costs the same argon2id either way). Chunk `i` (from 0) uses the nonce
//! `prefix ‖ u32(i) ‖ last` (`last` = 1 for the final chunk, else 0) and the whole 81-byte
//! header as associated data, so no header field can be changed either. Every chunk but
//! the last holds exactly `chunk size` bytes of plaintext; the last holds 0 to `chunk
//! size`, and a file always ends with one.
//!
//! The plaintext is the store's archive stream (see `store::backup`). This module never
//! sees what it seals, never logs passphrases or keys, and holds them in types that are
//! zeroed on drop.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::fsutil::IoError;
use crate::secret::{Secret, SecretBytes};
use crate::store::Store;
use crate::store::backup::{BackupError, SnapshotStats};

const MAGIC: &[u8; 8] = b"AISOPBAK";
const FORMAT_VERSION: u8 = 1;
const SOURCE_PASSPHRASE: u8 = 1;
const SOURCE_ONE_TIME_KEY: u8 = 2;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 81;
const SALT_LEN: usize = 16;
const PREFIX_LEN: usize = 7;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;
/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: u32 = 64 * 1024;
/// Chunk sizes a reader accepts (a header field an attacker controls).
const CHUNK_SIZES: std::ops::RangeInclusive<u32> = 1024..=(1024 * 1024);
/// Shortest passphrase accepted for a new backup, in characters (the account password
/// rule: a passphrase is the only thing between a stolen backup and every key in it).
pub const MIN_PASSPHRASE_CHARS: usize = 15;
/// Where the gateway leaves live snapshots for the CLI, under the data directory.
pub const SNAPSHOT_DIR: &str = "backup-tmp";
/// Snapshots older than this are left over from a CLI that died; they are removed.
const SNAPSHOT_MAX_AGE: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum BackupCryptoError {
    #[error("not an aisopod backup (the file does not start with the backup header)")]
    NotABackup,
    #[error("backup format version {0} is not supported by this aisopod (it reads version 1)")]
    UnsupportedVersion(u8),
    #[error("the backup header is damaged: {0}")]
    BadHeader(&'static str),
    #[error("this file is a live snapshot in transit, not a backup made with a passphrase")]
    NotPassphraseSealed,
    #[error("wrong passphrase (or a damaged header): the backup cannot be opened")]
    WrongPassphrase,
    #[error(
        "the backup is damaged: chunk {chunk} (at byte {offset}) fails authentication; it was changed or corrupted"
    )]
    Damaged { chunk: u32, offset: u64 },
    /// The last chunk fails: a cut inside a chunk looks the same as damage to it.
    #[error(
        "the backup is damaged or truncated: its last chunk {chunk} (at byte {offset}) fails authentication"
    )]
    DamagedEnd { chunk: u32, offset: u64 },
    #[error(
        "the backup is truncated: it ends after {chunks} chunk(s) without its final chunk (an interrupted copy?)"
    )]
    Truncated { chunks: u32 },
    #[error("the backup holds more data after its end")]
    TrailingData,
    #[error("the backup is too large for format version 1 (over 2^32 chunks)")]
    TooLarge,
    #[error(
        "the passphrase is too short: use at least {MIN_PASSPHRASE_CHARS} characters (a few unrelated words work well)"
    )]
    WeakPassphrase,
    #[error("key derivation failed: {0}")]
    Kdf(String),
    #[error("the system random number generator failed")]
    Random,
    /// Reading or writing the stream the envelope was given. The envelope knows no file
    /// name (it may be a socket or a pipe): the caller that opened the stream names it.
    #[error("{op} failed: {source}")]
    Stream {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A file of a live snapshot, named with the operation.
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Snapshot(#[from] BackupError),
}

impl BackupCryptoError {
    fn stream(op: &'static str) -> impl FnOnce(std::io::Error) -> BackupCryptoError {
        move |source| BackupCryptoError::Stream { op, source }
    }

    /// The envelope error carried inside an `io::Error` from [`Decryptor`]'s `Read`.
    pub fn from_io(err: &std::io::Error) -> Option<&BackupCryptoError> {
        err.get_ref()
            .and_then(|inner| inner.downcast_ref::<BackupCryptoError>())
    }
}

/// argon2id cost: memory in KiB, iterations, lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KdfCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub lanes: u32,
}

impl Default for KdfCost {
    /// 64 MiB, 3 passes, 1 lane (RFC 9106's second recommendation, single-threaded):
    /// about a second on a Raspberry Pi 4, once per backup or restore.
    fn default() -> Self {
        KdfCost {
            memory_kib: 64 * 1024,
            iterations: 3,
            lanes: 1,
        }
    }
}

impl KdfCost {
    /// Refuses costs a hostile header could use to exhaust the machine.
    fn check(self) -> Result<Self, BackupCryptoError> {
        let ok = (8..=1024 * 1024).contains(&self.memory_kib)
            && (1..=64).contains(&self.iterations)
            && (1..=16).contains(&self.lanes)
            && self.memory_kib >= 8 * self.lanes;
        if ok {
            Ok(self)
        } else {
            Err(BackupCryptoError::BadHeader(
                "its key derivation cost is out of range",
            ))
        }
    }
}

/// Refuses a passphrase too short for a new backup.
pub fn check_passphrase(passphrase: &Secret) -> Result<(), BackupCryptoError> {
    if passphrase.expose().chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(BackupCryptoError::WeakPassphrase);
    }
    Ok(())
}

/// What a header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderInfo {
    pub version: u8,
    /// `None` for a one-time key.
    pub kdf: Option<KdfCost>,
    pub chunk_size: u32,
}

struct Keys {
    aead: LessSafeKey,
    check: SecretBytes,
}

struct Len32;

impl ring::hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        KEY_LEN
    }
}

fn derive_keys(ikm: &[u8], salt: &[u8]) -> Result<Keys, BackupCryptoError> {
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(ikm);
    let expand = |info: &'static [u8]| -> Result<SecretBytes, BackupCryptoError> {
        let mut out = vec![0u8; KEY_LEN];
        prk.expand(&[info], Len32)
            .and_then(|okm| okm.fill(&mut out))
            .map_err(|_| BackupCryptoError::Kdf("HKDF expansion failed".into()))?;
        Ok(SecretBytes::new(out))
    };
    let key = expand(b"aisopod/v1/backup/key")?;
    let check = expand(b"aisopod/v1/backup/check")?;
    let aead = UnboundKey::new(&aead::CHACHA20_POLY1305, key.expose())
        .map(LessSafeKey::new)
        .map_err(|_| BackupCryptoError::Kdf("the AEAD refused the key".into()))?;
    Ok(Keys { aead, check })
}

fn argon2id(
    passphrase: &Secret,
    salt: &[u8],
    cost: KdfCost,
) -> Result<SecretBytes, BackupCryptoError> {
    let params = argon2::Params::new(cost.memory_kib, cost.iterations, cost.lanes, Some(KEY_LEN))
        .map_err(|e| BackupCryptoError::Kdf(e.to_string()))?;
    let mut out = vec![0u8; KEY_LEN];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase.expose().as_bytes(), salt, &mut out)
        .map_err(|e| BackupCryptoError::Kdf(e.to_string()))?;
    Ok(SecretBytes::new(out))
}

/// A fixed-size header, parsed or about to be written.
struct Header {
    bytes: [u8; HEADER_LEN],
}

impl Header {
    fn new(
        source: u8,
        kdf: Option<KdfCost>,
        salt: &[u8; SALT_LEN],
        prefix: &[u8; PREFIX_LEN],
    ) -> Header {
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.extend_from_slice(MAGIC);
        out.push(FORMAT_VERSION);
        out.push(source);
        let cost = kdf.unwrap_or(KdfCost {
            memory_kib: 0,
            iterations: 0,
            lanes: 0,
        });
        out.extend_from_slice(&cost.memory_kib.to_be_bytes());
        out.extend_from_slice(&cost.iterations.to_be_bytes());
        out.extend_from_slice(&cost.lanes.to_be_bytes());
        out.extend_from_slice(salt);
        out.extend_from_slice(prefix);
        out.extend_from_slice(&CHUNK_SIZE.to_be_bytes());
        out.resize(HEADER_LEN, 0);
        let mut bytes = [0u8; HEADER_LEN];
        bytes.copy_from_slice(&out);
        Header { bytes }
    }

    fn field(&self, at: usize, len: usize) -> &[u8] {
        self.bytes.get(at..at + len).unwrap_or_default()
    }

    fn u32_at(&self, at: usize) -> u32 {
        let mut raw = [0u8; 4];
        raw.copy_from_slice(self.field(at, 4));
        u32::from_be_bytes(raw)
    }

    fn source(&self) -> u8 {
        self.bytes[9]
    }

    fn salt(&self) -> &[u8] {
        self.field(22, SALT_LEN)
    }

    fn prefix(&self) -> [u8; PREFIX_LEN] {
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(self.field(38, PREFIX_LEN));
        prefix
    }

    fn chunk_size(&self) -> u32 {
        self.u32_at(45)
    }

    fn check(&self) -> &[u8] {
        self.field(49, KEY_LEN)
    }

    fn set_check(&mut self, check: &[u8]) {
        if let Some(slot) = self.bytes.get_mut(49..49 + KEY_LEN) {
            slot.copy_from_slice(check);
        }
    }

    fn kdf(&self) -> KdfCost {
        KdfCost {
            memory_kib: self.u32_at(10),
            iterations: self.u32_at(14),
            lanes: self.u32_at(18),
        }
    }

    fn read(input: &mut impl Read) -> Result<Header, BackupCryptoError> {
        let mut bytes = [0u8; HEADER_LEN];
        let mut filled = 0;
        while filled < HEADER_LEN {
            let n = input
                .read(bytes.get_mut(filled..).unwrap_or_default())
                .map_err(BackupCryptoError::stream("reading the backup header"))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled < MAGIC.len() || bytes.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
            return Err(BackupCryptoError::NotABackup);
        }
        if filled < HEADER_LEN {
            return Err(BackupCryptoError::BadHeader("it is cut short"));
        }
        let header = Header { bytes };
        if header.bytes[8] != FORMAT_VERSION {
            return Err(BackupCryptoError::UnsupportedVersion(header.bytes[8]));
        }
        if !CHUNK_SIZES.contains(&header.chunk_size()) {
            return Err(BackupCryptoError::BadHeader(
                "its chunk size is out of range",
            ));
        }
        Ok(header)
    }

    fn info(&self) -> HeaderInfo {
        HeaderInfo {
            version: self.bytes[8],
            kdf: (self.source() == SOURCE_PASSPHRASE).then(|| self.kdf()),
            chunk_size: self.chunk_size(),
        }
    }
}

fn nonce(prefix: &[u8; PREFIX_LEN], counter: u32, last: bool) -> Nonce {
    let mut bytes = [0u8; aead::NONCE_LEN];
    bytes[..PREFIX_LEN].copy_from_slice(prefix);
    bytes[PREFIX_LEN..PREFIX_LEN + 4].copy_from_slice(&counter.to_be_bytes());
    bytes[aead::NONCE_LEN - 1] = u8::from(last);
    Nonce::assume_unique_for_key(bytes)
}

fn random<const N: usize>(rng: &SystemRandom) -> Result<[u8; N], BackupCryptoError> {
    let mut out = [0u8; N];
    rng.fill(&mut out).map_err(|_| BackupCryptoError::Random)?;
    Ok(out)
}

/// Seals a stream: write plaintext, then call [`Encryptor::finish`] (a stream that is
/// not finished has no final chunk and reads back as truncated).
pub struct Encryptor<W: Write> {
    out: W,
    key: LessSafeKey,
    header: [u8; HEADER_LEN],
    prefix: [u8; PREFIX_LEN],
    buf: Vec<u8>,
    chunk: usize,
    counter: u32,
    /// Ciphertext bytes written, header included.
    written: u64,
}

impl<W: Write> std::fmt::Debug for Encryptor<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryptor")
            .field("counter", &self.counter)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl<W: Write> Encryptor<W> {
    /// Starts a backup sealed under `passphrase` (argon2id with `cost`).
    pub fn with_passphrase(
        out: W,
        passphrase: &Secret,
        cost: KdfCost,
    ) -> Result<Self, BackupCryptoError> {
        let cost = cost.check()?;
        let rng = SystemRandom::new();
        let salt = random::<SALT_LEN>(&rng)?;
        let ikm = argon2id(passphrase, &salt, cost)?;
        Self::start(
            out,
            SOURCE_PASSPHRASE,
            Some(cost),
            &salt,
            ikm.expose(),
            &rng,
        )
    }

    /// Starts a stream sealed under a one-time key (32 bytes).
    pub fn with_key(out: W, key: &SecretBytes) -> Result<Self, BackupCryptoError> {
        let rng = SystemRandom::new();
        let salt = random::<SALT_LEN>(&rng)?;
        Self::start(out, SOURCE_ONE_TIME_KEY, None, &salt, key.expose(), &rng)
    }

    fn start(
        mut out: W,
        source: u8,
        kdf: Option<KdfCost>,
        salt: &[u8; SALT_LEN],
        ikm: &[u8],
        rng: &SystemRandom,
    ) -> Result<Self, BackupCryptoError> {
        let prefix = random::<PREFIX_LEN>(rng)?;
        let keys = derive_keys(ikm, salt)?;
        let mut header = Header::new(source, kdf, salt, &prefix);
        header.set_check(keys.check.expose());
        out.write_all(&header.bytes)
            .map_err(BackupCryptoError::stream("writing the backup header"))?;
        let chunk = CHUNK_SIZE as usize;
        Ok(Encryptor {
            out,
            key: keys.aead,
            header: header.bytes,
            prefix,
            buf: Vec::with_capacity(chunk + TAG_LEN),
            chunk,
            counter: 0,
            written: HEADER_LEN as u64,
        })
    }

    fn seal(&mut self, last: bool) -> std::io::Result<()> {
        let nonce = nonce(&self.prefix, self.counter, last);
        self.key
            .seal_in_place_append_tag(nonce, Aad::from(&self.header[..]), &mut self.buf)
            .map_err(|_| std::io::Error::other("sealing a chunk failed"))?;
        self.out.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        self.counter = match self.counter.checked_add(1) {
            Some(next) => next,
            None if last => self.counter,
            None => return Err(std::io::Error::other(BackupCryptoError::TooLarge)),
        };
        Ok(())
    }

    /// Seals the final chunk and returns the writer (not flushed to disk: the caller
    /// decides about `fsync`) and the ciphertext length.
    pub fn finish(mut self) -> Result<(W, u64), BackupCryptoError> {
        self.seal(true)
            .and_then(|()| self.out.flush())
            .map_err(BackupCryptoError::stream("writing the backup"))?;
        Ok((self.out, self.written))
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, mut data: &[u8]) -> std::io::Result<usize> {
        let total = data.len();
        while !data.is_empty() {
            // A full buffer is sealed only once more data arrives: only then is it
            // known not to be the last chunk.
            if self.buf.len() == self.chunk {
                self.seal(false)?;
            }
            let take = (self.chunk - self.buf.len()).min(data.len());
            let (now, rest) = data.split_at(take);
            self.buf.extend_from_slice(now);
            data = rest;
        }
        Ok(total)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Opens a sealed stream; `Read` yields only authenticated plaintext, and fails with an
/// `io::Error` carrying a [`BackupCryptoError`] (see [`BackupCryptoError::from_io`]) on
/// damage or truncation.
pub struct Decryptor<R: Read> {
    input: R,
    key: LessSafeKey,
    header: Header,
    prefix: [u8; PREFIX_LEN],
    chunk: usize,
    counter: u32,
    /// Plaintext of the current chunk and how much of it was handed out.
    plain: Vec<u8>,
    pos: usize,
    /// One byte read past a chunk to learn that it was not the last.
    lookahead: Option<u8>,
    done: bool,
    /// Ciphertext bytes consumed, header included.
    consumed: u64,
}

impl<R: Read> std::fmt::Debug for Decryptor<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decryptor")
            .field("counter", &self.counter)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Decryptor<R> {
    /// Reads the header and derives the key from `passphrase`; a wrong passphrase is
    /// refused here, before any plaintext is produced.
    pub fn with_passphrase(mut input: R, passphrase: &Secret) -> Result<Self, BackupCryptoError> {
        let header = Header::read(&mut input)?;
        if header.source() != SOURCE_PASSPHRASE {
            return Err(BackupCryptoError::NotPassphraseSealed);
        }
        let cost = header.kdf().check()?;
        let ikm = argon2id(passphrase, header.salt(), cost)?;
        Self::start(input, header, ikm.expose())
    }

    /// Opens a stream sealed with [`Encryptor::with_key`].
    pub fn with_key(mut input: R, key: &SecretBytes) -> Result<Self, BackupCryptoError> {
        let header = Header::read(&mut input)?;
        if header.source() != SOURCE_ONE_TIME_KEY {
            return Err(BackupCryptoError::BadHeader(
                "it is not sealed with a one-time key",
            ));
        }
        Self::start(input, header, key.expose())
    }

    fn start(input: R, header: Header, ikm: &[u8]) -> Result<Self, BackupCryptoError> {
        let keys = derive_keys(ikm, header.salt())?;
        if !bool::from(keys.check.expose().ct_eq(header.check())) {
            return Err(BackupCryptoError::WrongPassphrase);
        }
        let chunk = header.chunk_size() as usize;
        Ok(Decryptor {
            input,
            key: keys.aead,
            prefix: header.prefix(),
            header,
            chunk,
            counter: 0,
            plain: Vec::with_capacity(chunk + TAG_LEN + 1),
            pos: 0,
            lookahead: None,
            done: false,
            consumed: HEADER_LEN as u64,
        })
    }

    pub fn header(&self) -> HeaderInfo {
        self.header.info()
    }

    /// Ciphertext bytes read so far (for progress).
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Reads what is left and checks that the stream ended with its final chunk and no
    /// plaintext was left unread.
    pub fn finish(mut self) -> Result<(), BackupCryptoError> {
        let mut rest = [0u8; 1];
        let read = self
            .read(&mut rest)
            .map_err(|err| match BackupCryptoError::from_io(&err) {
                Some(_) => unwrap_envelope(err),
                None => BackupCryptoError::Stream {
                    op: "reading the backup",
                    source: err,
                },
            })?;
        if read != 0 {
            return Err(BackupCryptoError::TrailingData);
        }
        Ok(())
    }

    /// Reads and authenticates the next chunk into `plain`.
    fn next_chunk(&mut self) -> std::io::Result<()> {
        let sealed_len = self.chunk + TAG_LEN;
        let mut buf = std::mem::take(&mut self.plain);
        buf.clear();
        let lookahead = self.lookahead.take();
        let carried = usize::from(lookahead.is_some());
        buf.extend(lookahead);
        let mut filled = buf.len();
        // One byte more than a sealed chunk: if it arrives, this chunk is not the last.
        buf.resize(sealed_len + 1, 0);
        while filled < buf.len() {
            match self.input.read(buf.get_mut(filled..).unwrap_or_default()) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        let offset = self.consumed - carried as u64;
        self.consumed += (filled - carried) as u64;
        let last = filled <= sealed_len;
        if last {
            buf.truncate(filled);
        } else {
            self.lookahead = buf.pop();
        }
        let counter = self.counter;
        if buf.len() < TAG_LEN {
            return Err(envelope_error(
                std::io::ErrorKind::UnexpectedEof,
                BackupCryptoError::Truncated { chunks: counter },
            ));
        }
        // A file cut exactly at a chunk boundary ends with a full chunk sealed as not
        // the last; keep its ciphertext to tell "truncated" from "damaged".
        let full_last = (last && buf.len() == sealed_len).then(|| buf.clone());
        let aad = self.header.bytes;
        let opened = self
            .key
            .open_in_place(
                nonce(&self.prefix, counter, last),
                Aad::from(&aad[..]),
                &mut buf,
            )
            .map(|plain| plain.len());
        match opened {
            Ok(len) => {
                buf.truncate(len);
                self.plain = buf;
                self.pos = 0;
                if last {
                    self.done = true;
                } else {
                    self.counter = counter.checked_add(1).ok_or_else(|| {
                        envelope_error(std::io::ErrorKind::InvalidData, BackupCryptoError::TooLarge)
                    })?;
                }
                Ok(())
            }
            Err(_) => {
                let cut_at_boundary = full_last.is_some_and(|mut copy| {
                    self.key
                        .open_in_place(
                            nonce(&self.prefix, counter, false),
                            Aad::from(&aad[..]),
                            &mut copy,
                        )
                        .is_ok()
                });
                let err = if cut_at_boundary {
                    BackupCryptoError::Truncated {
                        chunks: counter.saturating_add(1),
                    }
                } else if last {
                    BackupCryptoError::DamagedEnd {
                        chunk: counter,
                        offset,
                    }
                } else {
                    BackupCryptoError::Damaged {
                        chunk: counter,
                        offset,
                    }
                };
                Err(envelope_error(std::io::ErrorKind::InvalidData, err))
            }
        }
    }
}

fn envelope_error(kind: std::io::ErrorKind, err: BackupCryptoError) -> std::io::Error {
    std::io::Error::new(kind, err)
}

impl<R: Read> Read for Decryptor<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.pos < self.plain.len() {
                let available = self.plain.get(self.pos..).unwrap_or_default();
                let n = available.len().min(out.len());
                out.get_mut(..n)
                    .unwrap_or_default()
                    .copy_from_slice(available.get(..n).unwrap_or_default());
                self.pos += n;
                return Ok(n);
            }
            if self.done || out.is_empty() {
                return Ok(0);
            }
            self.next_chunk()?;
        }
    }
}

/// Takes the envelope error out of an `io::Error` made by [`Decryptor`].
pub fn unwrap_envelope(err: std::io::Error) -> BackupCryptoError {
    if BackupCryptoError::from_io(&err).is_some() {
        match err
            .into_inner()
            .map(|inner| inner.downcast::<BackupCryptoError>())
        {
            Some(Ok(envelope)) => return *envelope,
            Some(Err(other)) => {
                return BackupCryptoError::Stream {
                    op: "reading the backup",
                    source: std::io::Error::other(other),
                };
            }
            None => {}
        }
    }
    BackupCryptoError::Stream {
        op: "reading the backup",
        source: std::io::Error::other("unreadable error"),
    }
}

/// A live snapshot the gateway wrote for the CLI: where it is and the one-time key that
/// opens it. The key is returned only over the admin socket.
#[derive(Serialize, Deserialize)]
pub struct TransientSnapshot {
    pub path: PathBuf,
    /// Base64 of the 32-byte one-time key.
    pub key: String,
    pub stats: SnapshotStats,
}

impl std::fmt::Debug for TransientSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransientSnapshot")
            .field("path", &self.path)
            .field("key", &"***")
            .field("stats", &self.stats)
            .finish()
    }
}

impl TransientSnapshot {
    pub fn key(&self) -> Option<SecretBytes> {
        B64.decode(&self.key)
            .ok()
            .filter(|k| k.len() == KEY_LEN)
            .map(SecretBytes::new)
    }
}

/// Takes a consistent snapshot of the store and the data directory's key and
/// certificate files into `data_dir/backup-tmp/`, sealed under a fresh one-time key.
/// The file holds no plaintext: a copy left behind by a CLI that died is useless
/// without the key, which only the admin socket carried.
pub fn seal_snapshot(
    store: &Store,
    data_dir: &Path,
    created: &str,
) -> Result<TransientSnapshot, BackupCryptoError> {
    let dir = data_dir.join(SNAPSHOT_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(IoError::at("create", &dir))?;
    // Made by an offline `sudo aisopod backup create`, it must still serve the gateway.
    crate::store::backup::adopt_owner(data_dir, &dir)?;
    remove_stale_snapshots(&dir);
    let rng = SystemRandom::new();
    let key = SecretBytes::new(random::<KEY_LEN>(&rng)?.to_vec());
    let name = format!("snapshot-{}.sealed", hex::encode(random::<8>(&rng)?));
    let path = dir.join(name);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(IoError::at("create", &path))?;
    let written = (|| {
        let mut sealed = Encryptor::with_key(std::io::BufWriter::new(file), &key)?;
        let stats = store.snapshot(data_dir, created, &mut sealed)?;
        let (out, _) = sealed.finish()?;
        out.into_inner()
            .map_err(|e| IoError::new("write", &path, e.into_error()))?;
        Ok(stats)
    })();
    match written {
        // Absolute, because the CLI's working directory may differ from the gateway's.
        Ok(stats) => Ok(TransientSnapshot {
            path: std::fs::canonicalize(&path).unwrap_or(path),
            key: B64.encode(key.expose()),
            stats,
        }),
        Err(err) => {
            let _ = std::fs::remove_file(&path);
            Err(err)
        }
    }
}

/// Removes snapshots left by a CLI that died before it could.
fn remove_stale_snapshots(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age > SNAPSHOT_MAX_AGE);
        let ours = entry.file_name().to_string_lossy().starts_with("snapshot-");
        if old && ours {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cheap cost for tests; the product default is [`KdfCost::default`].
    const FAST: KdfCost = KdfCost {
        memory_kib: 64,
        iterations: 1,
        lanes: 1,
    };

    fn seal(data: &[u8], passphrase: &str) -> Vec<u8> {
        let mut enc =
            Encryptor::with_passphrase(Vec::new(), &Secret::new(passphrase), FAST).unwrap();
        // Uneven writes, to cross chunk boundaries at odd places.
        for piece in data.chunks(7777) {
            enc.write_all(piece).unwrap();
        }
        enc.finish().unwrap().0
    }

    fn open(sealed: &[u8], passphrase: &str) -> Result<Vec<u8>, BackupCryptoError> {
        let mut dec = Decryptor::with_passphrase(sealed, &Secret::new(passphrase))?;
        let mut out = Vec::new();
        dec.read_to_end(&mut out).map_err(unwrap_envelope)?;
        dec.finish()?;
        Ok(out)
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn a_snapshot_file_that_cannot_be_made_is_named_in_the_error() {
        let data_dir = tempfile::tempdir().unwrap();
        let store = Store::open(data_dir.path(), 1 << 20).unwrap();
        let blocker = data_dir.path().join(SNAPSHOT_DIR);
        std::fs::write(&blocker, b"").unwrap();
        let err = seal_snapshot(&store, data_dir.path(), "now").err().unwrap();
        let BackupCryptoError::Io(io) = &err else {
            panic!("{err:?}")
        };
        assert_eq!((io.op, io.path.as_path()), ("create", blocker.as_path()));
        assert!(
            err.to_string()
                .starts_with(&format!("cannot create {}: ", blocker.display())),
            "{err}"
        );
    }

    #[test]
    fn round_trips_at_every_chunk_boundary() {
        let chunk = CHUNK_SIZE as usize;
        for len in [0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk, 3 * chunk + 5] {
            let plain = data(len);
            let sealed = seal(&plain, "correct horse battery");
            let chunks = len.div_ceil(chunk).max(1);
            assert_eq!(sealed.len(), HEADER_LEN + len + chunks * TAG_LEN, "{len}");
            assert_eq!(
                open(&sealed, "correct horse battery").unwrap(),
                plain,
                "{len}"
            );
        }
    }

    #[test]
    fn a_wrong_passphrase_is_refused_before_any_plaintext() {
        let sealed = seal(&data(1000), "correct horse battery");
        assert!(matches!(
            open(&sealed, "correct horse batterY"),
            Err(BackupCryptoError::WrongPassphrase)
        ));
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let chunk = CHUNK_SIZE as usize;
        let sealed = seal(&data(2 * chunk + 100), "correct horse battery");
        // Every header byte, and bytes across each chunk and tag.
        let mut positions: Vec<usize> = (0..HEADER_LEN).collect();
        positions.extend((HEADER_LEN..sealed.len()).step_by(4099));
        positions.push(sealed.len() - 1);
        for at in positions {
            let mut bad = sealed.clone();
            bad[at] ^= 0x01;
            let err = open(&bad, "correct horse battery").unwrap_err();
            let expected = match at {
                0..8 => matches!(err, BackupCryptoError::NotABackup),
                8 => matches!(err, BackupCryptoError::UnsupportedVersion(_)),
                9 => matches!(err, BackupCryptoError::NotPassphraseSealed),
                10..22 => matches!(
                    err,
                    BackupCryptoError::WrongPassphrase
                        | BackupCryptoError::BadHeader(_)
                        | BackupCryptoError::Kdf(_)
                ),
                22..38 | 49..81 => matches!(err, BackupCryptoError::WrongPassphrase),
                45..49 => matches!(
                    err,
                    BackupCryptoError::BadHeader(_)
                        | BackupCryptoError::Damaged { .. }
                        | BackupCryptoError::DamagedEnd { .. }
                        | BackupCryptoError::Truncated { .. }
                ),
                _ => matches!(
                    err,
                    BackupCryptoError::Damaged { .. } | BackupCryptoError::DamagedEnd { .. }
                ),
            };
            assert!(expected, "byte {at}: {err}");
        }
    }

    #[test]
    fn truncation_and_trailing_data_are_detected() {
        let chunk = CHUNK_SIZE as usize;
        let sealed = seal(&data(2 * chunk + 100), "correct horse battery");
        let boundary = HEADER_LEN + 2 * (chunk + TAG_LEN);
        for cut in [
            HEADER_LEN,
            HEADER_LEN + 10,
            HEADER_LEN + chunk + TAG_LEN,
            boundary,
            sealed.len() - 1,
        ] {
            let err = open(&sealed[..cut], "correct horse battery").unwrap_err();
            assert!(
                matches!(
                    err,
                    BackupCryptoError::Truncated { .. }
                        | BackupCryptoError::Damaged { .. }
                        | BackupCryptoError::DamagedEnd { .. }
                ),
                "cut at {cut}: {err}"
            );
            if cut == boundary || cut == HEADER_LEN + chunk + TAG_LEN || cut == HEADER_LEN {
                assert!(
                    matches!(err, BackupCryptoError::Truncated { .. }),
                    "cut at {cut}: {err}"
                );
            }
        }
        let err = open(&sealed[..40], "correct horse battery").unwrap_err();
        assert!(matches!(err, BackupCryptoError::BadHeader(_)), "{err}");
        let mut longer = sealed.clone();
        longer.extend_from_slice(b"more");
        assert!(matches!(
            open(&longer, "correct horse battery").unwrap_err(),
            BackupCryptoError::Damaged { .. } | BackupCryptoError::DamagedEnd { .. }
        ));
        // Two chunks swapped.
        let mut swapped = sealed.clone();
        let (a, b) = (HEADER_LEN, HEADER_LEN + chunk + TAG_LEN);
        let first = sealed[a..b].to_vec();
        swapped[a..b].copy_from_slice(&sealed[b..b + chunk + TAG_LEN]);
        swapped[b..b + chunk + TAG_LEN].copy_from_slice(&first);
        assert!(matches!(
            open(&swapped, "correct horse battery").unwrap_err(),
            BackupCryptoError::Damaged { chunk: 0, .. }
        ));
        assert!(matches!(
            open(b"PK\x03\x04 a zip", "x"),
            Err(BackupCryptoError::NotABackup)
        ));
    }

    #[test]
    fn hostile_header_costs_are_refused_and_short_passphrases_too() {
        let mut sealed = seal(b"x", "correct horse battery");
        sealed[10..14].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            open(&sealed, "correct horse battery"),
            Err(BackupCryptoError::BadHeader(_))
        ));
        assert!(check_passphrase(&Secret::new("short one")).is_err());
        assert!(check_passphrase(&Secret::new("fifteen chars!!")).is_ok());
        assert!(check_passphrase(&Secret::new("ääääääääääääää")).is_err());
    }

    #[test]
    fn one_time_key_streams_are_not_backups() {
        let key = SecretBytes::new(vec![9u8; 32]);
        let mut enc = Encryptor::with_key(Vec::new(), &key).unwrap();
        enc.write_all(b"snapshot").unwrap();
        let (sealed, _) = enc.finish().unwrap();
        let mut out = Vec::new();
        Decryptor::with_key(&sealed[..], &key)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"snapshot");
        assert!(matches!(
            Decryptor::with_passphrase(&sealed[..], &Secret::new("anything at all here")),
            Err(BackupCryptoError::NotPassphraseSealed)
        ));
        assert!(matches!(
            Decryptor::with_key(&sealed[..], &SecretBytes::new(vec![8u8; 32])),
            Err(BackupCryptoError::WrongPassphrase)
        ));
    }
}
