//! A small JSON pull reader, so that the core can decode the messages it receives (other tabs'
//! news, `/sync` answers, stream events, error bodies) without a JSON library in the wasm.
//!
//! A [`Reader`] walks one text; each method reads exactly one value and validates everything it
//! consumes through [`crate::json`]'s grammar (one JSON grammar in the crate, not two that could
//! disagree). Nothing is built but what the caller keeps: strings are borrowed unless they hold
//! escapes, values kept as JSON are slices of the input ([`Reader::raw`]), numbers are read
//! without `std`'s float parser (about 16 KB of wasm, gzipped, for what a handful of integers and
//! TTLs need).
//!
//! Nesting is bounded by [`MAX_DEPTH`] twice over: the objects and arrays a caller walks, and each
//! value read whole ([`Reader::raw`], [`Reader::skip`]) counted from that value itself. So a value
//! the cache accepted (at most [`MAX_DEPTH`] deep) can travel inside any message, and recursion
//! never goes deeper than the callers' own structure plus [`MAX_DEPTH`].
use std::borrow::Cow;
use std::fmt;

use crate::json::{Parser, MAX_DEPTH};
use crate::validate::MAX_SAFE_INTEGER;

/// Why a text could not be read, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError {
    /// What was wrong.
    pub reason: &'static str,
    /// The byte offset where reading stopped.
    pub at: usize,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.at)
    }
}

