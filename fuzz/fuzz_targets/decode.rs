//! Arbitrary (api key, version, bytes) through the request/response body decoders and header parsers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kwire_fuzz::decode(data));
