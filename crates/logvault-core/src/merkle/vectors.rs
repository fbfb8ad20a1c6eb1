//! Published RFC 6962 test vectors, checked against this module's hashing, proof building and
//! proof verification, including the corruption probes the reference implementation runs.
//!
//! Source of every vector below: github.com/transparency-dev/merkle, `proof/verify_test.go`
//! (`leaves`, `roots`, `inclusionProofs`, `consistencyProofs`, and the probes of
//! `corruptInclusionProof` / `corruptConsistencyProof`) and `rfc6962/rfc6962_test.go` (hasher
//! vectors). They descend from Google's certificate-transparency reference tests. Go's leaf
//! numbers in `inclusionProofs` are 1-based; here they are 0-based.

use super::*;

/// Leaf data (hex) of the reference 8-leaf tree.
const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Roots of the trees of the first 1..=8 leaves.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, proof).
const INCLUSION: [(u64, u64, &[&str]); 5] = [
    (0, 1, &[]),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (old size, new size, proof).
const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// `sha256SomeHash` of the reference tests: a hash that is nothing's root.
const SOME_HASH: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";

fn hash(hex_text: &str) -> Hash {
    let bytes = hex::decode(hex_text).expect("hex");
    bytes.try_into().expect("32 bytes")
}

fn hashes(hex_texts: &[&str]) -> Vec<Hash> {
    hex_texts.iter().map(|text| hash(text)).collect()
}

fn leaf_hashes() -> Vec<Hash> {
    LEAVES
        .iter()
        .map(|text| leaf_hash(&hex::decode(text).expect("hex")))
        .collect()
}

fn source(leaves: &[Hash]) -> impl Fn(u64) -> Result<Hash, String> + '_ {
    |index| {
        let slot = usize::try_from(index).map_err(|e| e.to_string())?;
        leaves
            .get(slot)
            .copied()
            .ok_or_else(|| format!("no leaf {index}"))
    }
}

