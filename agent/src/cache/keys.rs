//! Which key a lookup asks for: keys `0..key_space`, key `k` as popular as rank `k + 1` of a Zipf law with exponent
//! `zipf` (0: uniform). Every agent and load thread draws from its own stream of one seed, so a run is repeatable
//! from its seed and streams never repeat each other.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

#[derive(Debug)]
pub struct KeySampler {
    rng: StdRng,
    key_space: u64,
    zipf: Option<Zipf<f64>>,
}

impl KeySampler {
    /// The sampler of load thread `thread` of the agent at `agent_index`.
    pub fn new(seed: u64, agent_index: u64, thread: u64, key_space: u64, zipf: f64) -> Self {
        // Distinct streams: the seed mixed with the agent and thread (splitmix-style constants).
        let stream = seed
            ^ agent_index.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ thread.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let key_space = key_space.max(1);
        KeySampler {
            rng: StdRng::seed_from_u64(stream),
            key_space,
            zipf: (zipf > 0.0)
                .then(|| Zipf::new(key_space as f64, zipf).ok())
                .flatten(),
        }
    }

    /// The next key number.
    pub fn next_key(&mut self) -> u64 {
        match &self.zipf {
            // Zipf draws ranks 1..=n.
            Some(z) => (z.sample(&mut self.rng) as u64).clamp(1, self.key_space) - 1,
            None => self.rng.random_range(0..self.key_space),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distinct_share(zipf: f64) -> f64 {
        let mut s = KeySampler::new(7, 0, 0, 1000, zipf);
        let draws: Vec<u64> = (0..10_000).map(|_| s.next_key()).collect();
        assert!(draws.iter().all(|k| *k < 1000));
        let distinct: std::collections::BTreeSet<_> = draws.iter().collect();
        distinct.len() as f64 / 1000.0
    }

    #[test]
    fn uniform_covers_the_space_and_zipf_concentrates() {
        assert!(
            distinct_share(0.0) > 0.99,
            "10 draws per key cover nearly every key"
        );
        assert!(distinct_share(1.2) < distinct_share(0.6));
        let (mut a, mut b) = (
            KeySampler::new(1, 0, 0, 100, 1.0),
            KeySampler::new(1, 0, 0, 100, 1.0),
        );
        assert_eq!(
            (0..50).map(|_| a.next_key()).collect::<Vec<_>>(),
            (0..50).map(|_| b.next_key()).collect::<Vec<_>>()
        );
        let mut other = KeySampler::new(1, 1, 0, 100, 1.0);
        let mut again = KeySampler::new(1, 0, 0, 100, 1.0);
        assert_ne!(
            (0..50).map(|_| other.next_key()).collect::<Vec<_>>(),
            (0..50).map(|_| again.next_key()).collect::<Vec<_>>()
        );
    }
}
