//! Wrapping a data key for one recipient (docs/FORMAT.md, *End to end*):
//! X25519 with a fresh ephemeral key, HKDF-SHA256, then AES-256-GCM over the data key,
//! all from aws-lc (the library that seals the payloads).
//!
//! ```text
//! context = "sealbus/e2e/ctx/v1" || lp(data key id) || lp(event type)
//! info    = "sealbus/e2e/wrap/v1" || lp(rid) || lp(context)
//! shared  = X25519(eph.private, pkR)            (all-zero result is refused)
//! okm     = HKDF-SHA256(ikm=shared, salt=enc || pkR, info=info, L=44)
//! wrapped = AES-256-GCM(key=okm[0:32], nonce=okm[32:44], plaintext=data key, aad=info)
//! ```

use std::fmt;

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use aws_lc_rs::hkdf::{self, HKDF_SHA256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::seal::aad::put_lp;
use crate::seal::aead::{self, AeadKey, KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::seal::frame::{EPHEMERAL_LEN, WRAPPED_KEY_LEN};

pub const WRAP_INFO_DOMAIN: &[u8] = b"sealbus/e2e/wrap/v1";
pub const CONTEXT_DOMAIN: &[u8] = b"sealbus/e2e/ctx/v1";
/// X25519 private and public keys are 32 bytes.
pub const X25519_LEN: usize = 32;
const OKM_LEN: usize = KEY_LEN + NONCE_LEN;

/// A consumer's X25519 key pair. `Debug` shows the public half only.
pub struct RecipientKey {
    private: PrivateKey,
    public: [u8; X25519_LEN],
}

impl fmt::Debug for RecipientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecipientKey(public=")?;
        for b in self.public {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

fn x25519_error(what: &str) -> Error {
    Error::InvalidArgument {
        name: "private_key".into(),
        reason: format!("{what}: an X25519 private key is {X25519_LEN} raw bytes"),
    }
}

impl RecipientKey {
    /// Load 32 raw private-key bytes (RFC 7748 encoding, as `cryptography` exports).
    pub fn from_private_bytes(raw: &[u8]) -> Result<Self> {
        let private =
            PrivateKey::from_private_key(&X25519, raw).map_err(|_| x25519_error("refused"))?;
        let public = public_of(&private)?;
        Ok(Self { private, public })
    }

    pub fn generate() -> Result<Self> {
        let private = PrivateKey::generate(&X25519).map_err(|_| Error::Seal {
            reason: "X25519 key generation failed".into(),
        })?;
        let public = public_of(&private)?;
        Ok(Self { private, public })
    }

    pub fn public_bytes(&self) -> [u8; X25519_LEN] {
        self.public
    }
}

fn public_of(private: &PrivateKey) -> Result<[u8; X25519_LEN]> {
    let p = private.compute_public_key().map_err(|_| Error::Seal {
        reason: "X25519 public key computation failed".into(),
    })?;
    p.as_ref().try_into().map_err(|_| Error::Seal {
        reason: "X25519 public key has the wrong length".into(),
    })
}

/// The event context a wrapped key is bound to.
pub fn wrap_context(data_key_id: &str, event_type: &str) -> Result<Vec<u8>> {
    let mut c = Vec::with_capacity(CONTEXT_DOMAIN.len() + 8 + data_key_id.len() + event_type.len());
    c.extend_from_slice(CONTEXT_DOMAIN);
    put_lp(&mut c, "data_key_id", data_key_id.as_bytes())?;
    put_lp(&mut c, "event_type", event_type.as_bytes())?;
    Ok(c)
}

fn wrap_info(recipient_id: &str, context: &[u8]) -> Result<Vec<u8>> {
    if recipient_id.is_empty() || recipient_id.len() > 255 {
        return Err(Error::InvalidArgument {
            name: "recipients".into(),
            reason: format!("recipient id {recipient_id:?} must be 1..=255 bytes of UTF-8"),
        });
    }
    let mut info =
        Vec::with_capacity(WRAP_INFO_DOMAIN.len() + 8 + recipient_id.len() + context.len());
    info.extend_from_slice(WRAP_INFO_DOMAIN);
    put_lp(&mut info, "recipient_id", recipient_id.as_bytes())?;
    put_lp(&mut info, "context", context)?;
    Ok(info)
}

struct OkmLen;

impl hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        OKM_LEN
    }
}

/// `shared` -> (wrap key, wrap nonce), refusing the all-zero secret of a low-order
/// point (aws-lc refuses it too; this keeps the rule visible here).
fn derive(shared: &[u8], salt: &[u8], info: &[u8]) -> Result<Zeroizing<[u8; OKM_LEN]>> {
    if shared.iter().all(|&b| b == 0) {
        return Err(Error::Integrity {
            reason: "X25519 produced the all-zero secret (low-order point)".into(),
        });
    }
    let mut okm = Zeroizing::new([0u8; OKM_LEN]);
    let info_parts = [info];
    hkdf::Salt::new(HKDF_SHA256, salt)
        .extract(shared)
        .expand(&info_parts, OkmLen)
        .and_then(|o| o.fill(&mut okm[..]))
        .map_err(|_| Error::Seal {
            reason: "HKDF-SHA256 failed".into(),
        })?;
    Ok(okm)
}

/// X25519 of `private` and `peer`, then the HKDF above.
fn agree(
    private: &PrivateKey,
    peer: &[u8],
    salt: &[u8],
    info: &[u8],
    refused: Error,
) -> Result<Zeroizing<[u8; OKM_LEN]>> {
    agreement::agree(
        private,
        UnparsedPublicKey::new(&X25519, peer),
        (),
        |shared| Ok(derive(shared, salt, info)),
    )
    .unwrap_or(Err(refused))
}

/// One recipient's copy of a data key, as a frame carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Wrapped {
    pub ephemeral_public: [u8; EPHEMERAL_LEN],
    pub wrapped_key: [u8; WRAPPED_KEY_LEN],
}

impl fmt::Debug for Wrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Wrapped(..)")
    }
}