/// A cursor over one JSON text.
pub struct Reader<'a> {
    text: &'a str,
    p: Parser<'a>,
    /// The objects and arrays being walked.
    depth: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Reader { text, p: Parser::new(text), depth: 0 }
    }

    /// Checks that only whitespace follows what was read: a message is one value.
    pub fn finish(mut self) -> Result<(), JsonError> {
        self.p.ws();
        if self.p.i == self.text.len() {
            Ok(())
        } else {
            Err(self.error("trailing characters after the JSON value"))
        }
    }

    /// An error at the current position: for callers that find a value they cannot use.
    pub fn error(&self, reason: &'static str) -> JsonError {
        JsonError { reason, at: self.p.i }
    }

    /// Reads an object whose members are fields: `read` gets each name and must read its value.
    /// A member whose name is not Unicode text (a lone surrogate escape) is skipped: no field has
    /// such a name.
    pub fn object(&mut self, mut read: impl FnMut(&str, &mut Self) -> Result<(), JsonError>) -> Result<(), JsonError> {
        self.members(|name, r| match name {
            Ok(name) => read(&name, r),
            Err(_) => r.skip(),
        })
    }

    /// Reads an object whose member names are data (a map's keys): `read` gets each name, or why
    /// it is not Unicode text, and must read the value either way.
    pub fn members(
        &mut self,
        mut read: impl FnMut(Result<Cow<'a, str>, JsonError>, &mut Self) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        self.container(b'{', b'}', "expected an object", &mut |r| {
            let name = r.member_name()?;
            read(r.unescape(name), r)
        })
    }

    /// Reads an array: `read` reads each element.
    pub fn array(&mut self, mut read: impl FnMut(&mut Self) -> Result<(), JsonError>) -> Result<(), JsonError> {
        self.container(b'[', b']', "expected an array", &mut read)
    }

    /// A member's name and the `:` after it.
    fn member_name(&mut self) -> Result<&'a str, JsonError> {
        let name = self.string_literal()?;
        self.p.ws();
        if self.p.eat(b':') {
            Ok(name)
        } else {
            Err(self.error("expected ':' in object"))
        }
    }

    // One copy of the loop for every caller (`dyn`): it ships in the wasm, where size counts more
    // than an indirect call per element.
    fn container(
        &mut self,
        open: u8,
        close: u8,
        expected: &'static str,
        item: &mut dyn FnMut(&mut Self) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        self.p.ws();
        if self.p.peek() != Some(open) {
            return Err(self.error(expected));
        }
        if self.depth >= MAX_DEPTH {
            return Err(self.error("JSON nested too deeply"));
        }
        self.p.i += 1;
        self.depth += 1;
        self.p.ws();
        if !self.p.eat(close) {
            loop {
                item(self)?;
                self.p.ws();
                if self.p.eat(close) {
                    break;
                }
                if !self.p.eat(b',') {
                    return Err(self.error("expected ',' or a closing bracket"));
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Reads a string, unescaped (borrowed from the text when it holds no escape). A lone
    /// surrogate escape (`"\ud800"`) is valid JSON but has no UTF-8 form, so it is an error here;
    /// the string is consumed all the same.
    pub fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        let literal = self.string_literal()?;
        self.unescape(literal)
    }

    /// A string's text between its quotes, escapes as written.
    fn string_literal(&mut self) -> Result<&'a str, JsonError> {
        self.p.ws();
        let start = self.p.i;
        self.p.string().map_err(|reason| self.error(reason))?;
        self.slice(start + 1, self.p.i.saturating_sub(1))
    }

    fn unescape(&self, literal: &'a str) -> Result<Cow<'a, str>, JsonError> {
        if !literal.contains('\\') {
            return Ok(Cow::Borrowed(literal));
        }
        unescape(literal).map(Cow::Owned).map_err(|reason| self.error(reason))
    }

    /// Reads an integer in `0..=2^53-1` (what a JS peer holds exactly) written as any JSON
    /// number with that value: `1700000000000`, `1.7e12`, `17e11`.
    pub fn u64_integral(&mut self) -> Result<u64, JsonError> {
        let number = self.number()?;
        match number.integral() {
            Some(n) if !number.negative || n == 0 => Ok(n),
            _ => Err(self.error("expected an integer in 0..=2^53-1")),
        }
    }

    /// Reads an integer in `-(2^53-1)..=2^53-1`, written as any JSON number with that value.
    pub fn i64_integral(&mut self) -> Result<i64, JsonError> {
        let number = self.number()?;
        // At most 2^53-1, so the conversion is exact.
        let n = number.integral().ok_or_else(|| self.error("expected an integer in -(2^53-1)..=2^53-1"))? as i64;
        Ok(if number.negative { -n } else { n })
    }

    /// Reads a number as an `f64`: correctly rounded for up to 2^53 significant digits times a
    /// power of ten within ±22 (every TTL a peer writes), as `serde_json` does; huge exponents
    /// give an infinity, tiny ones zero, as in JavaScript.
    pub fn f64(&mut self) -> Result<f64, JsonError> {
        Ok(self.number()?.to_f64())
    }

    fn number(&mut self) -> Result<Decimal, JsonError> {
        self.p.ws();
        let start = self.p.i;
        if !matches!(self.p.peek(), Some(b'-' | b'0'..=b'9')) {
            return Err(self.error("expected a number"));
        }
        self.p.number().map_err(|reason| self.error(reason))?;
        Ok(Decimal::parse(self.slice(start, self.p.i)?.as_bytes()))
    }

    /// Reads `true` or `false`.
    pub fn bool(&mut self) -> Result<bool, JsonError> {
        self.p.ws();
        let (word, value): (&[u8], bool) = match self.p.peek() {
            Some(b't') => (b"true", true),
            Some(b'f') => (b"false", false),
            _ => return Err(self.error("expected true or false")),
        };
        self.p.literal(word).map(|()| value).map_err(|reason| self.error(reason))
    }

    /// Reads `null`.
    pub fn null(&mut self) -> Result<(), JsonError> {
        self.p.ws();
        if self.p.peek() != Some(b'n') {
            return Err(self.error("expected null"));
        }
        self.p.literal(b"null").map_err(|reason| self.error(reason))
    }

    /// Reads `null` as `None` and anything else with `read`: JS peers write an absent field as
    /// `null` as often as they leave it out.
    pub fn optional<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, JsonError>,
    ) -> Result<Option<T>, JsonError> {
        self.p.ws();
        if self.p.peek() == Some(b'n') {
            self.null().map(|()| None)
        } else {
            read(self).map(Some)
        }
    }

    /// Reads any value and returns its exact text, validated (nesting counted from the value
    /// itself: see the module's documentation).
    pub fn raw(&mut self) -> Result<&'a str, JsonError> {
        self.p.ws();
        let start = self.p.i;
        self.p.value(0).map_err(|reason| self.error(reason))?;
        self.slice(start, self.p.i)
    }

    /// Reads any value (validated) and forgets it.
    pub fn skip(&mut self) -> Result<(), JsonError> {
        self.raw().map(drop)
    }

    /// Reads a value with `read` and returns the text it spans too.
    pub fn spanned<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, JsonError>,
    ) -> Result<(&'a str, T), JsonError> {
        self.p.ws();
        let start = self.p.i;
        let value = read(self)?;
        Ok((self.slice(start, self.p.i)?, value))
    }

    /// Reads one value with `read`; when that fails, the value is skipped instead and the
    /// failure returned inside `Ok`, so that one bad element of a list costs only itself. `Err`
    /// only when the value is not JSON (nothing after it can be read).
    pub fn isolated<T, E>(&mut self, read: impl FnOnce(&mut Self) -> Result<T, E>) -> Result<Result<T, E>, JsonError> {
        let (at, depth) = (self.p.i, self.depth);
        match read(self) {
            Ok(value) => Ok(Ok(value)),
            Err(failure) => {
                self.p.i = at;
                self.depth = depth;
                self.skip().map(|()| Err(failure))
            }
        }
    }

    fn slice(&self, start: usize, end: usize) -> Result<&'a str, JsonError> {
        self.text.get(start..end).ok_or_else(|| self.error("not at a character boundary"))
    }
}

