//! Train/val/test splits and per-epoch shuffles, both fixed by a seed.
//!
//! Each face gets a key hashed from (seed, name) and the faces are sorted by key; the first
//! round(n*train) are train, up to round(n*(train+val)) val, the rest test. The split depends
//! only on the seed and the names (paths relative to the folder), never on file order, file
//! system, thread count or machine. Each split lists its faces in dataset (name) order.

use std::str::FromStr;

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use super::hash::{names_hash, permutation, Fnv128, SplitMix};
use super::{Dataset, Source};

/// Fractions of the faces in train, val and test (`--split 0.7,0.1,0.2`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitFractions {
    pub train: f64,
    pub val: f64,
    pub test: f64,
}

impl Default for SplitFractions {
    fn default() -> Self {
        SplitFractions {
            train: 0.7,
            val: 0.1,
            test: 0.2,
        }
    }
}

impl SplitFractions {
    pub fn new(train: f64, val: f64, test: f64) -> Result<SplitFractions> {
        let v = [train, val, test];
        if v.iter().any(|x| !x.is_finite() || *x < 0.0) {
            bail!("--split {train},{val},{test}: fractions must be numbers >= 0");
        }
        let sum: f64 = v.iter().sum();
        if (sum - 1.0).abs() > 1e-6 {
            bail!("--split {train},{val},{test}: the fractions add up to {sum}, not 1 (e.g. --split 0.7,0.1,0.2)");
        }
        if train <= 0.0 {
            bail!("--split {train},{val},{test}: the train fraction must be above 0");
        }
        Ok(SplitFractions { train, val, test })
    }
    pub fn as_array(&self) -> [f64; 3] {
        [self.train, self.val, self.test]
    }
}

impl FromStr for SplitFractions {
    type Err = anyhow::Error;
    /// "0.7,0.1,0.2", or percentages "70,10,20".
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split(',').map(|p| p.trim()).collect();
        if parts.len() != 3 {
            bail!("--split {s:?}: give three fractions train,val,test, e.g. 0.7,0.1,0.2");
        }
        let mut v = [0.0f64; 3];
        for (x, p) in v.iter_mut().zip(&parts) {
            *x = p.parse().with_context(|| {
                format!("--split {s:?}: {p:?} is not a number (e.g. --split 0.7,0.1,0.2)")
            })?;
        }
        let sum: f64 = v.iter().sum();
        if (sum - 100.0).abs() < 1e-4 {
            v.iter_mut().for_each(|x| *x /= 100.0); // percentages
        }
        SplitFractions::new(v[0], v[1], v[2])
    }
}

impl std::fmt::Display for SplitFractions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{}", self.train, self.val, self.test)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Part {
    Train,
    Val,
    Test,
}

impl Part {
    pub const ALL: [Part; 3] = [Part::Train, Part::Val, Part::Test];
    /// `--split train|val|test`.
    pub fn parse(s: &str) -> anyhow::Result<Part> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" => Ok(Part::Train),
            "val" | "validation" => Ok(Part::Val),
            "test" => Ok(Part::Test),
            _ => anyhow::bail!("--split {s:?}: use train, val or test"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Val => "val",
            Part::Test => "test",
        }
    }
}

/// Which faces are in which part: what checkpoints and results carry so `eval` can check it
/// sees exactly the test faces training never saw. Plain data (serde), a few hundred bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitInfo {
    /// Where the faces came from, in words (for messages; not compared).
    pub source: String,
    /// True for the embedded synthetic faces.
    pub synthetic: bool,
    pub seed: u64,
    pub fractions: [f64; 3],
    /// Faces in the dataset.
    pub count: usize,
    /// Faces in train, val, test.
    pub counts: [usize; 3],
    /// Hash of every face's name, in order: changes when any file is added, removed or renamed.
    pub paths_hash: String,
    /// Hash of each part's names: train, val, test.
    pub part_hashes: [String; 3],
}