#[test]
fn hasher_matches_published_vectors() {
    let cases: [(&str, Hash, &str); 3] = [
        (
            "empty tree",
            empty_root(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            "empty leaf",
            leaf_hash(b""),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        ),
        (
            "leaf L123456",
            leaf_hash(b"L123456"),
            "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56",
        ),
    ];
    for (name, got, want) in cases {
        assert_eq!(hex::encode(got), want, "{name}");
    }
    assert_eq!(root_of(&[]), empty_root());
}

#[test]
fn roots_match_published_vectors() {
    let leaves = leaf_hashes();
    let mut frontier = Frontier::new();
    for (size, want) in (1..=8).zip(ROOTS) {
        frontier.push(leaves[size - 1]);
        assert_eq!(
            hex::encode(root_of(&leaves[..size])),
            want,
            "root_of size {size}"
        );
        assert_eq!(hex::encode(frontier.root()), want, "frontier size {size}");
    }
}

#[test]
fn inclusion_proofs_match_published_vectors() {
    let leaves = leaf_hashes();
    for (index, tree_size, proof_hex) in INCLUSION {
        let want = hashes(proof_hex);
        let root = hash(ROOTS[tree_size as usize - 1]);
        let leaf = leaves[index as usize];
        let got = inclusion_proof(&source(&leaves), index, tree_size).expect("proof");
        assert_eq!(got, want, "proof of {index} in {tree_size}");
        assert_eq!(
            verify_inclusion(&leaf, index, tree_size, &want, &root),
            Ok(())
        );
        for (probe, (leaf, index, tree_size, proof, root)) in
            corrupt_inclusion(leaf, index, tree_size, &want, root)
        {
            let verdict = verify_inclusion(&leaf, index, tree_size, &proof, &root);
            assert!(
                verdict.is_err(),
                "{probe} accepted for {index} in {tree_size}"
            );
        }
    }
}

#[test]
fn consistency_proofs_match_published_vectors() {
    let leaves = leaf_hashes();
    for (old_size, new_size, proof_hex) in CONSISTENCY {
        let want = hashes(proof_hex);
        let old_root = hash(ROOTS[old_size as usize - 1]);
        let new_root = hash(ROOTS[new_size as usize - 1]);
        let got = consistency_proof(&source(&leaves), old_size, new_size).expect("proof");
        assert_eq!(got, want, "proof from {old_size} to {new_size}");
        let verdict = verify_consistency(old_size, new_size, &old_root, &new_root, &want);
        assert_eq!(verdict, Ok(()), "{old_size} to {new_size}");
        if want.is_empty() {
            continue;
        }
        for (probe, (old_size, new_size, old_root, new_root, proof)) in
            corrupt_consistency(old_size, new_size, old_root, new_root, &want)
        {
            let verdict = verify_consistency(old_size, new_size, &old_root, &new_root, &proof);
            assert!(
                verdict.is_err(),
                "{probe} accepted for {old_size} to {new_size}"
            );
        }
    }
}

/// The reference `TestVerifyConsistency` edge cases, with this module's stricter rule that a
/// tree of size 0 has the empty root.
#[test]
fn consistency_edge_cases() {
    let root1 = hash(SOME_HASH);
    let root2 = hash(ROOTS[0]);
    let empty = empty_root();
    let cases: [(u64, u64, Hash, Hash, Vec<Hash>, bool); 12] = [
        (0, 0, empty, root2, vec![], true),
        (1, 1, root1, root2, vec![], false),
        (0, 0, empty, empty, vec![], true),
        (0, 1, empty, root2, vec![], true),
        (0, 1, root1, root2, vec![], false),
        (1, 1, root2, root2, vec![], true),
        (1, 0, root1, root2, vec![], false),
        (2, 1, root1, root2, vec![], false),
        (1, 2, root1, root2, vec![], false),
        (0, 0, empty, empty, vec![empty], false),
        (0, 1, empty, empty, vec![empty], false),
        (1, 1, empty, empty, vec![empty], false),
    ];
    for (old_size, new_size, old_root, new_root, proof, valid) in cases {
        let verdict = verify_consistency(old_size, new_size, &old_root, &new_root, &proof);
        assert_eq!(
            verdict.is_ok(),
            valid,
            "{old_size} to {new_size}: {verdict:?}"
        );
    }
}

type InclusionProbe = (Hash, u64, u64, Vec<Hash>, Hash);

/// The probes of the reference `corruptInclusionProof`.
fn corrupt_inclusion(
    leaf: Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: Hash,
) -> Vec<(String, InclusionProbe)> {
    let some = hash(SOME_HASH);
    let with = |mut front: Vec<Hash>, back: &[Hash]| {
        front.extend_from_slice(back);
        front
    };
    let mut probes = vec![
        (
            "index - 1",
            (leaf, index.wrapping_sub(1), tree_size, proof.to_vec(), root),
        ),
        (
            "index + 1",
            (leaf, index + 1, tree_size, proof.to_vec(), root),
        ),
        (
            "index ^ 2",
            (leaf, index ^ 2, tree_size, proof.to_vec(), root),
        ),
        (
            "size * 2",
            (leaf, index, tree_size * 2, proof.to_vec(), root),
        ),
        (
            "size / 2",
            (leaf, index, tree_size / 2, proof.to_vec(), root),
        ),
        ("wrong leaf", (some, index, tree_size, proof.to_vec(), root)),
        (
            "empty root",
            (leaf, index, tree_size, proof.to_vec(), empty_root()),
        ),
        (
            "random root",
            (leaf, index, tree_size, proof.to_vec(), some),
        ),
        (
            "trailing root",
            (leaf, index, tree_size, with(proof.to_vec(), &[root]), root),
        ),
        (
            "preceding root",
            (leaf, index, tree_size, with(vec![root], proof), root),
        ),
    ]
    .into_iter()
    .map(|(name, probe)| (name.to_string(), probe))
    .collect::<Vec<_>>();
    for position in 0..proof.len() {
        let mut wrong = proof.to_vec();
        wrong[position][0] ^= 8;
        let name = format!("modified proof[{position}] bit 3");
        probes.push((name, (leaf, index, tree_size, wrong, root)));
    }
    if let Some((_, shorter)) = proof.split_last() {
        let probe = (leaf, index, tree_size, shorter.to_vec(), root);
        probes.push(("removed component".into(), probe));
    }
    if proof.len() > 1 {
        let wrong = with(vec![proof[0], some], &proof[1..]);
        probes.push((
            "inserted component".into(),
            (leaf, index, tree_size, wrong, root),
        ));
    }
    probes
}

type ConsistencyProbe = (u64, u64, Hash, Hash, Vec<Hash>);

/// The probes of the reference `corruptConsistencyProof`.
fn corrupt_consistency(
    old_size: u64,
    new_size: u64,
    old_root: Hash,
    new_root: Hash,
    proof: &[Hash],
) -> Vec<(String, ConsistencyProbe)> {
    let wrong_root = hash(SOME_HASH);
    let with = |mut front: Vec<Hash>, back: &[Hash]| {
        front.extend_from_slice(back);
        front
    };
    let p = || proof.to_vec();
    let mut probes = vec![
        ("old - 1", (old_size - 1, new_size, old_root, new_root, p())),
        ("old + 1", (old_size + 1, new_size, old_root, new_root, p())),
        ("old ^ 2", (old_size ^ 2, new_size, old_root, new_root, p())),
        ("new * 2", (old_size, new_size * 2, old_root, new_root, p())),
        ("new / 2", (old_size, new_size / 2, old_root, new_root, p())),
        (
            "wrong old root",
            (old_size, new_size, wrong_root, new_root, p()),
        ),
        (
            "wrong new root",
            (old_size, new_size, old_root, wrong_root, p()),
        ),
        (
            "swapped roots",
            (old_size, new_size, new_root, old_root, p()),
        ),
        (
            "empty proof",
            (old_size, new_size, old_root, new_root, vec![]),
        ),
        (
            "trailing old root",
            (
                old_size,
                new_size,
                old_root,
                new_root,
                with(p(), &[old_root]),
            ),
        ),
        (
            "trailing new root",
            (
                old_size,
                new_size,
                old_root,
                new_root,
                with(p(), &[new_root]),
            ),
        ),
        (
            "preceding old root",
            (
                old_size,
                new_size,
                old_root,
                new_root,
                with(vec![old_root], proof),
            ),
        ),
        (
            "preceding new root",
            (
                old_size,
                new_size,
                old_root,
                new_root,
                with(vec![new_root], proof),
            ),
        ),
        (
            "preceding proof[0]",
            (
                old_size,
                new_size,
                old_root,
                new_root,
                with(vec![proof[0]], proof),
            ),
        ),
    ]
    .into_iter()
    .map(|(name, probe)| (name.to_string(), probe))
    .collect::<Vec<_>>();
    if let Some((_, shorter)) = proof.split_last() {
        let probe = (old_size, new_size, old_root, new_root, shorter.to_vec());
        probes.push(("truncated proof".into(), probe));
    }
    for position in 0..proof.len() {
        let mut wrong = p();
        wrong[position][0] ^= 16;
        let name = format!("modified proof[{position}] bit 4");
        probes.push((name, (old_size, new_size, old_root, new_root, wrong)));
    }
    probes
}