const LONE_SURROGATE: &str = "a string holds a lone surrogate escape (U+D800 to U+DFFF), which has no UTF-8 form";

/// Decodes the escapes of a string literal's text (already validated by the grammar).
fn unescape(mut rest: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(rest.len());
    while let Some((before, after)) = rest.split_once('\\') {
        out.push_str(before);
        let mut chars = after.chars();
        let c = match chars.next() {
            Some('"') => '"',
            Some('\\') => '\\',
            Some('/') => '/',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('u') => {
                let (c, after) = unicode_escape(chars.as_str())?;
                chars = after.chars();
                c
            }
            _ => return Err("invalid escape"),
        };
        out.push(c);
        rest = chars.as_str();
    }
    out.push_str(rest);
    Ok(out)
}

/// The character of a `\u` escape whose hex digits start `text` (joining a surrogate pair), and
/// the text after it.
fn unicode_escape(text: &str) -> Result<(char, &str), &'static str> {
    let (unit, mut rest) = hex4(text)?;
    let code = match unit {
        0xD800..=0xDBFF => match rest.strip_prefix("\\u").map(hex4).transpose()? {
            Some((low @ 0xDC00..=0xDFFF, after)) => {
                rest = after;
                0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
            }
            _ => return Err(LONE_SURROGATE),
        },
        0xDC00..=0xDFFF => return Err(LONE_SURROGATE),
        unit => unit,
    };
    char::from_u32(code).map(|c| (c, rest)).ok_or(LONE_SURROGATE)
}

fn hex4(text: &str) -> Result<(u32, &str), &'static str> {
    let (Some(hex), Some(rest)) = (text.get(..4), text.get(4..)) else { return Err("invalid \\u escape") };
    let unit = hex.chars().try_fold(0, |unit, c| Some(unit * 16 + c.to_digit(16)?)).ok_or("invalid \\u escape")?;
    Ok((unit, rest))
}

/// A JSON number as up to 19 significant decimal digits times a power of ten: exact for every
/// integer check, and enough for `f64`s as close as `serde_json` makes them.
struct Decimal {
    negative: bool,
    digits: u64,
    exp: i32,
    /// No nonzero digit was dropped past the 19th.
    exact: bool,
}

impl Decimal {
    /// Reads a number the grammar accepted.
    fn parse(number: &[u8]) -> Decimal {
        let mut d = Decimal { negative: false, digits: 0, exp: 0, exact: true };
        let (mut held, mut fraction, mut exponent, mut exp_negative, mut exp_value) = (0, false, false, false, 0i32);
        for &b in number {
            match b {
                b'-' if exponent => exp_negative = true,
                b'-' => d.negative = true,
                b'.' => fraction = true,
                b'e' | b'E' => exponent = true,
                // Past a million the value is 0 or infinite anyway.
                b'0'..=b'9' if exponent => exp_value = (exp_value * 10 + i32::from(b - b'0')).min(1_000_000),
                b'0'..=b'9' if held < 19 => {
                    d.digits = d.digits * 10 + u64::from(b - b'0');
                    if d.digits > 0 {
                        held += 1;
                    }
                    if fraction {
                        d.exp = d.exp.saturating_sub(1);
                    }
                }
                b'0'..=b'9' => {
                    if !fraction {
                        d.exp = d.exp.saturating_add(1);
                    }
                    d.exact &= b == b'0';
                }
                _ => {}
            }
        }
        d.exp = d.exp.saturating_add(if exp_negative { -exp_value } else { exp_value });
        d
    }

