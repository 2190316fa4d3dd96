//! Arbitrary bytes, cut into chunks of both directions with gaps, through one `KafkaConnection`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kwire_fuzz::pipeline(data));
