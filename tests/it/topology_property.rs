//! Property test over random topologies (issue 8, item 10): `plan` and `generate` accept and
//! refuse the same inputs; a refused topology leaves no folder behind; every accepted one
//! generates a set that `verify` passes.
//!
//! The topologies are random but mostly valid: every product, format and TLS mode; DNS names
//! with labels up to 63 characters and names up to and past the length limits; IPv4, IPv6 and
//! IPv4-mapped hosts; `localhost`; shared hosts with offsets up to and past the highest allowed;
//! load balancers, extra SANs and aliases. ECDSA P-256 keeps each set fast. The seed is printed;
//! `APIM_PROPERTY_SEED=N` replays a run, `APIM_PROPERTY_CASES=N` sets how many topologies (10 by
//! default, to keep `cargo test` fast; run a few hundred before a release).

use crate::util::cli::{run, write_topology};
use crate::util::files::s;

/// xorshift64*: small, deterministic, good enough to pick cases. `wild` turns on the values at
/// and past the limits; tame topologies stay valid.
struct Rng(u64, bool);

impl Rng {
    /// A value at or past a limit, in wild topologies only.
    fn edge(&mut self, percent: u64) -> bool {
        self.1 && self.chance(percent)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn label(rng: &mut Rng, len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut s: String = (0..len)
        .map(|_| *rng.pick(CHARS) as char)
        .collect::<String>();
    if len > 2 && rng.chance(30) {
        s.replace_range(1..2, "-");
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.replace_range(0..1, "x");
    }
    s
}

/// A label of `base` to `base + spread - 1` characters.
fn rlabel(rng: &mut Rng, base: u64, spread: u64) -> String {
    let len = base + rng.below(spread);
    label(rng, len as usize)
}

/// A DNS name, sometimes long (labels up to 63, names up to about 230 characters).
fn dns_name(rng: &mut Rng) -> String {
    let labels = 1 + rng.below(4) as usize;
    let mut parts: Vec<String> = (0..labels)
        .map(|_| {
            let len = if rng.chance(10) {
                63
            } else {
                1 + rng.below(12) as usize
            };
            label(rng, len)
        })
        .collect();
    parts.push("acme.internal".into());
    let name = parts.join(".");
    if rng.chance(15) {
        name.to_uppercase()
    } else {
        name
    }
}

fn host(rng: &mut Rng) -> String {
    match rng.below(20) {
        0 => format!(
            "10.{}.{}.{}",
            rng.below(256),
            rng.below(256),
            1 + rng.below(254)
        ),
        1 => format!("fd00::{:x}", 1 + rng.below(0xfffe)),
        2 => format!("::ffff:10.0.{}.{}", rng.below(256), 1 + rng.below(254)),
        3 if rng.edge(100) => "localhost".into(),
        _ => dns_name(rng),
    }
}

fn node_name(rng: &mut Rng, i: usize) -> String {
    let len = if rng.edge(10) {
        60 + rng.below(8) as usize // around the 63 limit
    } else {
        1 + rng.below(10) as usize
    };
    let mut name = label(rng, len);
    name.truncate(len.saturating_sub(3).max(1));
    format!("{name}{i:02}")
}

fn profiles(product: &str) -> &'static [(&'static str, bool)] {
    match product {
        "apim-2.6" => &[
            ("key-manager", true),
            ("publisher", true),
            ("store", true),
            ("traffic-manager", true),
            ("gateway-worker", true),
        ],
        "apim-3.2" => &[
            ("key-manager", true),
            ("publisher", true),
            ("devportal", true),
            ("traffic-manager", true),
            ("gateway-worker", true),
        ],
        _ => &[
            ("control-plane", true),
            ("gateway-worker", true),
            ("traffic-manager", true),
            ("key-manager", false),
        ],
    }
}

