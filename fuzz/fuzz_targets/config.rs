#![no_main]
//! Any text as the settings file: loaded or refused, never a panic.

use keydates::config::Settings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Settings::from_toml(text, std::path::Path::new("."));
});
