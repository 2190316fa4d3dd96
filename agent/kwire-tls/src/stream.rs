//! [`TlsStream`]: one TLS connection's two byte streams → records → plaintext application data.
//!
//! Bytes come in per sender as TCP reassembly delivers them; records are cut from them (a record split
//! across segments is gathered, many records in one segment are taken one by one). The plaintext
//! handshake is followed only as far as needed: the ClientHello's random (the key log's index), the
//! ServerHello's random, cipher suite and version (`supported_versions` for TLS 1.3; a
//! HelloRetryRequest is passed over). Then:
//! - TLS 1.3: every `application_data` record is protected; a sender's records use its handshake
//!   traffic secret, then its application traffic secret 0, then each KeyUpdate's next secret. The
//!   switch is found by trial: a record that does not open under the current keys is tried under the
//!   next epoch's (the AEAD tag makes a wrong key certain), so no protected handshake message needs
//!   parsing. `change_cipher_spec` records (middlebox compatibility) are skipped.
//! - TLS 1.2: a sender's records are protected from its `change_cipher_spec` on, with the key block of
//!   the logged master secret.
//!
//! Easy to get wrong: plaintext comes out only for records of type `application_data` (inner type in
//! TLS 1.3); handshake messages sent under protection (Finished, NewSessionTicket, KeyUpdate) and
//! alerts are dropped. A record that cannot be opened is counted by reason and, once the direction has
//! keys, reported as [`Plain::Lost`] with its length, so the Kafka layer knows its stream has a hole. A
//! capture gap inside a direction loses the record boundary: that direction stops (counted), since
//! nothing in a TLS record lets a passive reader find the next boundary with certainty. Buffers are
//! bounded: a record is at most [`MAX_RECORD`] bytes (TLS allows 2^14 + 2048), the plaintext handshake
//! held to find a hello at most [`MAX_HELLO_BYTES`]; past either the direction stops (counted).

use crate::crypto::{self, prf12, RecordKey, Suite};
use crate::keylog::{KeyLog, Secrets};

/// Largest record accepted: 5-byte header + 2^14 + 2048 (TLS 1.2's ciphertext bound, larger than 1.3's).
pub const MAX_RECORD: usize = 5 + (1 << 14) + 2048;
/// Plaintext handshake bytes gathered per direction until its hello is whole (64 KiB).
pub const MAX_HELLO_BYTES: usize = 64 * 1024;

/// SHA-256("HelloRetryRequest"): the ServerHello random of a HelloRetryRequest (RFC 8446 §4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
];

const CT_CCS: u8 = 20;
const CT_ALERT: u8 = 21;
const CT_HANDSHAKE: u8 = 22;
const CT_APPDATA: u8 = 23;

/// Who sent the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Client,
    Server,
}

/// What a direction's plaintext stream gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Plain<'a> {
    /// Application data, in order.
    Data(&'a [u8]),
    /// A record of about this many bytes could not be decrypted: the plaintext has a hole here.
    Lost(u64),
}

/// Counters of one connection (added up by the engine). No key material.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TlsStats {
    /// Records opened (any content type).
    pub records_decrypted: u64,
    /// Application data bytes handed on.
    pub plaintext_bytes: u64,
    /// Protected records not opened because the key log has no secret for the connection.
    pub records_no_key: u64,
    /// Protected records of a cipher suite (or version) this crate does not decrypt.
    pub records_unsupported: u64,
    /// Protected records that did not authenticate under any key tried (wrong keys, damage).
    pub records_failed: u64,
    /// Directions stopped: a capture gap, a record over [`MAX_RECORD`] or bytes that are not a TLS
    /// record header, a hello over [`MAX_HELLO_BYTES`]. Nothing after it in that direction is read.
    pub directions_stopped: u64,
    /// Bytes of stopped directions not read (the record being gathered included).
    pub bytes_after_stop: u64,
}