impl SplitInfo {
    /// What differs between the split a checkpoint was trained with (`self`) and the split
    /// made now; empty when they are the same. Each line says what it means for evaluation.
    pub fn differences(&self, now: &SplitInfo) -> Vec<String> {
        let mut d = Vec::new();
        if self.synthetic != now.synthetic {
            d.push(format!(
                "trained on {} but evaluating on {}",
                self.source, now.source
            ));
            return d;
        }
        if self.seed != now.seed || self.fractions != now.fractions {
            d.push(format!(
                "the split differs: trained with --seed {} --split {},{},{}; now --seed {} --split {},{},{} (pass the training values to evaluate on its held-out test set)",
                self.seed,
                self.fractions[0],
                self.fractions[1],
                self.fractions[2],
                now.seed,
                now.fractions[0],
                now.fractions[1],
                now.fractions[2]
            ));
        }
        if self.paths_hash != now.paths_hash {
            d.push(format!(
                "the dataset changed since training: it had {} faces (names hash {}), now {} ({})",
                self.count,
                &self.paths_hash[..12.min(self.paths_hash.len())],
                now.count,
                &now.paths_hash[..12.min(now.paths_hash.len())]
            ));
        }
        if self.part_hashes[2] != now.part_hashes[2] {
            d.push(format!(
                "the test set is not the one held out in training ({} faces then, {} now): numbers are not comparable and may include training faces",
                self.counts[2], now.counts[2]
            ));
        }
        d
    }
}

/// The three parts as dataset indices (each in ascending order), and their identity.
#[derive(Clone, Debug)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
    pub info: SplitInfo,
}

impl Split {
    pub fn part(&self, p: Part) -> &[usize] {
        match p {
            Part::Train => &self.train,
            Part::Val => &self.val,
            Part::Test => &self.test,
        }
    }

    /// Splits `ds` by `seed`. Errors when a part with a non-zero fraction would be empty.
    pub fn new(ds: &Dataset, fractions: SplitFractions, seed: u64) -> Result<Split> {
        let split = split_names(&ds.names, fractions, seed)?;
        let [train, val, test] = split;
        let info = SplitInfo {
            source: ds.source.describe(),
            synthetic: matches!(ds.source, Source::Synthetic { .. }),
            seed,
            fractions: fractions.as_array(),
            count: ds.len(),
            counts: [train.len(), val.len(), test.len()],
            paths_hash: names_hash(&ds.names),
            part_hashes: [&train, &val, &test]
                .map(|p| names_hash(&p.iter().map(|&i| &ds.names[i]).collect::<Vec<_>>())),
        };
        Ok(Split {
            train,
            val,
            test,
            info,
        })
    }
}

/// Part sizes for n faces: cumulative rounding, so they always add up to n.
pub fn part_sizes(n: usize, f: SplitFractions) -> [usize; 3] {
    let b1 = ((n as f64 * f.train).round() as usize).min(n);
    let b2 = ((n as f64 * (f.train + f.val)).round() as usize).clamp(b1, n);
    [b1, b2 - b1, n - b2]
}

/// The split of a list of names (see the module notes).
pub fn split_names<S: AsRef<str>>(
    names: &[S],
    fractions: SplitFractions,
    seed: u64,
) -> Result<[Vec<usize>; 3]> {
    let n = names.len();
    if n == 0 {
        bail!("the dataset is empty: nothing to split");
    }
    let sizes = part_sizes(n, fractions);
    for (k, p) in Part::ALL.iter().enumerate() {
        if sizes[k] == 0 && fractions.as_array()[k] > 0.0 {
            bail!(
                "the dataset has {n} face{} - too few for --split {fractions}: the {} part would be empty; add images or change --split",
                if n == 1 { "" } else { "s" },
                p.name()
            );
        }
    }
    let mut keyed: Vec<(u128, usize)> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut h = Fnv128::new();
            h.str("facegpu split").u64(seed).str(name.as_ref());
            // FNV's low bits mix poorly for short inputs; one more round of mixing.
            let x = h.finish();
            let k = ((super::hash::mix64(x as u64 ^ (x >> 64) as u64) as u128) << 64) | x;
            (k, i)
        })
        .collect();
    keyed.sort_unstable();
    let mut parts = [Vec::new(), Vec::new(), Vec::new()];
    for (rank, &(_, i)) in keyed.iter().enumerate() {
        let p = if rank < sizes[0] {
            0
        } else if rank < sizes[0] + sizes[1] {
            1
        } else {
            2
        };
        parts[p].push(i);
    }
    for p in &mut parts {
        p.sort_unstable();
    }
    Ok(parts)
}

/// The order in which epoch `epoch` visits n faces: a permutation of 0..n drawn from
/// (seed, epoch) alone.
pub fn epoch_order(n: usize, seed: u64, epoch: u32) -> Vec<u32> {
    let mut rng = SplitMix::stream(seed ^ 0x6570_6f63_6873_6875, epoch as u64); // "epochshu"
    permutation(n, &mut rng)
}
