//! Key patterns for invalidation (`stores:*`), one syntax for the client and the server: `*`
//! matches any run of characters (also none), `?` exactly one character, `\` makes the next
//! character literal; everything else matches itself. No classes or alternations: a pattern is a
//! key with holes, as in Redis `SCAN MATCH` minus what nobody invalidates by.

use crate::CacheError;

/// The longest pattern accepted (the longest key is 1024 bytes).
pub const MAX_PATTERN_BYTES: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    One,
    Any,
}

/// A parsed key pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    tokens: Vec<Token>,
}

impl KeyPattern {
    /// Parses `pattern`; an empty one, one over [`MAX_PATTERN_BYTES`] or one ending in a lone `\`
    /// is an `InvalidKey` error.
    pub fn parse(pattern: &str) -> Result<Self, CacheError> {
        let invalid = |why: &str| CacheError::InvalidKey {
            key: pattern.chars().take(64).collect(),
            reason: format!("not a key pattern: {why}"),
        };
        if pattern.is_empty() {
            return Err(invalid("it is empty"));
        }
        if pattern.len() > MAX_PATTERN_BYTES {
            return Err(invalid("it is longer than 1024 bytes"));
        }
        let mut tokens = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' if tokens.last() == Some(&Token::Any) => continue,
                '*' => Token::Any,
                '?' => Token::One,
                '\\' => Token::Literal(chars.next().ok_or_else(|| invalid("it ends with a lone \\"))?),
                c => Token::Literal(c),
            });
        }
        Ok(KeyPattern { tokens })
    }

    /// Whether the pattern has no wildcard (it names one key).
    pub fn is_exact(&self) -> bool {
        self.tokens.iter().all(|t| matches!(t, Token::Literal(_)))
    }

    /// The literal text every matching key starts with (for prefix scans).
    pub fn literal_prefix(&self) -> String {
        self.tokens
            .iter()
            .map_while(|t| match t {
                Token::Literal(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    /// Whether `key` matches. Linear in `key.len() × pattern length` at worst (no backtracking
    /// blow-up: the classic greedy-star algorithm with one resume point), and allocation-free, as
    /// it runs once per key of a namespace in a server-side invalidation.
    pub fn matches(&self, key: &str) -> bool {
        // Positions in `key` are byte offsets on character boundaries.
        let char_at = |at: usize| key.get(at..).and_then(|rest| rest.chars().next());
        let (mut k, mut p) = (0, 0);
        let mut resume: Option<(usize, usize)> = None; // (pattern index after '*', key offset)
        while let Some(c) = char_at(k) {
            match self.tokens.get(p) {
                Some(Token::Any) => {
                    p += 1;
                    resume = Some((p, k));
                }
                Some(Token::One) => {
                    p += 1;
                    k += c.len_utf8();
                }
                Some(Token::Literal(l)) if *l == c => {
                    p += 1;
                    k += c.len_utf8();
                }
                _ => match resume {
                    Some((rp, rk)) => {
                        // The star swallows one more character of the key.
                        let next = rk + char_at(rk).map_or(1, char::len_utf8);
                        p = rp;
                        k = next;
                        resume = Some((rp, next));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(|t| *t == Token::Any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, k: &str) -> bool {
        KeyPattern::parse(p).unwrap().matches(k)
    }

    #[test]
    fn stars_question_marks_and_escapes() {
        assert!(m("stores:*", "stores:"));
        assert!(m("stores:*", "stores:42:users"));
        assert!(!m("stores:*", "store:42"));
        assert!(m("*:users", "stores:42:users"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("user:?", "user:1"));
        assert!(!m("user:?", "user:12"));
        assert!(m("ünï?ode", "ünïcode"));
        assert!(m("*ö", "äöüö"), "a star resumes over multi-byte characters");
        assert!(!m("ä*ß", "äöü"));
        assert!(m(r"literal\*", "literal*"));
        assert!(!m(r"literal\*", "literalX"));
        assert!(m("exact", "exact"));
        assert!(!m("exact", "exactly"));
        assert!(m("*", ""));
        assert!(m("**", "anything"));
    }

    #[test]
    fn bad_patterns_are_typed_errors() {
        assert!(KeyPattern::parse("").is_err());
        assert!(KeyPattern::parse("trailing\\").is_err());
        assert!(KeyPattern::parse(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn prefix_and_exactness() {
        let p = KeyPattern::parse("stores:*:users").unwrap();
        assert_eq!(p.literal_prefix(), "stores:");
        assert!(!p.is_exact());
        assert!(KeyPattern::parse(r"a\*b").unwrap().is_exact());
    }

    #[test]
    fn many_stars_stay_fast() {
        let p = KeyPattern::parse(&"*a".repeat(50)).unwrap();
        assert!(!p.matches(&"a".repeat(49)));
        assert!(p.matches(&"a".repeat(60)));
    }
}
