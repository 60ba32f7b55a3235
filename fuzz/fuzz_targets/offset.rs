#![no_main]
//! Any text as an offset: parse it, and apply what parses to a date.

use keydates::calendar::Calendar;
use keydates::calendar::offset::Offset;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(offset) = text.parse::<Offset>() {
        let calendar = Calendar::default();
        let anchor = chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        let _ = offset.apply(anchor, &calendar);
    }
});
