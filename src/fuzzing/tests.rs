//! Every fuzz body over its committed seeds (`fuzz/seeds/<target>/`), and the crashes the
//! fuzzers found, kept as regression inputs (`fuzz/seeds/<target>/crash-*`).

use std::path::Path;

use super::TARGETS;

#[test]
fn every_target_passes_its_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    for (name, body) in TARGETS {
        let dir = root.join(name);
        let mut seeds: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        seeds.sort();
        assert!(!seeds.is_empty(), "no seeds for {name}");
        for seed in seeds {
            let data = std::fs::read(&seed).expect("a readable seed");
            body(&data);
        }
        body(&[]);
    }
}

#[test]
fn fuzz_targets_match_the_bodies() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    for (name, _) in TARGETS {
        let file = dir.join(format!("{name}.rs"));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            text.contains(&format!("holdless::fuzzing::{name}(")),
            "{} does not call its body",
            file.display()
        );
    }
}
