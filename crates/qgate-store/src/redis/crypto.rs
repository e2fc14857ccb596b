//! Encryption of secrets stored in Redis: AES-256-GCM (RustCrypto `aes-gcm`).
//!
//! A sealed value is `0x01 ‖ nonce (12 bytes, random per value) ‖ ciphertext ‖ tag`. The
//! associated data binds a value to *what* it is and *whose* it is (`purpose \0 account`),
//! so a record copied to another account's key, or a token record pasted into the admin
//! document, fails to open instead of being accepted.
//!
//! The key is 32 bytes from `QGATE_ENCRYPTION_KEY`, written as 64 hex digits or as base64
//! (standard or URL-safe alphabet, padded or not). `openssl rand -base64 32` makes one.

use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use secrecy::zeroize::Zeroizing;

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// What a sealed value holds; part of the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// An account's token record (`tok:{id}`).
    Token,
    /// The admin-made account changes (`admin:accounts`).
    AdminAccounts,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Token => b"tok",
            Purpose::AdminAccounts => b"admin-accounts",
        }
    }
}

/// Why a key could not be read or a value could not be opened. Never carries key
/// material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error(
        "QGATE_ENCRYPTION_KEY must be 32 bytes written as 64 hex digits or as base64 (got {decoded_len} bytes)"
    )]
    BadKeyLength { decoded_len: usize },
    #[error("QGATE_ENCRYPTION_KEY is neither 64 hex digits nor base64")]
    BadKeyEncoding,
    /// Unknown format, truncated, tampered with, sealed with another key, or for another
    /// account or purpose: AES-GCM cannot tell these apart, and neither do we.
    #[error("a sealed value in Redis could not be opened (wrong key, tampered, or not ours)")]
    CannotOpen,
    #[error("could not seal a value")]
    CannotSeal,
}

/// The AES-256-GCM key. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct EncryptionKey {
    cipher: Aes256Gcm,
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey([REDACTED])")
    }
}

impl EncryptionKey {
    /// Parse the environment value: 64 hex digits, or base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        let bytes = decode_key_text(text)?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != 32 {
            return Err(CryptoError::BadKeyLength {
                decoded_len: bytes.len(),
            });
        }
        Ok(EncryptionKey {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)),
        })
    }

    /// Encrypt `plaintext` for `account` with a fresh random nonce.
    pub fn seal(
        &self,
        purpose: Purpose,
        account: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = associated_data(purpose, account);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::CannotSeal)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(FORMAT_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Decrypt a value sealed by [`EncryptionKey::seal`] for the same purpose and account.
    pub fn open(
        &self,
        purpose: Purpose,
        account: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let Some((&FORMAT_V1, rest)) = sealed.split_first() else {
            return Err(CryptoError::CannotOpen);
        };
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::CannotOpen);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let aad = associated_data(purpose, account);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::CannotOpen)
    }
}

fn associated_data(purpose: Purpose, account: &str) -> Vec<u8> {
    let label = purpose.label();
    let mut aad = Vec::with_capacity(label.len() + 1 + account.len());
    aad.extend_from_slice(label);
    aad.push(0);
    aad.extend_from_slice(account.as_bytes());
    aad
}

fn decode_key_text(text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    // 64 hex digits are also valid base64 (of 48 bytes), so hex is tried first.
    if text.len() == 64
        && text.bytes().all(|b| b.is_ascii_hexdigit())
        && let Ok(bytes) = hex::decode(text)
    {
        return Ok(Zeroizing::new(bytes));
    }
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .into_iter()
        .find_map(|engine| engine.decode(text).ok())
        .map(Zeroizing::new)
        .ok_or(CryptoError::BadKeyEncoding)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HEX_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn key() -> EncryptionKey {
        EncryptionKey::parse(HEX_KEY).unwrap()
    }

    #[test]
    fn hex_and_base64_spell_the_same_key() {
        let bytes: Vec<u8> = (0u8..32).collect();
        let sealed = key().seal(Purpose::Token, "a", b"secret").unwrap();
        for text in [
            STANDARD.encode(&bytes),
            STANDARD_NO_PAD.encode(&bytes),
            URL_SAFE.encode(&bytes),
            format!("  {}\n", STANDARD.encode(&bytes)),
        ] {
            let other = EncryptionKey::parse(&text).unwrap();
            assert_eq!(
                &*other.open(Purpose::Token, "a", &sealed).unwrap(),
                b"secret"
            );
        }
    }

    #[test]
    fn keys_of_the_wrong_size_or_spelling_are_refused() {
        assert_eq!(
            EncryptionKey::parse(&STANDARD.encode([7u8; 16])).unwrap_err(),
            CryptoError::BadKeyLength { decoded_len: 16 }
        );
        assert_eq!(
            EncryptionKey::parse("not a key!").unwrap_err(),
            CryptoError::BadKeyEncoding
        );
        assert!(EncryptionKey::parse("").is_err());
    }

    #[test]
    fn round_trip_with_a_fresh_nonce_each_time() {
        let key = key();
        let first = key.seal(Purpose::Token, "sim-1", b"aor-refresh").unwrap();
        let second = key.seal(Purpose::Token, "sim-1", b"aor-refresh").unwrap();
        assert_ne!(first, second, "nonces must not repeat");
        assert!(!first.windows(11).any(|w| w == b"aor-refresh"));
        assert_eq!(
            &*key.open(Purpose::Token, "sim-1", &first).unwrap(),
            b"aor-refresh"
        );
        assert_eq!(
            &*key.open(Purpose::Token, "sim-1", &second).unwrap(),
            b"aor-refresh"
        );
    }

    #[test]
    fn wrong_key_tampering_other_account_or_purpose_fail_without_panicking() {
        let key = key();
        let sealed = key.seal(Purpose::Token, "sim-1", b"aor-refresh").unwrap();
        let other_key = EncryptionKey::from_bytes(&[9u8; 32]).unwrap();
        assert_eq!(
            other_key
                .open(Purpose::Token, "sim-1", &sealed)
                .unwrap_err(),
            CryptoError::CannotOpen
        );
        assert!(key.open(Purpose::Token, "sim-2", &sealed).is_err());
        assert!(key.open(Purpose::AdminAccounts, "sim-1", &sealed).is_err());
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x40;
            assert!(key.open(Purpose::Token, "sim-1", &tampered).is_err(), "{i}");
        }
        for len in 0..sealed.len() {
            assert!(key.open(Purpose::Token, "sim-1", &sealed[..len]).is_err());
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        let shown = format!("{:?}", key());
        assert_eq!(shown, "EncryptionKey([REDACTED])");
    }
}
