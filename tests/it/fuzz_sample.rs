//! A fast sample of the fuzz campaigns (issue 8, "Fuzzing"): every target of
//! `apim_pki::fuzzing` replays its seed corpus (fuzz/seeds/TARGET) and every input a campaign
//! ever crashed on (fuzz/regressions/TARGET), then a few thousand deterministic mutations of the
//! seeds: bit flips, byte changes, deletions, duplications, truncations, interesting integers and
//! splices. A panic fails the test with the input saved; so does one input taking over 30 s.
//! `scripts/fuzz.sh TARGET SECONDS` runs the real, coverage-guided campaign.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use apim_pki::fuzzing::{Target, TARGETS};

/// Mutations per target; each target also stops after `BUDGET`.
const MUTATIONS: usize = 3000;
const BUDGET: Duration = Duration::from_secs(3);
/// An input taking this long is a hang, even in a debug build on a loaded machine (a PKCS#12
/// seed takes about 0.3 s unloaded: PBKDF2 in unoptimised code); libFuzzer's release runs
/// (`scripts/fuzz.sh`) flag anything over 10 s.
const SLOW: Duration = Duration::from_secs(30);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read seed");
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

/// One mutation of `input` (with `other` for splices).
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = v.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            2 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                v.drain(a..b);
            }
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                let chunk = v[a..b].to_vec();
                let at = rng.below(len);
                v.splice(at..at, chunk);
            }
            4 => v.truncate(rng.below(len + 1)),
            5 if len >= 4 => {
                const INTERESTING: [u32; 8] =
                    [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF];
                let i = rng.below(len - 3);
                let value = INTERESTING[rng.below(INTERESTING.len())].to_be_bytes();
                v[i..i + 4].copy_from_slice(&value);
            }
            6 if !other.is_empty() => {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            7 => {
                const TOKENS: [&[u8]; 10] = [
                    b"\"", b"<", b"]]>", b"=", b"\n", b"[[", b"\\u", b"-----", b"{", b"\x00",
                ];
                let at = rng.below(len + 1);
                v.splice(at..at, TOKENS[rng.below(TOKENS.len())].iter().copied());
            }
            _ if len > 0 => {
                let i = rng.below(len);
                v[i] = *b"0123456789AZaz \t\r\n\"'<>&;#:[]{}"
                    .get(rng.below(32))
                    .unwrap_or(&0);
            }
            _ => v.push(rng.next() as u8),
        }
    }
    v
}

/// Runs `target` on `input`; a panic or a slow input is a failure that saves the input.
fn check(name: &str, target: Target, input: &[u8], failures: &mut Vec<String>) {
    let started = Instant::now();
    let outcome = std::panic::catch_unwind(|| target(input));
    let took = started.elapsed();
    let problem = match outcome {
        Err(_) => Some("panicked".to_string()),
        Ok(()) if took > SLOW => Some(format!("took {took:?}")),
        Ok(()) => None,
    };
    if let Some(problem) = problem {
        let dir = std::env::temp_dir().join("apim-pki-fuzz-sample");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{name}-{}", failures.len()));
        let _ = std::fs::write(&path, input);
        failures.push(format!(
            "{name}: {problem} on {} bytes, saved as {} (put it in fuzz/regressions/{name}/)",
            input.len(),
            path.display()
        ));
    }
}

#[test]
fn every_fuzz_target_survives_its_corpus_and_a_few_thousand_mutations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut failures = Vec::new();
    let mut summary = Vec::new();
    for (name, target) in TARGETS {
        let seeds = files(&root.join("seeds").join(name));
        assert!(
            !seeds.is_empty(),
            "fuzz/seeds/{name} is empty: run scripts/fuzz-seeds.sh"
        );
        let regressions = files(&root.join("regressions").join(name));
        for (_, bytes) in seeds.iter().chain(&regressions) {
            check(name, target, bytes, &mut failures);
        }
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
        let started = Instant::now();
        let mut runs = 0;
        while runs < MUTATIONS && started.elapsed() < BUDGET {
            let a = &seeds[rng.below(seeds.len())].1;
            let b = &seeds[rng.below(seeds.len())].1;
            let input = mutate(&mut rng, a, b);
            check(name, target, &input, &mut failures);
            runs += 1;
        }
        summary.push(format!(
            "{name}: {} seeds, {} regressions, {runs} mutations",
            seeds.len(),
            regressions.len()
        ));
    }
    println!("{}", summary.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
