//! [`Spend`]: what agent calls cost, in US dollars and model tokens, summed over
//! the calls of an attempt and the attempts of a run, and said in a few words
//! ("3 revisions, $1.23, 48k tokens") in comments and pull requests.

use serde::{Deserialize, Serialize};

/// Cost and tokens; each `None` until some report gives it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    /// US dollars.
    pub cost_usd: Option<f64>,
    /// Model tokens (input, output and cache).
    pub tokens: Option<u64>,
}

impl Spend {
    /// Adds `other`'s figures to these (an unknown figure adds nothing).
    pub fn add(&mut self, other: Spend) {
        if let Some(c) = other.cost_usd {
            self.cost_usd = Some(self.cost_usd.unwrap_or(0.0) + c);
        }
        if let Some(t) = other.tokens {
            self.tokens = Some(self.tokens.unwrap_or(0).saturating_add(t));
        }
    }

    /// `$1.23, 48k tokens`, with `3 revisions, ` in front when `revisions` is
    /// given; `None` when neither cost nor tokens are known.
    ///
    /// ```
    /// use scrum_core::Spend;
    /// let s = Spend { cost_usd: Some(1.234), tokens: Some(48_200) };
    /// assert_eq!(s.describe(Some(3)).unwrap(), "3 revisions, $1.23, 48k tokens");
    /// assert_eq!(Spend::default().describe(Some(1)), None);
    /// ```
    pub fn describe(&self, revisions: Option<u32>) -> Option<String> {
        if self.cost_usd.is_none() && self.tokens.is_none() {
            return None;
        }
        let mut parts = Vec::new();
        match revisions {
            Some(1) => parts.push("1 revision".to_string()),
            Some(n) => parts.push(format!("{n} revisions")),
            None => {}
        }
        if let Some(c) = self.cost_usd {
            parts.push(format!("${c:.2}"));
        }
        if let Some(t) = self.tokens {
            parts.push(format!("{} tokens", short_count(t)));
        }
        Some(parts.join(", "))
    }
}

/// `950`, `48k` for 48 123, `1.2M` for 1 234 567.
pub fn short_count(n: u64) -> String {
    match n {
        0..1000 => n.to_string(),
        1000..1_000_000 => format!("{}k", n / 1000),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spend_sums_what_is_known() {
        let mut s = Spend::default();
        s.add(Spend {
            cost_usd: Some(1.0),
            tokens: Some(40_000),
        });
        s.add(Spend {
            cost_usd: Some(0.23),
            tokens: None,
        });
        s.add(Spend {
            cost_usd: None,
            tokens: Some(8_500),
        });
        assert_eq!(s.describe(None).unwrap(), "$1.23, 48k tokens");
        assert_eq!(
            s.describe(Some(0)).unwrap(),
            "0 revisions, $1.23, 48k tokens"
        );
        assert_eq!(short_count(1_234_567), "1.2M");
        assert_eq!(short_count(999), "999");
    }
}
