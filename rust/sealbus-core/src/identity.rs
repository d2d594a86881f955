//! A router's Ed25519 identity: the bridge signs every exported message with it and
//! an importer checks the signature; the audit trail signs its checkpoints with it.
//! Ed25519 comes from aws-lc-rs, the library that already holds our AES-GCM (its
//! x86-64 code signs ~3x and verifies ~3.5x faster than OpenSSL's here).

use std::fmt;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

use crate::{Error, Result};

/// Bytes in an Ed25519 seed (the private key), public key and signature.
pub const SEED_LEN: usize = 32;
pub const PUBLIC_LEN: usize = 32;
pub const SIGNATURE_LEN: usize = 64;

/// An Ed25519 key pair. `Debug` shows the start of the public key, never the seed
/// (aws-lc-rs keeps the private half and clears it when dropped).
pub struct Signer {
    pair: Ed25519KeyPair,
    public: [u8; PUBLIC_LEN],
}

impl Signer {
    /// The key pair of a 32-byte `seed`.
    pub fn from_seed(seed: &[u8]) -> Result<Signer> {
        let bad = || Error::InvalidArgument {
            name: "seed".into(),
            reason: "an Ed25519 seed is 32 bytes".into(),
        };
        if seed.len() != SEED_LEN {
            return Err(bad());
        }
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| bad())?;
        let mut public = [0u8; PUBLIC_LEN];
        public.copy_from_slice(pair.public_key().as_ref());
        Ok(Signer { pair, public })
    }

    pub fn public_key(&self) -> &[u8; PUBLIC_LEN] {
        &self.public
    }

    /// The 64-byte signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer(public=")?;
        for b in &self.public[..8] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("..)")
    }
}

/// Whether `signature` is `public`'s Ed25519 signature of `message` (a key or a
/// signature of the wrong length is simply not one).
pub fn verify(public: &[u8], signature: &[u8], message: &[u8]) -> bool {
    public.len() == PUBLIC_LEN
        && signature.len() == SIGNATURE_LEN
        && UnparsedPublicKey::new(&ED25519, public)
            .verify(message, signature)
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032, section 7.1, TEST 3 (a two-byte message).
    #[test]
    fn rfc8032_test_3() {
        let seed = hex("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7");
        let public = hex("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025");
        let sig = hex(
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac\
             18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        );
        let s = Signer::from_seed(&seed).expect("seed");
        assert_eq!(s.public_key().as_slice(), public.as_slice());
        assert_eq!(s.sign(&[0xaf, 0x82]).as_slice(), sig.as_slice());
        assert!(verify(&public, &sig, &[0xaf, 0x82]));
        assert!(!verify(&public, &sig, &[0xaf, 0x83]));
        let mut bent = sig.clone();
        bent[10] ^= 1;
        assert!(!verify(&public, &bent, &[0xaf, 0x82]));
        assert!(!verify(&public[..31], &sig, &[0xaf, 0x82]));
        assert!(!verify(&public, &sig[..63], &[0xaf, 0x82]));
    }

    #[test]
    fn a_bad_seed_is_refused_and_debug_hides_the_seed() {
        assert!(Signer::from_seed(&[1u8; 31]).is_err());
        let s = Signer::from_seed(&[0x5au8; 32]).expect("seed");
        let shown = format!("{s:?}");
        assert!(shown.starts_with("Signer(public="), "{shown}");
        assert!(!shown.contains("5a5a5a"), "{shown}");
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }
}