fn topology(rng: &mut Rng) -> String {
    let product = *rng.pick(&["apim-2.6", "apim-3.2", "apim-4.x"]);
    let name_len = if rng.edge(10) {
        45 + rng.below(8)
    } else {
        3 + rng.below(20)
    };
    let mut t = format!(
        "name = \"{}\"\nproduct = \"{product}\"\n\n[pki]\nkey = \"ecdsa-p256\"\ninclude_localhost = {}\n",
        label(rng, name_len as usize),
        rng.chance(70)
    );
    if rng.chance(30) {
        t += &format!("organization = \"Acme {}\"\n", rlabel(rng, 1, 8));
    }
    t += &format!(
        "\n[keystores]\nformat = \"{}\"\ntls = \"{}\"\n",
        rng.pick(&["jks", "pkcs12", "pkcs12-legacy"]),
        rng.pick(&["per-node", "per-node", "shared"])
    );
    if rng.chance(20) {
        let len = if rng.edge(30) {
            60 + rng.below(8)
        } else {
            3 + rng.below(10)
        };
        t += &format!("primary_alias = \"{}\"\n", label(rng, len as usize));
    }
    let shared_host = host(rng);
    let mut i = 0;
    let mut lbs = Vec::new();
    for (profile, required) in profiles(product) {
        if !required && rng.chance(50) {
            continue;
        }
        let count = if rng.chance(25) { 2 } else { 1 };
        for _ in 0..count {
            i += 1;
            let h = if rng.edge(20) {
                shared_host.clone()
            } else {
                host(rng)
            };
            t += &format!(
                "\n[[node]]\nname = \"{}\"\nprofile = \"{profile}\"\nhost = \"{h}\"\n",
                node_name(rng, i)
            );
            if rng.chance(40) {
                let offset = if rng.edge(10) {
                    54_424 + rng.below(3) // around the highest allowed
                } else {
                    i as u64
                };
                t += &format!("offset = {offset}\n");
            }
            if rng.chance(15) {
                t += &format!("ip = \"10.1.{}.{}\"\n", rng.below(256), 1 + rng.below(254));
            }
            if rng.chance(15) {
                t += &format!(
                    "extra_sans = [\"*.{}\", \"{}\"]\n",
                    dns_name(rng),
                    dns_name(rng)
                );
            }
        }
        if count > 1 || rng.chance(10) {
            let h = match rng.below(12) {
                0 if rng.edge(100) => "localhost".to_string(),
                1 if rng.edge(100) => format!(
                    "{}.{}.{}.lb.internal",
                    label(rng, 63),
                    label(rng, 63),
                    rlabel(rng, 62, 2)
                ),
                2 => format!("10.9.0.{}", 1 + rng.below(254)),
                _ => format!("{}.lb.acme.internal", rlabel(rng, 1, 10)),
            };
            lbs.push(format!(
                "\n[[load_balancer]]\nhost = \"{h}\"\nfronts = \"{profile}\"\n"
            ));
        }
    }
    t + &lbs.concat()
}

#[test]
fn plan_and_generate_agree_and_every_accepted_topology_verifies() {
    let seed = std::env::var("APIM_PROPERTY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    let cases: usize = std::env::var("APIM_PROPERTY_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!("APIM_PROPERTY_SEED={seed} APIM_PROPERTY_CASES={cases}");
    let mut rng = Rng(seed, false);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut accepted, mut refused) = (0, 0);
    let mut failures = Vec::new();
    for case in 0..cases {
        let dir = tmp.path().join(format!("case{case}"));
        std::fs::create_dir(&dir).expect("mkdir");
        rng.1 = case % 2 == 1; // every other topology is wild
        let text = topology(&mut rng);
        let topo = write_topology(&dir, &text);
        let out = dir.join("out");
        let plan = run(&["plan", s(&topo), "--out", s(&out)], &[]);
        let generate = run(&["generate", s(&topo), "--out", s(&out)], &[]);
        let problem = if plan.code != generate.code {
            Some(format!(
                "plan exit {} but generate exit {}:\nplan: {}\ngenerate: {}",
                plan.code, generate.code, plan.stderr, generate.stderr
            ))
        } else if generate.code == 2 {
            refused += 1;
            let one_line =
                generate.stderr.starts_with("error: ") && !generate.stderr.contains("panicked");
            if out.exists() {
                Some(format!(
                    "refused ({}) but left {}",
                    generate.stderr.trim(),
                    out.display()
                ))
            } else if !one_line {
                Some(format!(
                    "refused without a clean error: {}",
                    generate.stderr
                ))
            } else {
                None
            }
        } else if generate.code != 0 {
            Some(format!(
                "generate exit {}: {}",
                generate.code, generate.stderr
            ))
        } else {
            accepted += 1;
            let verify = run(&["verify", s(&out)], &[]);
            (verify.code != 0).then(|| format!("verify exit {}:\n{}", verify.code, verify.stdout))
        };
        if let Some(p) = problem {
            failures.push(format!("case {case}:\n{text}\n=> {p}"));
        }
    }
    println!("{accepted} accepted and verified, {refused} refused alike by plan and generate");
    assert!(
        failures.is_empty(),
        "seed {seed}: {} of {cases} cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(
        accepted * 2 >= cases / 2,
        "too few valid topologies ({accepted} of {cases}) to prove anything"
    );
}