/// Wrap `data_key` for the recipient `recipient_id` whose public key is
/// `recipient_public`, under a fresh ephemeral key.
pub fn wrap_data_key(
    data_key: &[u8],
    recipient_id: &str,
    recipient_public: &[u8],
    context: &[u8],
) -> Result<Wrapped> {
    if data_key.len() != KEY_LEN {
        return Err(Error::InvalidArgument {
            name: "data_key".into(),
            reason: format!("data keys are {KEY_LEN} bytes, got {}", data_key.len()),
        });
    }
    if recipient_public.len() != X25519_LEN {
        return Err(Error::InvalidArgument {
            name: "recipients".into(),
            reason: format!(
                "recipient {recipient_id:?}: an X25519 public key is {X25519_LEN} bytes, got {}",
                recipient_public.len()
            ),
        });
    }
    let info = wrap_info(recipient_id, context)?;
    let eph = RecipientKey::generate()?;
    let mut salt = [0u8; 2 * X25519_LEN];
    salt[..X25519_LEN].copy_from_slice(&eph.public);
    salt[X25519_LEN..].copy_from_slice(recipient_public);
    let okm = agree(
        &eph.private,
        recipient_public,
        &salt,
        &info,
        Error::Integrity {
            reason: format!("recipient {recipient_id:?} has an invalid X25519 public key"),
        },
    )?;
    let key = AeadKey::new(&okm[..KEY_LEN])?;
    let sealed = aead::encrypt(&key, &okm[KEY_LEN..], data_key, &info)?;
    let wrapped_key: [u8; WRAPPED_KEY_LEN] =
        sealed.as_slice().try_into().map_err(|_| Error::Seal {
            reason: "wrapped key has the wrong length".into(),
        })?;
    Ok(Wrapped {
        ephemeral_public: eph.public,
        wrapped_key,
    })
}

