//! Decryption throughput of `TlsStream`: a TLS 1.3 server stream of 16 KiB application data records
//! (the size a Fetch response fills) sealed here under AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305,
//! fed in 64 KiB chunks (as loopback TCP reassembly delivers them). Prints MB/s and CPU seconds per GB.
//!
//! `cargo run --release -p kwire-tls --example throughput [MB]` (default 256 MB per suite).

use std::time::Instant;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use kwire_tls::crypto::{hkdf_expand_label, Hash};
use kwire_tls::{KeyLog, Plain, Sender, TlsStream};

fn hello(mtype: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![mtype, 0];
    m.extend_from_slice(&(body.len() as u16).to_be_bytes());
    m.extend_from_slice(body);
    let mut r = vec![22, 3, 3];
    r.extend_from_slice(&(m.len() as u16).to_be_bytes());
    r.extend_from_slice(&m);
    r
}

fn main() {
    let mb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(256);
    let cr = [7u8; 32];
    let secret = [4u8; 48];
    for (suite, name, klen, hash) in [
        (0x1301u16, "TLS_AES_128_GCM_SHA256", 16, Hash::Sha256),
        (0x1302, "TLS_AES_256_GCM_SHA384", 32, Hash::Sha384),
        (0x1303, "TLS_CHACHA20_POLY1305_SHA256", 32, Hash::Sha256),
    ] {
        let sec = &secret[..hash.output_len()];
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let keys = KeyLog::parse(&format!(
            "SERVER_HANDSHAKE_TRAFFIC_SECRET {} {}\nSERVER_TRAFFIC_SECRET_0 {} {}\n",
            hex(&cr),
            hex(sec),
            hex(&cr),
            hex(sec)
        ));
        let key = hkdf_expand_label(hash, sec, b"key", b"", klen).unwrap();
        let iv = hkdf_expand_label(hash, sec, b"iv", b"", 12).unwrap();
        // One sealed record per sequence number, built up front (sealing is not what is measured).
        let plain = vec![0x42u8; 16384];
        let records = mb * 1024 * 1024 / plain.len();
        let mut stream = Vec::with_capacity(records * (plain.len() + 22));
        for seq in 0..records as u64 {
            let mut nonce = [0u8; 12];
            nonce.copy_from_slice(&iv);
            for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
                *n ^= s;
            }
            let mut buf = plain.clone();
            buf.push(23);
            let len = (buf.len() + 16) as u16;
            let hdr = [23, 3, 3, (len >> 8) as u8, len as u8];
            let n = nonce.into();
            let tag = match suite {
                0x1301 => aes_gcm::Aes128Gcm::new_from_slice(&key)
                    .unwrap()
                    .encrypt_in_place_detached(&n, &hdr, &mut buf),
                0x1302 => aes_gcm::Aes256Gcm::new_from_slice(&key)
                    .unwrap()
                    .encrypt_in_place_detached(&n, &hdr, &mut buf),
                _ => chacha20poly1305::ChaCha20Poly1305::new_from_slice(&key)
                    .unwrap()
                    .encrypt_in_place_detached(&n, &hdr, &mut buf),
            }
            .unwrap();
            stream.extend_from_slice(&hdr);
            stream.extend_from_slice(&buf);
            stream.extend_from_slice(&tag);
        }
        let mut ch = vec![3, 3];
        ch.extend_from_slice(&cr);
        ch.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0, 0, 0]);
        let mut sh = vec![3, 3];
        sh.extend_from_slice(&[9u8; 32]);
        sh.push(0);
        sh.extend_from_slice(&suite.to_be_bytes());
        sh.extend_from_slice(&[0, 0, 6, 0, 43, 0, 2, 3, 4]);
        let mut t = TlsStream::new();
        t.on_data(&keys, Sender::Client, &hello(1, &ch), &mut |_| {});
        t.on_data(&keys, Sender::Server, &hello(2, &sh), &mut |_| {});
        let start = Instant::now();
        let mut got = 0usize;
        for chunk in stream.chunks(65536) {
            t.on_data(&keys, Sender::Server, chunk, &mut |p| {
                if let Plain::Data(d) = p {
                    got += d.len();
                }
            });
        }
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(got, records * plain.len(), "{name}: every record decrypted");
        let gb = stream.len() as f64 / 1e9;
        println!(
            "{name:30} {:8.0} MB/s  {:6.2} CPU s per GB of TLS records ({} MB)",
            stream.len() as f64 / 1e6 / secs,
            secs / gb,
            stream.len() / 1_000_000
        );
    }
}