    /// The magnitude, when it is an integer of at most 2^53-1.
    fn integral(&self) -> Option<u64> {
        let (mut n, mut exp) = (self.digits, self.exp);
        if n == 0 {
            return Some(0);
        }
        if !self.exact {
            return None;
        }
        // Each loop ends within 19 turns: `n` has at most 19 digits.
        while exp < 0 {
            if n % 10 != 0 {
                return None;
            }
            n /= 10;
            exp += 1;
        }
        while exp > 0 {
            n = n.checked_mul(10).filter(|n| *n <= MAX_SAFE_INTEGER)?;
            exp -= 1;
        }
        (n <= MAX_SAFE_INTEGER).then_some(n)
    }

    /// One multiplication or division by an exact power of ten (10^22 is the largest), which is
    /// correctly rounded while the digits fit in 2^53.
    fn to_f64(&self) -> f64 {
        let mut value = self.digits as f64;
        let mut exp = self.exp.clamp(-400, 400);
        while exp != 0 && value != 0.0 && value.is_finite() {
            let step = exp.unsigned_abs().min(22);
            let power = (0..step).fold(1.0, |p, _| p * 10.0);
            if exp > 0 {
                value *= power;
                exp -= step as i32;
            } else {
                value /= power;
                exp += step as i32;
            }
        }
        if self.negative {
            -value
        } else {
            value
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<'a, T>(text: &'a str, f: impl FnOnce(&mut Reader<'a>) -> Result<T, JsonError>) -> Result<T, JsonError> {
        let mut r = Reader::new(text);
        let value = f(&mut r)?;
        r.finish()?;
        Ok(value)
    }

    #[test]
    fn objects_arrays_and_scalars() {
        let text = r#" {"a": [1, 2.5, true, null, "x"], "b": {"c": false}, "d": {"deep": [[]]}} "#;
        let (mut a, mut c, mut d) = (Vec::new(), None, None);
        read(text, |r| {
            r.object(|name, r| {
                match name {
                    "a" => r.array(|r| {
                        a.push(r.raw()?.to_owned());
                        Ok(())
                    })?,
                    "b" => r.object(|_, r| {
                        c = Some(r.bool()?);
                        Ok(())
                    })?,
                    _ => d = Some(r.raw()?),
                }
                Ok(())
            })
        })
        .unwrap();
        assert_eq!(a, ["1", "2.5", "true", "null", "\"x\""]);
        assert_eq!(c, Some(false));
        assert_eq!(d, Some(r#"{"deep": [[]]}"#));
        assert_eq!(read("[]", |r| r.array(|_| panic!("no element"))), Ok(()));
        assert_eq!(read(" { } ", |r| r.object(|_, _| panic!("no member"))), Ok(()));
        assert_eq!(read("null", Reader::null), Ok(()));
        assert_eq!(read("null", |r| r.optional(Reader::bool)), Ok(None));
        assert_eq!(read("true", |r| r.optional(Reader::bool)), Ok(Some(true)));
    }

    #[test]
    fn malformed_structures_are_errors() {
        let skip_all = |r: &mut Reader<'_>| r.object(|_, r| r.skip());
        for bad in ["", "{", "{\"a\"}", "{\"a\":1,}", "{\"a\":1 \"b\":2}", "{a:1}", "{\"a\":1}}", "[1,]", "{,}", "[1"] {
            let result = if bad.starts_with('[') { read(bad, |r| r.array(|r| r.skip())) } else { read(bad, skip_all) };
            assert!(result.is_err(), "{bad:?} accepted");
        }
        // A reader that leaves a value unread does not get past it.
        assert!(read("[1,2]", |r| r.array(|_| Ok(()))).is_err());
        assert_eq!(read("1 2", Reader::skip).unwrap_err().reason, "trailing characters after the JSON value");
        assert_eq!(read("[true]", Reader::bool).unwrap_err().reason, "expected true or false");
        assert_eq!(read("tru", Reader::bool).unwrap_err().reason, "invalid literal");
        assert_eq!(read("\"a\"", |r| r.u64_integral()).unwrap_err(), JsonError { reason: "expected a number", at: 0 });
    }

    #[test]
    fn strings_decode_escapes_and_surrogate_pairs() {
        let s = |text: &str| read(text, |r| r.string().map(Cow::into_owned));
        assert_eq!(s(r#""plain ünï""#).unwrap(), "plain ünï");
        assert!(matches!(read(r#""plain""#, Reader::string), Ok(Cow::Borrowed("plain"))), "no escape, no copy");
        assert_eq!(s(r#""q\"b\\s\/\b\f\n\r\t""#).unwrap(), "q\"b\\s/\u{8}\u{c}\n\r\t");
        assert_eq!(s(r#""\u00e9\u0000\uFFFF""#).unwrap(), "é\u{0}\u{ffff}");
        assert_eq!(s(r#""\ud83d\udd74 \uD834\uDD1E""#).unwrap(), "🕴 𝄞");
        for lone in [
            r#""\ud800""#,
            r#""x\udbff""#,
            r#""\udc00""#,
            r#""\ud800\u0041""#,
            r#""\ud800\ud800""#,
            r#""\udd74\ud83d""#,
        ] {
            assert_eq!(s(lone).unwrap_err().reason, LONE_SURROGATE, "{lone}");
            // Valid JSON all the same: skipping and keeping it raw are fine.
            assert_eq!(read(lone, Reader::raw), Ok(lone));
        }
        for bad in [r#""\x""#, r#""\u12""#, "\"a\u{1}\"", "\"a", "'a'"] {
            assert!(s(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn integers_are_exact_in_any_notation() {
        let n = |text: &str| read(text, Reader::u64_integral).map_err(|e| e.reason);
        for (text, value) in [
            ("0", 0),
            ("-0", 0),
            ("0.0e5", 0),
            ("1700000000000", 1_700_000_000_000),
            ("1.7e12", 1_700_000_000_000),
            ("17E11", 1_700_000_000_000),
            ("170000000000000e-2", 1_700_000_000_000),
            ("1.7000000000000000000000000e12", 1_700_000_000_000),
            ("9007199254740991", MAX_SAFE_INTEGER),
            ("9.007199254740991e15", MAX_SAFE_INTEGER),
            ("1e0", 1),
        ] {
            assert_eq!(n(text), Ok(value), "{text}");
        }
        for bad in [
            "9007199254740992",
            "1e16",
            "1e400",
            "1e99999999999999999999",
            "1.5",
            "1e-1",
            "-1",
            "-1e3",
            "123456789012345678901234567890",
            "1.00000000000000000000001",
            "0.1e1000000000",
        ] {
            assert!(n(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(n("0.1e1"), Ok(1));
        let i = |text: &str| read(text, Reader::i64_integral).map_err(|e| e.reason);
        assert_eq!(i("-82800000"), Ok(-82_800_000));
        assert_eq!(i("-9007199254740991"), Ok(-(MAX_SAFE_INTEGER as i64)));
        assert!(i("-9007199254740992").is_err());
        assert!(i("-1.5").is_err());
    }

    #[test]
    fn floats_are_as_close_as_serde_jsons() {
        for text in [
            "0",
            "-0",
            "1.5",
            "3600",
            "0.001",
            "1e-3",
            "2.5E+2",
            "123456.789",
            "86400.5",
            "1e22",
            "1.2345678901234567e-5",
        ] {
            let ours = read(text, Reader::f64).unwrap();
            let serde: f64 = serde_json::from_str(text).unwrap();
            assert_eq!(ours.to_bits(), serde.to_bits(), "{text}");
        }
        assert_eq!(read("1e400", Reader::f64), Ok(f64::INFINITY));
        assert_eq!(read("-1e400", Reader::f64), Ok(f64::NEG_INFINITY));
        assert_eq!(read("1e-400", Reader::f64), Ok(0.0));
        assert_eq!(read("123456789012345678901234567890", Reader::f64), Ok(1.2345678901234568e29));
    }

    #[test]
    fn raw_values_are_exact_spans_counted_from_themselves() {
        let mut r = Reader::new(r#"[ {"a" : [1, "]"]} , 2 ]"#);
        let mut spans = Vec::new();
        r.array(|r| {
            spans.push(r.raw()?);
            Ok(())
        })
        .unwrap();
        assert_eq!(spans, [r#"{"a" : [1, "]"]}"#, "2"]);
        // A value of the deepest nesting the cache accepts is kept whole inside a message.
        let deepest = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        let message = format!("{{\"w\":{{\"k\":{deepest}}}}}");
        let mut kept = None;
        read(&message, |r| r.object(|_, r| r.object(|_, r| r.raw().map(|raw| kept = Some(raw))))).unwrap();
        assert_eq!(kept, Some(deepest.as_str()));
        let deeper = format!("[{deepest}]");
        assert_eq!(read(&deeper, Reader::raw).unwrap_err().reason, "JSON nested too deeply");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(read(&deep, Reader::skip).is_err());
        // A caller that recurses through the reader's own arrays is stopped at the limit too.
        fn nested(r: &mut Reader<'_>) -> Result<(), JsonError> {
            r.array(nested)
        }
        assert_eq!(read(&deep, nested).unwrap_err().reason, "JSON nested too deeply");
        let objects = "{\"a\":".repeat(100_000) + &"}".repeat(100_000);
        assert!(read(&objects, Reader::skip).is_err());
    }

    #[test]
    fn isolated_failures_skip_the_value_and_syntax_errors_still_fail() {
        let mut got = Vec::new();
        read(r#"[1, "two", {"x": [3]}, 4]"#, |r| {
            r.array(|r| {
                got.push(r.isolated(Reader::u64_integral)?.map_err(|e| e.reason));
                Ok(())
            })
        })
        .unwrap();
        assert_eq!(got, [Ok(1), Err("expected a number"), Err("expected a number"), Ok(4)]);
        let broken = read(r#"[1, {"x": [3}, 4]"#, |r| {
            r.array(|r| {
                r.isolated(Reader::u64_integral)?.ok();
                Ok(())
            })
        });
        assert!(broken.is_err());
        // A failure deep inside an object restores the depth of the walk too.
        let mut r = Reader::new(r#"[{"a":{"b":"x"}}, {"a":{"b":7}}]"#);
        let mut got = Vec::new();
        r.array(|r| {
            let read = r.isolated(|r| {
                let mut n = None;
                r.object(|_, r| r.object(|_, r| r.u64_integral().map(|v| n = Some(v))))?;
                Ok::<_, JsonError>(n)
            })?;
            got.push(read.map_err(|e| e.reason));
            Ok(())
        })
        .unwrap();
        assert_eq!(got, [Err("expected a number"), Ok(Some(7))]);
        assert_eq!(r.depth, 0);
    }

    #[test]
    fn member_names_are_decoded() {
        let mut names = Vec::new();
        read(r#"{"k\u0065y": 1, "x\ud800": 2, "": 3}"#, |r| {
            r.members(|name, r| {
                names.push(name.map(Cow::into_owned).map_err(|e| e.reason));
                r.skip()
            })
        })
        .unwrap();
        assert_eq!(names, [Ok("key".to_owned()), Err(LONE_SURROGATE), Ok(String::new())]);
        let mut fields = Vec::new();
        read(r#"{"k\u0065y": 1, "x\ud800": 2}"#, |r| {
            r.object(|name, r| {
                fields.push(name.to_owned());
                r.skip()
            })
        })
        .unwrap();
        assert_eq!(fields, ["key"], "a field name that is not text names no field");
    }

    #[test]
    fn spans_cover_what_was_read() {
        let mut r = Reader::new(r#"  {"a":1} "#);
        let (span, ()) = r.spanned(|r| r.object(|_, r| r.skip())).unwrap();
        assert_eq!(span, r#"{"a":1}"#);
        r.finish().unwrap();
    }
}
