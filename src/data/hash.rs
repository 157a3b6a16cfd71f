//! Small, stable hashing and random numbers for the data pipeline. Everything here is defined
//! bit for bit (no std `Hasher`, whose output may change between Rust versions), so cache keys,
//! splits and shuffles are the same on every machine and every build.

/// FNV-1a with a 128-bit state: fingerprints of file lists (cache validity, split identity).
#[derive(Clone, Copy, Debug)]
pub struct Fnv128(u128);

const FNV128_OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
const FNV128_PRIME: u128 = 0x0000000001000000000000000000013B;

impl Default for Fnv128 {
    fn default() -> Self {
        Fnv128(FNV128_OFFSET)
    }
}

impl Fnv128 {
    pub fn new() -> Fnv128 {
        Fnv128::default()
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        for &x in b {
            self.0 ^= x as u128;
            self.0 = self.0.wrapping_mul(FNV128_PRIME);
        }
        self
    }
    /// A string with its length in front, so ("ab","c") and ("a","bc") hash differently.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64).bytes(s.as_bytes())
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    pub fn i128(&mut self, v: i128) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    pub fn finish(&self) -> u128 {
        self.0
    }
    /// 32 lowercase hex digits.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.0)
    }
}

/// Hash of a list of names in the given order (paths hash, per-split file-list hashes).
pub fn names_hash<S: AsRef<str>>(names: &[S]) -> String {
    let mut h = Fnv128::new();
    h.u64(names.len() as u64);
    for n in names {
        h.str(n.as_ref());
    }
    h.hex()
}

/// SplitMix64's output function: a strong 64-bit mixer.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
    z ^ (z >> 31)
}

/// SplitMix64 (Steele et al. 2014): tiny, fast, and good enough for shuffles and drawing
/// synthetic faces; the stream is fixed by the seed alone.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }
    /// A generator for sub-stream `a` of `seed` (e.g. one per face or per epoch).
    pub fn stream(seed: u64, a: u64) -> SplitMix {
        SplitMix(mix64(seed ^ mix64(a.wrapping_add(0x632BE59BD9B4E019))))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        mix64(self.0)
    }
    /// Uniform in [0, 1) with 53 bits.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }
    /// Uniform integer in [0, n) without modulo bias (Lemire's method).
    pub fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            let lo = m as u64;
            if lo >= n.wrapping_neg() % n {
                return (m >> 64) as u64;
            }
        }
    }
    /// True with probability p.
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
    /// Approximately normal (sum of four uniforms, rescaled): only +,-,* so it is the same on
    /// every platform, unlike libm's log/cos.
    pub fn normalish(&mut self) -> f64 {
        let s = self.f64() + self.f64() + self.f64() + self.f64();
        (s - 2.0) * 1.7320508075688772 // variance of the sum is 4/12
    }
}

/// A Fisher-Yates permutation of 0..n drawn from `rng`.
pub fn permutation(n: usize, rng: &mut SplitMix) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
    v
}
