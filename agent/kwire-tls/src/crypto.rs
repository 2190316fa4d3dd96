//! Cipher suites, key derivation and record protection.
//!
//! - TLS 1.3 (RFC 8446 §7): a traffic secret gives the record key and IV by HKDF-Expand-Label
//!   (`"tls13 key"`, `"tls13 iv"`, empty context); a KeyUpdate replaces the secret by
//!   HKDF-Expand-Label(secret, `"traffic upd"`, "", Hash.length). Nonce = IV XOR the record's sequence
//!   number; additional data = the record header; the plaintext ends with the real content type and
//!   zero padding.
//! - TLS 1.2 (RFC 5246 §6.3, RFC 5288, RFC 7905): the key block is PRF(master secret, "key expansion",
//!   server_random + client_random) with P_SHA256 or P_SHA384 (the suite's hash); AEAD suites take no
//!   MAC key: client key, server key, client IV, server IV. AES-GCM: nonce = 4-byte implicit salt + the
//!   8-byte explicit nonce that starts each record; ChaCha20-Poly1305: nonce = 12-byte IV XOR sequence
//!   number. Additional data = sequence number, type, version, plaintext length.
//!
//! Easy to get wrong: the sequence number advances only when a record opened (a record that failed may
//! belong to the next epoch, tried by the caller); AES-256 suites of TLS 1.2 use SHA-384 for the PRF;
//! a record shorter than its tag (or explicit nonce) is a failure, not a panic. Nothing here derives
//! `Debug`: the types hold keys.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use chacha20poly1305::ChaCha20Poly1305;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384};

/// AEAD tag length of every supported suite.
pub const TAG_LEN: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Aead {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl Aead {
    pub fn key_len(self) -> usize {
        match self {
            Aead::Aes128Gcm => 16,
            Aead::Aes256Gcm | Aead::ChaCha20Poly1305 => 32,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
}

impl Hash {
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }
}

/// A cipher suite this crate can decrypt.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    pub id: u16,
    pub aead: Aead,
    pub hash: Hash,
    /// A TLS 1.3 suite (else a TLS 1.2 AEAD suite).
    pub tls13: bool,
}

/// The suite of an id, if supported: the TLS 1.3 suites and the TLS 1.2 (EC)DHE/RSA AES-GCM and
/// ChaCha20-Poly1305 suites.
pub fn suite(id: u16) -> Option<Suite> {
    use Aead::*;
    use Hash::*;
    let (aead, hash, tls13) = match id {
        0x1301 => (Aes128Gcm, Sha256, true),
        0x1302 => (Aes256Gcm, Sha384, true),
        0x1303 => (ChaCha20Poly1305, Sha256, true),
        // ECDHE_ECDSA / ECDHE_RSA / DHE_RSA / RSA with AES_128_GCM_SHA256
        0xC02B | 0xC02F | 0x009E | 0x009C => (Aes128Gcm, Sha256, false),
        // ... with AES_256_GCM_SHA384
        0xC02C | 0xC030 | 0x009F | 0x009D => (Aes256Gcm, Sha384, false),
        // ECDHE_RSA / ECDHE_ECDSA / DHE_RSA with CHACHA20_POLY1305_SHA256
        0xCCA8..=0xCCAA => (ChaCha20Poly1305, Sha256, false),
        _ => return None,
    };
    Some(Suite {
        id,
        aead,
        hash,
        tls13,
    })
}

/// HKDF-Expand-Label (RFC 8446 §7.1) of `secret` taken as the PRK. None when `len` is too long for the
/// hash (never for the lengths used here) or the label too long.
pub fn hkdf_expand_label(
    hash: Hash,
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    len: usize,
) -> Option<Vec<u8>> {
    let full = 6 + label.len();
    if full > 255 || context.len() > 255 || len > u16::MAX as usize {
        return None;
    }
    let mut info = Vec::with_capacity(4 + full + context.len());
    info.extend_from_slice(&(len as u16).to_be_bytes());
    info.push(full as u8);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(context.len() as u8);
    info.extend_from_slice(context);
    let mut out = vec![0u8; len];
    let ok = match hash {
        Hash::Sha256 => hkdf::Hkdf::<Sha256>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .is_ok(),
        Hash::Sha384 => hkdf::Hkdf::<Sha384>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .is_ok(),
    };
    ok.then_some(out)
}

fn hmac(hash: Hash, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match hash {
        Hash::Sha256 => {
            let mut m =
                <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().to_vec()
        }
        Hash::Sha384 => {
            let mut m =
                <Hmac<Sha384> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().to_vec()
        }
    }
}

/// The TLS 1.2 PRF (RFC 5246 §5): P_hash(secret, label + seed), `len` bytes.
pub fn prf12(hash: Hash, secret: &[u8], label: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + hash.output_len());
    // A(1) = HMAC(secret, label + seed); output block i = HMAC(secret, A(i) + label + seed).
    let mut a = hmac(hash, secret, &[label, seed]);
    while out.len() < len {
        out.extend_from_slice(&hmac(hash, secret, &[&a, label, seed]));
        a = hmac(hash, secret, &[&a]);
    }
    out.truncate(len);
    out
}

enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

/// Why a record did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than its tag (and explicit nonce), or empty after padding.
    Short,
    /// Authentication failed: wrong key, wrong sequence number, damaged bytes.
    Auth,
}

/// The keys protecting one direction of one epoch, and its record sequence number.
pub struct RecordKey {
    cipher: Cipher,
    /// TLS 1.3 and TLS 1.2 ChaCha20: the 12-byte IV; TLS 1.2 GCM: the 4-byte salt then zeros.
    iv: [u8; 12],
    tls13: bool,
    /// TLS 1.2 GCM: records start with an 8-byte explicit nonce.
    explicit_nonce: bool,
    pub seq: u64,
}

impl RecordKey {
    /// Keys from a key and IV (None when their lengths do not fit the AEAD).
    pub fn new(aead: Aead, tls13: bool, key: &[u8], iv: &[u8]) -> Option<RecordKey> {
        let cipher = match aead {
            Aead::Aes128Gcm => Cipher::Aes128(Box::new(Aes128Gcm::new_from_slice(key).ok()?)),
            Aead::Aes256Gcm => Cipher::Aes256(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
            Aead::ChaCha20Poly1305 => {
                Cipher::ChaCha(Box::new(ChaCha20Poly1305::new_from_slice(key).ok()?))
            }
        };
        let explicit_nonce = !tls13 && aead != Aead::ChaCha20Poly1305;
        let want_iv = if explicit_nonce { 4 } else { 12 };
        if iv.len() != want_iv {
            return None;
        }
        let mut v = [0u8; 12];
        v[..iv.len()].copy_from_slice(iv);
        Some(RecordKey {
            cipher,
            iv: v,
            tls13,
            explicit_nonce,
            seq: 0,
        })
    }

    /// TLS 1.3 record keys of a traffic secret.
    pub fn from_secret13(suite: Suite, secret: &[u8]) -> Option<RecordKey> {
        let key = hkdf_expand_label(suite.hash, secret, b"key", b"", suite.aead.key_len())?;
        let iv = hkdf_expand_label(suite.hash, secret, b"iv", b"", 12)?;
        RecordKey::new(suite.aead, true, &key, &iv)
    }

    /// Opens one record in place: `header` is its 5 bytes, `body` its payload. Returns the content type
    /// and the plaintext's range in `body`; the sequence number advances only on success.
    pub fn open(
        &mut self,
        header: &[u8; 5],
        body: &mut [u8],
    ) -> Result<(u8, std::ops::Range<usize>), OpenError> {
        let pre = if self.explicit_nonce { 8 } else { 0 };
        if body.len() < pre + TAG_LEN {
            return Err(OpenError::Short);
        }
        let mut nonce = self.iv;
        if self.explicit_nonce {
            nonce[4..].copy_from_slice(&body[..8]);
        } else {
            for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
                *n ^= s;
            }
        }
        let ct_end = body.len() - TAG_LEN;
        let (head, tag) = body.split_at_mut(ct_end);
        let ct = &mut head[pre..];
        let mut aad12 = [0u8; 13];
        let aad: &[u8] = if self.tls13 {
            header
        } else {
            aad12[..8].copy_from_slice(&self.seq.to_be_bytes());
            aad12[8..11].copy_from_slice(&header[..3]);
            aad12[11..].copy_from_slice(&(ct.len() as u16).to_be_bytes());
            &aad12
        };
        let tag = &*tag;
        let ok = match &self.cipher {
            Cipher::Aes128(c) => c
                .decrypt_in_place_detached(&nonce.into(), aad, ct, tag.into())
                .is_ok(),
            Cipher::Aes256(c) => c
                .decrypt_in_place_detached(&nonce.into(), aad, ct, tag.into())
                .is_ok(),
            Cipher::ChaCha(c) => c
                .decrypt_in_place_detached(&nonce.into(), aad, ct, tag.into())
                .is_ok(),
        };
        if !ok {
            return Err(OpenError::Auth);
        }
        self.seq = self.seq.wrapping_add(1);
        if !self.tls13 {
            return Ok((header[0], pre..ct_end));
        }
        // TLSInnerPlaintext: content, then the real type, then zeros.
        let Some(last) = ct.iter().rposition(|&b| b != 0) else {
            return Err(OpenError::Short);
        };
        Ok((ct[last], 0..last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const SUITE: Suite = Suite {
        id: 0x1301,
        aead: Aead::Aes128Gcm,
        hash: Hash::Sha256,
        tls13: true,
    };

    /// RFC 8448 §3 (Simple 1-RTT Handshake): the four traffic secrets and the keys and IVs they give.
    #[test]
    fn rfc8448_traffic_keys() {
        let cases = [
            (
                "b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f 3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21",
                "db fa a6 93 d1 76 2c 5b 66 6a f5 d9 50 25 8d 01",
                "5b d3 c7 1b 83 6e 0b 76 bb 73 26 5f",
            ),
            (
                "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38",
                "3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc",
                "5d 31 3e b2 67 12 76 ee 13 00 0b 30",
            ),
            (
                "9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52 87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5",
                "17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51",
                "5b 78 92 3d ee 08 57 90 33 e5 23 d9",
            ),
            (
                "a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43",
                "9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56",
                "cf 78 2b 88 dd 83 54 9a ad f1 e9 84",
            ),
        ];
        for (secret, key, iv) in cases {
            let s = h(secret);
            assert_eq!(
                hkdf_expand_label(Hash::Sha256, &s, b"key", b"", 16).unwrap(),
                h(key)
            );
            assert_eq!(
                hkdf_expand_label(Hash::Sha256, &s, b"iv", b"", 12).unwrap(),
                h(iv)
            );
        }
    }

    /// RFC 8448 §3: the client's Finished record (sequence 0 under its handshake keys) and its first
    /// application data record (50 bytes 00..31, sequence 0 under its application keys).
    #[test]
    fn rfc8448_records_open() {
        let c_hs = h("b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f 3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21");
        let rec = h("17 03 03 00 35 75 ec 4d c2 38 cc e6 0b 29 80 44 a7 1e 21 9c 56 cc 77 b0 51 7f e9 b9
                     3c 7a 4b fc 44 d8 7f 38 f8 03 38 ac 98 fc 46 de b3 84 bd 1c ae ac ab 68 67 d7 26 c4 05 46");
        let finished = h(
            "14 00 00 20 a8 ec 43 6d 67 76 34 ae 52 5a c1 fc eb e1 1a 03 9e c1 76 94 fa c6 e9 85
                          27 b6 42 f2 ed d5 ce 61",
        );
        let mut k = RecordKey::from_secret13(SUITE, &c_hs).unwrap();
        let hdr: [u8; 5] = rec[..5].try_into().unwrap();
        let mut body = rec[5..].to_vec();
        let (ty, r) = k.open(&hdr, &mut body).unwrap();
        assert_eq!((ty, &body[r]), (22, &finished[..]));
        assert_eq!(k.seq, 1);

        let c_ap = h("9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52 87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5");
        let rec = h("17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea 42 f9 14 aa 66
                     bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97 4e 1f 5a 62 92 a2 97 70
                     14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4");
        let mut k = RecordKey::from_secret13(SUITE, &c_ap).unwrap();
        let mut body = rec[5..].to_vec();
        let (ty, r) = k.open(&rec[..5].try_into().unwrap(), &mut body).unwrap();
        assert_eq!(ty, 23);
        assert_eq!(&body[r], &(0u8..50).collect::<Vec<_>>()[..]);

        // The same record under the wrong sequence number, or one flipped bit, does not open.
        let mut k = RecordKey::from_secret13(SUITE, &c_ap).unwrap();
        k.seq = 1;
        let mut body = rec[5..].to_vec();
        assert_eq!(
            k.open(&rec[..5].try_into().unwrap(), &mut body),
            Err(OpenError::Auth)
        );
        assert_eq!(k.seq, 1);
        let mut k = RecordKey::from_secret13(SUITE, &c_ap).unwrap();
        let mut body = rec[5..].to_vec();
        body[3] ^= 1;
        assert_eq!(
            k.open(&rec[..5].try_into().unwrap(), &mut body),
            Err(OpenError::Auth)
        );
        let mut short = vec![0u8; 15];
        assert_eq!(
            k.open(&rec[..5].try_into().unwrap(), &mut short),
            Err(OpenError::Short)
        );
    }

    /// RFC 5246's PRF with SHA-256, the widely published test vector (from the IETF TLS list, used by
    /// many implementations): secret 9b be 43 6b..., label "test label", 100 bytes.
    #[test]
    fn tls12_prf_sha256_vector() {
        let secret = h("9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35");
        let seed = h("a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c");
        let out = prf12(Hash::Sha256, &secret, b"test label", &seed, 100);
        assert_eq!(
            out,
            h("e3 f2 29 ba 72 7b e1 7b 8d 12 26 20 55 7c d4 53 c2 aa b2 1d 07 c3 d4 95 32 9b 52 d4 e6 1e db 5a
               6b 30 17 91 e9 0d 35 c9 c9 a4 6b 4e 14 ba f9 af 0f a0 22 f7 07 7d ef 17 ab fd 37 97 c0 56 4b ab
               4f bc 91 66 6e 9d ef 9b 97 fc e3 4f 79 67 89 ba a4 80 82 d1 22 ee 42 c5 a7 2e 5a 51 10 ff f7 01
               87 34 7b 66")
        );
    }
}