/// Recover a data key wrapped for `key` as `recipient_id` under `context`;
/// `Error::Integrity` if it was not wrapped for this key pair, id and context.
pub fn unwrap_data_key(
    key: &RecipientKey,
    recipient_id: &str,
    ephemeral_public: &[u8],
    wrapped_key: &[u8],
    context: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let info = wrap_info(recipient_id, context)?;
    if ephemeral_public.len() != EPHEMERAL_LEN || wrapped_key.len() != KEY_LEN + TAG_LEN {
        return Err(Error::Integrity {
            reason: "wrapped key entry has the wrong size".into(),
        });
    }
    let mut salt = [0u8; 2 * X25519_LEN];
    salt[..X25519_LEN].copy_from_slice(ephemeral_public);
    salt[X25519_LEN..].copy_from_slice(&key.public);
    let okm = agree(
        &key.private,
        ephemeral_public,
        &salt,
        &info,
        Error::Integrity {
            reason: "wrapped key has an invalid ephemeral public key".into(),
        },
    )?;
    let wrap_key = AeadKey::new(&okm[..KEY_LEN])?;
    aead::decrypt(&wrap_key, &okm[KEY_LEN..], wrapped_key, &info)
        .map(Zeroizing::new)
        .map_err(|_| Error::Integrity {
            reason: format!(
                "wrapped data key for {recipient_id:?} does not open with this key pair and context"
            ),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trips_and_is_bound_to_recipient_and_context() {
        let shipping = RecipientKey::generate().unwrap();
        let other = RecipientKey::generate().unwrap();
        let dk = [7u8; 32];
        let ctx = wrap_context("dk-1", "orders.placed").unwrap();
        let w = wrap_data_key(&dk, "shipping", &shipping.public_bytes(), &ctx).unwrap();
        let open = |k: &RecipientKey, rid: &str, ctx: &[u8]| {
            unwrap_data_key(k, rid, &w.ephemeral_public, &w.wrapped_key, ctx)
        };
        assert_eq!(&open(&shipping, "shipping", &ctx).unwrap()[..], &dk);
        assert!(matches!(
            open(&other, "shipping", &ctx),
            Err(Error::Integrity { .. })
        ));
        assert!(matches!(
            open(&shipping, "analytics", &ctx),
            Err(Error::Integrity { .. })
        ));
        let ctx2 = wrap_context("dk-2", "orders.placed").unwrap();
        assert!(matches!(
            open(&shipping, "shipping", &ctx2),
            Err(Error::Integrity { .. })
        ));
        let w2 = wrap_data_key(&dk, "shipping", &shipping.public_bytes(), &ctx).unwrap();
        assert_ne!(
            w2.ephemeral_public, w.ephemeral_public,
            "fresh ephemeral per wrap"
        );
    }

    #[test]
    fn low_order_and_malformed_keys_are_refused() {
        let ctx = wrap_context("dk-1", "t").unwrap();
        assert!(matches!(
            wrap_data_key(&[0; 32], "x", &[0; 32], &ctx),
            Err(Error::Integrity { .. })
        ));
        assert!(matches!(
            wrap_data_key(&[0; 16], "x", &[9; 32], &ctx),
            Err(Error::InvalidArgument { .. })
        ));
        let k = RecipientKey::generate().unwrap();
        assert!(matches!(
            unwrap_data_key(&k, "x", &[0; 32], &[0; 48], &ctx),
            Err(Error::Integrity { .. })
        ));
        assert!(RecipientKey::from_private_bytes(&[1; 31]).is_err());
        assert!(!format!("{k:?}").is_empty());
    }

    #[test]
    fn rfc7748_public_key() {
        // RFC 7748 section 6.1, Alice's key pair.
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let k = RecipientKey::from_private_bytes(&hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ))
        .unwrap();
        assert_eq!(
            k.public_bytes().to_vec(),
            hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
    }
}
