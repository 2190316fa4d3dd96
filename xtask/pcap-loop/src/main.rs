//! The benchmark peer "a plain libpcap read loop": opens a capture with libpcap's offline reader and
//! touches every packet (sums captured lengths), nothing else. `cargo xtask bench` times it beside kwire.

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: pcap-loop FILE");
        std::process::exit(2);
    };
    let mut cap = match pcap::Capture::from_file(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pcap-loop: {path}: {e}");
            std::process::exit(2);
        }
    };
    let (mut packets, mut bytes) = (0u64, 0u64);
    while let Ok(p) = cap.next_packet() {
        packets += 1;
        bytes += p.data.len() as u64;
    }
    println!("{packets} packets {bytes} bytes");
}
