//! Any bytes through the streaming X12 reader that `read`, `collect` and
//! the 837 tools share (837P/837I, TA1, 999, 277CA, 835): it must return a
//! summary or an error — never panic, never hang, memory bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut claims = 0usize;
    let _ = edi_courier::inspect::read_items_streaming(data, |_| claims += 1);
});
