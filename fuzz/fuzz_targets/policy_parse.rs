//! See `ferrokms_fuzzing::policy_parse` for the input format and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ferrokms_fuzzing::policy_parse(data);
});