impl TlsStats {
    pub fn add(&mut self, o: &TlsStats) {
        self.records_decrypted += o.records_decrypted;
        self.plaintext_bytes += o.plaintext_bytes;
        self.records_no_key += o.records_no_key;
        self.records_unsupported += o.records_unsupported;
        self.records_failed += o.records_failed;
        self.directions_stopped += o.directions_stopped;
        self.bytes_after_stop += o.bytes_after_stop;
    }
}

/// Where the keys of a connection stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Hellos not seen yet.
    Handshake,
    /// The key log has no secret for this connection's client random (or no ClientHello was seen).
    NoKeys,
    /// The suite or version is not one this crate decrypts.
    Unsupported,
    /// Keys derived.
    Keys,
}

#[derive(Default)]
struct Dir {
    /// Bytes of the record being gathered (header included), at most MAX_RECORD.
    rec: Vec<u8>,
    /// Plaintext handshake bytes until this side's hello is whole.
    hs: Vec<u8>,
    hello_done: bool,
    /// TLS 1.2: change_cipher_spec seen, records are protected.
    protected: bool,
    /// Keys of the current epoch.
    key: Option<RecordKey>,
    /// TLS 1.3: the secret of the next epoch (application secret 0 while in the handshake epoch, then
    /// each KeyUpdate's), tried when a record does not open under `key`.
    next_secret: Option<Vec<u8>>,
    /// Application data opened at least once (failures after it are holes in the plaintext).
    stopped: bool,
}

/// One TLS connection seen from the wire. Holds derived keys: no `Debug`.
pub struct TlsStream {
    client_random: Option<[u8; 32]>,
    server_random: Option<[u8; 32]>,
    suite: Option<Suite>,
    suite_id: u16,
    tls13: bool,
    state: KeyState,
    dirs: [Dir; 2],
    stats: TlsStats,
    /// A whole record taken from one chunk is opened here (at most [`MAX_RECORD`] bytes).
    scratch: Vec<u8>,
}

impl Default for TlsStream {
    fn default() -> Self {
        Self::new()
    }
}

fn idx(s: Sender) -> usize {
    match s {
        Sender::Client => 0,
        Sender::Server => 1,
    }
}

impl TlsStream {
    pub fn new() -> Self {
        TlsStream {
            client_random: None,
            server_random: None,
            suite: None,
            suite_id: 0,
            tls13: false,
            state: KeyState::Handshake,
            dirs: [Dir::default(), Dir::default()],
            stats: TlsStats::default(),
            scratch: Vec::new(),
        }
    }

    pub fn stats(&self) -> &TlsStats {
        &self.stats
    }

    pub fn key_state(&self) -> KeyState {
        self.state
    }

    /// The negotiated version and suite once the ServerHello was seen: (true for TLS 1.3, suite id).
    pub fn negotiated(&self) -> Option<(bool, u16)> {
        self.server_random.map(|_| (self.tls13, self.suite_id))
    }

    /// Whether any application data was decrypted.
    pub fn decrypted(&self) -> bool {
        self.stats.plaintext_bytes > 0
    }

