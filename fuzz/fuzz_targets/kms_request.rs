//! See `ferrokms_fuzzing::kms_request` for the input format and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ferrokms_fuzzing::kms_request(data);
});
