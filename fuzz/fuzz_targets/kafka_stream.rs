//! Bytes → chunks and gaps of both directions of one `KafkaConnection` (or one body through the decoders).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kwire_fuzz::kafka_stream::run(data);
});