    /// Bytes of `from`'s stream, in order. Plaintext application data (and holes) go to `out`.
    pub fn on_data(
        &mut self,
        keys: &KeyLog,
        from: Sender,
        mut data: &[u8],
        out: &mut impl FnMut(Plain<'_>),
    ) {
        let i = idx(from);
        while !data.is_empty() {
            if self.dirs[i].stopped {
                self.stats.bytes_after_stop += data.len() as u64;
                return;
            }
            let d = &mut self.dirs[i];
            // Fast path: a whole record at the start of `data` with nothing gathered.
            if d.rec.is_empty() {
                if let Some(len) = record_len(data) {
                    if data.len() >= len {
                        // Opened in place in a buffer kept between records (no allocation per record).
                        let mut rec = std::mem::take(&mut self.scratch);
                        rec.clear();
                        rec.extend_from_slice(&data[..len]);
                        data = &data[len..];
                        self.on_record(keys, from, &mut rec, out);
                        self.scratch = rec;
                        continue;
                    }
                }
            }
            let d = &mut self.dirs[i];
            // Gather the header first, then the body.
            let need = if d.rec.len() < 5 {
                5 - d.rec.len()
            } else {
                match record_len(&d.rec) {
                    Some(len) => len - d.rec.len(),
                    None => 0,
                }
            };
            let take = need.min(data.len());
            d.rec.extend_from_slice(&data[..take]);
            data = &data[take..];
            if d.rec.len() < 5 {
                return;
            }
            let Some(len) = record_len(&d.rec) else {
                self.stop(i);
                return;
            };
            if d.rec.len() == len {
                let mut rec = std::mem::take(&mut self.dirs[i].rec);
                self.on_record(keys, from, &mut rec, out);
                // Keep the allocation for the next record of this direction (unless it stopped).
                rec.clear();
                if !self.dirs[i].stopped {
                    self.dirs[i].rec = rec;
                }
            }
        }
    }

    /// The capture lost bytes of `from`'s stream: record boundaries are lost, the direction stops.
    pub fn on_gap(&mut self, from: Sender) {
        let i = idx(from);
        if !self.dirs[i].stopped {
            self.stop(i);
        }
    }

    fn stop(&mut self, i: usize) {
        let d = &mut self.dirs[i];
        d.stopped = true;
        self.stats.bytes_after_stop += d.rec.len() as u64;
        d.rec = Vec::new();
        d.hs = Vec::new();
        self.stats.directions_stopped += 1;
    }

    fn on_record(
        &mut self,
        keys: &KeyLog,
        from: Sender,
        rec: &mut [u8],
        out: &mut impl FnMut(Plain<'_>),
    ) {
        let i = idx(from);
        let ty = rec[0];
        let hdr: [u8; 5] = rec[..5].try_into().expect("5-byte header");
        let body = &mut rec[5..];
        let protected = match ty {
            CT_APPDATA => true,
            _ if self.tls13 && self.server_random.is_some() => false,
            _ => self.dirs[i].protected,
        };
        if !protected {
            match ty {
                CT_HANDSHAKE => self.on_handshake(keys, from, body),
                CT_CCS if !self.tls13 && self.server_random.is_some() => {
                    self.dirs[i].protected = true;
                }
                _ => {}
            }
            return;
        }
        match self.state {
            KeyState::Keys => {}
            KeyState::Handshake | KeyState::NoKeys => {
                self.stats.records_no_key += 1;
                return;
            }
            KeyState::Unsupported => {
                self.stats.records_unsupported += 1;
                return;
            }
        }
        // TLS 1.3 with no handshake secret logged for this side: its handshake records cannot open and
        // hide no application data; they are keyless, not failures (and no hole in the plaintext).
        let keyless_epoch = self.dirs[i].key.is_none();
        let opened = self.open(i, &hdr, body);
        match opened {
            Some((CT_APPDATA, r)) => {
                self.stats.plaintext_bytes += r.len() as u64;
                if !r.is_empty() {
                    out(Plain::Data(&body[r]));
                }
            }
            Some((CT_ALERT | CT_HANDSHAKE | CT_CCS, _)) | Some(_) => {}
            None if keyless_epoch => self.stats.records_no_key += 1,
            None => {
                self.stats.records_failed += 1;
                if ty == CT_APPDATA {
                    out(Plain::Lost(body.len() as u64));
                }
            }
        }
    }

    /// Opens a protected record under the current keys, else (TLS 1.3) under the next epoch's, which
    /// then become current.
    fn open(
        &mut self,
        i: usize,
        hdr: &[u8; 5],
        body: &mut [u8],
    ) -> Option<(u8, std::ops::Range<usize>)> {
        let suite = self.suite?;
        let d = &mut self.dirs[i];
        // Opening decrypts in place only on success (the AEAD checks the tag first), so the bytes can
        // be tried again under the next key.
        if let Some(k) = d.key.as_mut() {
            if let Ok(r) = k.open(hdr, body) {
                self.stats.records_decrypted += 1;
                return Some(r);
            }
        }
        if !suite.tls13 {
            return None;
        }
        let next = d.next_secret.as_deref()?;
        let mut k = RecordKey::from_secret13(suite, next)?;
        let r = k.open(hdr, body).ok()?;
        let upd = crypto::hkdf_expand_label(
            suite.hash,
            next,
            b"traffic upd",
            b"",
            suite.hash.output_len(),
        );
        d.key = Some(k);
        d.next_secret = upd;
        self.stats.records_decrypted += 1;
        Some(r)
    }

    fn on_handshake(&mut self, keys: &KeyLog, from: Sender, body: &[u8]) {
        let i = idx(from);
        if self.dirs[i].hello_done {
            return;
        }
        if self.dirs[i].hs.len() + body.len() > MAX_HELLO_BYTES {
            self.stop(i);
            return;
        }
        self.dirs[i].hs.extend_from_slice(body);
        loop {
            let hs = &self.dirs[i].hs;
            if hs.len() < 4 {
                return;
            }
            let len = u32::from_be_bytes([0, hs[1], hs[2], hs[3]]) as usize;
            if hs.len() < 4 + len {
                return;
            }
            let msg: Vec<u8> = hs[4..4 + len].to_vec();
            let mtype = hs[0];
            self.dirs[i].hs.drain(..4 + len);
            match (from, mtype) {
                (Sender::Client, 1) => {
                    if let Some(r) = msg.get(2..34) {
                        self.client_random = Some(r.try_into().expect("32 bytes"));
                    }
                    self.dirs[i].hello_done = true;
                }
                (Sender::Server, 2) if self.on_server_hello(&msg) => {
                    self.dirs[i].hello_done = true;
                    self.derive(keys);
                }
                _ => {}
            }
            if self.dirs[i].hello_done {
                self.dirs[i].hs = Vec::new();
                return;
            }
        }
    }

    /// Reads a ServerHello; false for a HelloRetryRequest or one too short to read.
    fn on_server_hello(&mut self, m: &[u8]) -> bool {
        let Some(random) = m.get(2..34) else {
            return false;
        };
        if random == HRR_RANDOM {
            return false;
        }
        let Some(&sid_len) = m.get(34) else {
            return false;
        };
        let p = 35 + sid_len as usize;
        let Some(cs) = m.get(p..p + 2) else {
            return false;
        };
        self.server_random = Some(random.try_into().expect("32 bytes"));
        self.suite_id = u16::from_be_bytes([cs[0], cs[1]]);
        // Extensions after the compression method.
        let mut q = p + 3;
        if let Some(l) = m.get(q..q + 2) {
            let end = (q + 2 + u16::from_be_bytes([l[0], l[1]]) as usize).min(m.len());
            q += 2;
            while q + 4 <= end {
                let et = u16::from_be_bytes([m[q], m[q + 1]]);
                let el = u16::from_be_bytes([m[q + 2], m[q + 3]]) as usize;
                if et == 43 && el == 2 && q + 6 <= end {
                    self.tls13 = u16::from_be_bytes([m[q + 4], m[q + 5]]) == 0x0304;
                }
                q += 4 + el;
            }
        }
        true
    }

    /// Both hellos seen: the record keys of both directions from the key log.
    fn derive(&mut self, keys: &KeyLog) {
        let suite = crypto::suite(self.suite_id).filter(|s| s.tls13 == self.tls13);
        let Some(suite) = suite else {
            self.state = KeyState::Unsupported;
            return;
        };
        self.suite = Some(suite);
        let secrets = self.client_random.as_ref().and_then(|cr| keys.get(cr));
        let ok = match secrets {
            Some(s) if suite.tls13 => self.derive13(suite, s),
            Some(s) => self.derive12(suite, s),
            None => false,
        };
        self.state = if ok { KeyState::Keys } else { KeyState::NoKeys };
    }

    fn derive13(&mut self, suite: Suite, s: &Secrets) -> bool {
        let mut any = false;
        for (i, hs, ap) in [
            (0, &s.client_handshake, &s.client_traffic_0),
            (1, &s.server_handshake, &s.server_traffic_0),
        ] {
            let d = &mut self.dirs[i];
            d.key = hs
                .as_deref()
                .and_then(|h| RecordKey::from_secret13(suite, h));
            d.next_secret = ap.as_deref().map(<[u8]>::to_vec);
            any |= d.key.is_some() || d.next_secret.is_some();
        }
        any
    }

    fn derive12(&mut self, suite: Suite, s: &Secrets) -> bool {
        let (Some(master), Some(cr), Some(sr)) = (
            s.master.as_deref(),
            self.client_random.as_ref(),
            self.server_random.as_ref(),
        ) else {
            return false;
        };
        let klen = suite.aead.key_len();
        let ivlen = if suite.aead == crypto::Aead::ChaCha20Poly1305 {
            12
        } else {
            4
        };
        let mut seed = [0u8; 64];
        seed[..32].copy_from_slice(sr);
        seed[32..].copy_from_slice(cr);
        let kb = prf12(
            suite.hash,
            master,
            b"key expansion",
            &seed,
            2 * klen + 2 * ivlen,
        );
        let (ck, rest) = kb.split_at(klen);
        let (sk, rest) = rest.split_at(klen);
        let (civ, siv) = rest.split_at(ivlen);
        self.dirs[0].key = RecordKey::new(suite.aead, false, ck, civ);
        self.dirs[1].key = RecordKey::new(suite.aead, false, sk, siv);
        self.dirs[0].key.is_some() && self.dirs[1].key.is_some()
    }
}

/// The whole length (header included) of the record starting `b`, when its header is plausible.
fn record_len(b: &[u8]) -> Option<usize> {
    if b.len() < 5 || !(CT_CCS..=24).contains(&b[0]) || b[1] != 3 {
        return None;
    }
    let len = 5 + u16::from_be_bytes([b[3], b[4]]) as usize;
    (len <= MAX_RECORD).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{hkdf_expand_label, Aead, Hash};
    use aes_gcm::aead::{AeadInPlace, KeyInit};

    const CR: [u8; 32] = [7; 32];
    const SR: [u8; 32] = [9; 32];

    fn hexs(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn record(ty: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![ty, 3, 3];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    fn handshake(mtype: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![mtype, 0];
        m.extend_from_slice(&(body.len() as u16).to_be_bytes());
        m.extend_from_slice(body);
        record(CT_HANDSHAKE, &m)
    }

    fn client_hello() -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&CR);
        b.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0, 0, 0]);
        handshake(1, &b)
    }

