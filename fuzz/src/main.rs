//! One libFuzzer binary for every target of `apim_pki::fuzzing`: `APIM_FUZZ_TARGET` names the
//! target (`scripts/fuzz.sh TARGET SECONDS` sets it).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn target() -> fn(&[u8]) {
    static TARGET: OnceLock<fn(&[u8])> = OnceLock::new();
    *TARGET.get_or_init(|| {
        let name = std::env::var("APIM_FUZZ_TARGET").unwrap_or_default();
        apim_pki::fuzzing::TARGETS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
            .unwrap_or_else(|| {
                let names: Vec<_> = apim_pki::fuzzing::TARGETS.iter().map(|(n, _)| *n).collect();
                eprintln!("APIM_FUZZ_TARGET must be one of: {}", names.join(" "));
                std::process::exit(2)
            })
    })
}

fuzz_target!(|data: &[u8]| target()(data));
