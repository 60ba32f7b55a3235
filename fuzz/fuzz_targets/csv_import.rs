#![no_main]
//! Any bytes as each kind of record file: accepted or refused, never a panic.

use keydates::records::import::{Kind, check};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for kind in [
        Kind::Authorities,
        Kind::Cases,
        Kind::Visits,
        Kind::Seminars,
        Kind::Delegates,
    ] {
        let _ = check(kind, "fuzz.csv", data);
    }
});
