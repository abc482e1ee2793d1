//! Any bytes as a practice-management export through a shipped map (the
//! physician group's: row per line, computed totals, splits, conditions):
//! every row becomes a claim or a named problem — never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

fn map() -> &'static edi_courier::map::InputMap {
    static MAP: OnceLock<edi_courier::map::InputMap> = OnceLock::new();
    MAP.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../edi-maps/physician-group.toml");
        edi_courier::map::InputMap::load(&path).expect("the shipped map loads")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(claims) = edi_courier::map::CsvClaims::new(map().clone(), data, Path::new("fuzz.csv"))
    {
        for _ in claims {}
    }
});
