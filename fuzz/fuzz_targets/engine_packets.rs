//! Bytes → captured packets → `kwire_engine::Engine` → JSON lines.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kwire_fuzz::engine_packets::run(data);
});