    fn server_hello(suite: u16, tls13: bool) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&SR);
        b.push(0);
        b.extend_from_slice(&suite.to_be_bytes());
        b.push(0);
        if tls13 {
            b.extend_from_slice(&[0, 6, 0, 43, 0, 2, 3, 4]);
        } else {
            b.extend_from_slice(&[0, 0]);
        }
        handshake(2, &b)
    }

    /// Seals like a real peer: `key`/`iv` of the suite, sequence `seq`.
    fn seal(
        aead: Aead,
        tls13: bool,
        key: &[u8],
        iv: &[u8],
        seq: u64,
        ty: u8,
        data: &[u8],
    ) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        let explicit = !tls13 && aead != Aead::ChaCha20Poly1305;
        let mut buf = data.to_vec();
        let (outer, body_len) = if tls13 {
            buf.push(ty);
            (CT_APPDATA, buf.len() + 16)
        } else {
            (ty, buf.len() + 16 + if explicit { 8 } else { 0 })
        };
        if explicit {
            nonce[..4].copy_from_slice(iv);
            nonce[4..].copy_from_slice(&seq.to_be_bytes());
        } else {
            nonce.copy_from_slice(iv);
            for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
                *n ^= s;
            }
        }
        let hdr = [outer, 3, 3, (body_len >> 8) as u8, body_len as u8];
        let mut aad = hdr.to_vec();
        if !tls13 {
            aad = seq.to_be_bytes().to_vec();
            aad.extend_from_slice(&[ty, 3, 3]);
            aad.extend_from_slice(&(data.len() as u16).to_be_bytes());
        }
        let n = nonce.into();
        let tag = match aead {
            Aead::Aes128Gcm => aes_gcm::Aes128Gcm::new_from_slice(key)
                .unwrap()
                .encrypt_in_place_detached(&n, &aad, &mut buf)
                .unwrap(),
            Aead::Aes256Gcm => aes_gcm::Aes256Gcm::new_from_slice(key)
                .unwrap()
                .encrypt_in_place_detached(&n, &aad, &mut buf)
                .unwrap(),
            Aead::ChaCha20Poly1305 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key)
                .unwrap()
                .encrypt_in_place_detached(&n, &aad, &mut buf)
                .unwrap(),
        };
        let mut r = hdr.to_vec();
        if explicit {
            r.extend_from_slice(&seq.to_be_bytes());
        }
        r.extend_from_slice(&buf);
        r.extend_from_slice(&tag);
        r
    }

    fn seal13(secret: &[u8], seq: u64, ty: u8, data: &[u8]) -> Vec<u8> {
        let key = hkdf_expand_label(Hash::Sha256, secret, b"key", b"", 16).unwrap();
        let iv = hkdf_expand_label(Hash::Sha256, secret, b"iv", b"", 12).unwrap();
        seal(Aead::Aes128Gcm, true, &key, &iv, seq, ty, data)
    }

    fn keylog13(c_hs: &[u8], s_hs: &[u8], c_ap: &[u8], s_ap: &[u8]) -> KeyLog {
        let cr = hexs(&CR);
        KeyLog::parse(&format!(
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET {cr} {}\nSERVER_HANDSHAKE_TRAFFIC_SECRET {cr} {}\n\
             CLIENT_TRAFFIC_SECRET_0 {cr} {}\nSERVER_TRAFFIC_SECRET_0 {cr} {}\n",
            hexs(c_hs),
            hexs(s_hs),
            hexs(c_ap),
            hexs(s_ap)
        ))
    }

    /// Feeds `bytes` in segments of `seg` bytes; returns the plaintext and holes seen.
    fn feed(
        t: &mut TlsStream,
        k: &KeyLog,
        from: Sender,
        bytes: &[u8],
        seg: usize,
    ) -> (Vec<u8>, u64) {
        let (mut data, mut lost) = (Vec::new(), 0);
        for c in bytes.chunks(seg.max(1)) {
            t.on_data(k, from, c, &mut |p| match p {
                Plain::Data(d) => data.extend_from_slice(d),
                Plain::Lost(n) => lost += n,
            });
        }
        (data, lost)
    }

    /// A TLS 1.3 conversation: handshake epochs, application data split over segments of every size and
    /// many records per segment, a KeyUpdate on the client side.
    fn conversation13() -> (Vec<u8>, Vec<u8>, KeyLog) {
        let (c_hs, s_hs, c_ap, s_ap) = ([1u8; 32], [2u8; 32], [3u8; 32], [4u8; 32]);
        let c_ap1 = hkdf_expand_label(Hash::Sha256, &c_ap, b"traffic upd", b"", 32).unwrap();
        let mut client = client_hello();
        client.extend(record(CT_CCS, &[1]));
        client.extend(seal13(&c_hs, 0, CT_HANDSHAKE, &[20, 0, 0, 32]));
        client.extend(seal13(&c_ap, 0, CT_APPDATA, b"request one;"));
        client.extend(seal13(&c_ap, 1, CT_APPDATA, b"request two;"));
        client.extend(seal13(&c_ap, 2, CT_HANDSHAKE, &[24, 0, 0, 1, 0]));
        client.extend(seal13(&c_ap1, 0, CT_APPDATA, &[b'x'; 20000][..16384]));
        client.extend(seal13(&c_ap1, 1, CT_APPDATA, b"after update"));
        let mut server = server_hello(0x1301, true);
        server.extend(record(CT_CCS, &[1]));
        server.extend(seal13(&s_hs, 0, CT_HANDSHAKE, &[8, 0, 0, 2, 0, 0]));
        server.extend(seal13(&s_hs, 1, CT_HANDSHAKE, &[20, 0, 0, 32]));
        server.extend(seal13(&s_ap, 0, CT_HANDSHAKE, &[4, 0, 0, 1, 0]));
        server.extend(seal13(&s_ap, 1, CT_APPDATA, b"response one"));
        (client, server, keylog13(&c_hs, &s_hs, &c_ap, &s_ap))
    }

    #[test]
    fn tls13_decrypts_across_segments_epochs_and_key_update() {
        let (client, server, keys) = conversation13();
        let mut want_c = b"request one;request two;".to_vec();
        want_c.extend_from_slice(&[b'x'; 16384]);
        want_c.extend_from_slice(b"after update");
        for seg in [1, 3, 7, 100, 1500, 1 << 20] {
            let mut t = TlsStream::new();
            // The ClientHello comes first, then the server's flight, then the client's.
            let ch = client_hello().len();
            assert_eq!(
                feed(&mut t, &keys, Sender::Client, &client[..ch], seg).0,
                b""
            );
            let (s, lost) = feed(&mut t, &keys, Sender::Server, &server, seg);
            assert_eq!((s.as_slice(), lost), (&b"response one"[..], 0), "seg {seg}");
            let (c, lost) = feed(&mut t, &keys, Sender::Client, &client[ch..], seg);
            assert_eq!(lost, 0, "seg {seg}");
            assert_eq!(c, want_c, "seg {seg}");
            assert_eq!(t.key_state(), KeyState::Keys);
            assert_eq!(t.negotiated(), Some((true, 0x1301)));
            assert_eq!(t.stats().records_decrypted, 10);
            assert_eq!(t.stats().records_failed, 0);
            assert_eq!(t.stats().plaintext_bytes, (want_c.len() + 12) as u64);
        }
    }

    #[test]
    fn wrong_keys_fail_counted_never_invented() {
        let (client, server, _) = conversation13();
        let keys = keylog13(&[5; 32], &[6; 32], &[7; 32], &[8; 32]);
        let mut t = TlsStream::new();
        let ch = client_hello().len();
        feed(&mut t, &keys, Sender::Client, &client[..ch], 1500);
        let (s, s_lost) = feed(&mut t, &keys, Sender::Server, &server, 1500);
        let (c, c_lost) = feed(&mut t, &keys, Sender::Client, &client[ch..], 1500);
        assert!(s.is_empty() && c.is_empty());
        assert!(s_lost > 0 && c_lost > 0);
        assert_eq!(t.stats().records_decrypted, 0);
        assert_eq!(t.stats().records_failed, 10);
    }

    /// A key log with the application secrets only (no handshake secrets): the handshake records are
    /// keyless (no hole in the plaintext), the application data decrypts.
    #[test]
    fn application_secrets_alone_suffice() {
        let (client, server, _) = conversation13();
        let cr = hexs(&CR);
        let keys = KeyLog::parse(&format!(
            "CLIENT_TRAFFIC_SECRET_0 {cr} {}\nSERVER_TRAFFIC_SECRET_0 {cr} {}\n",
            hexs(&[3; 32]),
            hexs(&[4; 32])
        ));
        let mut t = TlsStream::new();
        let ch = client_hello().len();
        feed(&mut t, &keys, Sender::Client, &client[..ch], 1500);
        let (s, s_lost) = feed(&mut t, &keys, Sender::Server, &server, 1500);
        let (c, c_lost) = feed(&mut t, &keys, Sender::Client, &client[ch..], 1500);
        assert_eq!((s.as_slice(), s_lost, c_lost), (&b"response one"[..], 0, 0));
        assert!(c.starts_with(b"request one;request two;") && c.ends_with(b"after update"));
        assert_eq!(t.stats().records_no_key, 3);
        assert_eq!(t.stats().records_failed, 0);
    }

    #[test]
    fn no_keys_counted() {
        let (client, server, _) = conversation13();
        let mut t = TlsStream::new();
        let keys = KeyLog::default();
        let ch = client_hello().len();
        feed(&mut t, &keys, Sender::Client, &client[..ch], 1500);
        let (s, lost) = feed(&mut t, &keys, Sender::Server, &server, 1500);
        assert_eq!((s.len(), lost), (0, 0));
        assert_eq!(t.key_state(), KeyState::NoKeys);
        assert_eq!(t.stats().records_no_key, 4);
    }

    #[test]
    fn tls12_gcm_and_chacha_from_master_secret() {
        let master = [0x42u8; 48];
        let keys = KeyLog::parse(&format!("CLIENT_RANDOM {} {}\n", hexs(&CR), hexs(&master)));
        for (suite, aead, hash, ivlen) in [
            (0xC02F, Aead::Aes128Gcm, Hash::Sha256, 4),
            (0xC030, Aead::Aes256Gcm, Hash::Sha384, 4),
            (0xCCA8, Aead::ChaCha20Poly1305, Hash::Sha256, 12),
        ] {
            let kl = aead.key_len();
            let mut seed = SR.to_vec();
            seed.extend_from_slice(&CR);
            let kb = prf12(hash, &master, b"key expansion", &seed, 2 * kl + 2 * ivlen);
            let (ck, sk) = (&kb[..kl], &kb[kl..2 * kl]);
            let (civ, siv) = (&kb[2 * kl..2 * kl + ivlen], &kb[2 * kl + ivlen..]);
            let mut client = client_hello();
            client.extend(record(CT_CCS, &[1]));
            client.extend(seal(aead, false, ck, civ, 0, CT_HANDSHAKE, &[20, 0, 0, 12]));
            client.extend(seal(aead, false, ck, civ, 1, CT_APPDATA, b"produce"));
            let mut server = server_hello(suite, false);
            server.extend(handshake(11, &[0; 300]));
            server.extend(record(CT_CCS, &[1]));
            server.extend(seal(aead, false, sk, siv, 0, CT_HANDSHAKE, &[20, 0, 0, 12]));
            server.extend(seal(aead, false, sk, siv, 1, CT_APPDATA, b"acked"));
            let mut t = TlsStream::new();
            let ch = client_hello().len();
            feed(&mut t, &keys, Sender::Client, &client[..ch], 9);
            let (s, _) = feed(&mut t, &keys, Sender::Server, &server, 9);
            let (c, _) = feed(&mut t, &keys, Sender::Client, &client[ch..], 9);
            assert_eq!(
                (c.as_slice(), s.as_slice()),
                (&b"produce"[..], &b"acked"[..])
            );
            assert_eq!(t.negotiated(), Some((false, suite)));
            assert_eq!(t.stats().records_decrypted, 4, "suite {suite:04x}");
        }
    }

    #[test]
    fn gaps_and_garbage_stop_a_direction_without_panic() {
        let (client, server, keys) = conversation13();
        let mut t = TlsStream::new();
        let ch = client_hello().len();
        feed(&mut t, &keys, Sender::Client, &client[..ch], 1500);
        feed(&mut t, &keys, Sender::Server, &server[..40], 1500);
        t.on_gap(Sender::Server);
        let (s, _) = feed(&mut t, &keys, Sender::Server, &server[60..], 1500);
        assert!(s.is_empty());
        assert_eq!(t.stats().directions_stopped, 1);
        // The 40 bytes gathered of the ServerHello record, then everything fed after the gap.
        assert_eq!(t.stats().bytes_after_stop, (40 + server.len() - 60) as u64);
        // Not a record header: the client direction stops too; the whole state stays usable.
        let (c, _) = feed(
            &mut t,
            &keys,
            Sender::Client,
            b"GET / HTTP/1.1\r\n\r\n",
            1500,
        );
        assert!(c.is_empty());
        assert_eq!(t.stats().directions_stopped, 2);
        // Arbitrary bytes of every kind never panic.
        for seed in 0..200u32 {
            let mut t = TlsStream::new();
            let junk: Vec<u8> = (0..600u32)
                .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed * 97) >> 7) as u8)
                .collect();
            let mut c = client_hello();
            c.extend(&junk);
            feed(&mut t, &keys, Sender::Client, &c, 1 + seed as usize % 50);
            let mut s = server_hello(0x1301, true);
            s.extend(record(CT_APPDATA, &junk[..(seed as usize % 40)]));
            s.extend(&junk);
            feed(&mut t, &keys, Sender::Server, &s, 1 + seed as usize % 13);
        }
    }
}
