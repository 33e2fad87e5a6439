//! A strict JSON (RFC 8259) validator for values that reach the cache as text from places it does
//! not control — storage, other tabs, the network — so that only valid JSON is ever handed to
//! `JSON.parse`. It validates without building anything, and limits nesting so that hostile input
//! cannot exhaust the stack. (The wasm client avoids a full JSON library: parsing is the
//! browser's job; this is all it needs.)

/// The deepest nesting of arrays and objects accepted (the shim refuses deeper values in `set`).
pub const MAX_DEPTH: usize = 512;

/// Checks that `text` is exactly one JSON value (surrounding whitespace allowed).
pub fn validate(text: &str) -> Result<(), &'static str> {
    let mut p = Parser::new(text);
    p.ws();
    p.value(0)?;
    p.ws();
    if p.i == p.b.len() {
        Ok(())
    } else {
        Err("trailing characters after the JSON value")
    }
}

/// Appends `n` in decimal: records carry three numbers each, and `to_string` would take every
/// one through the formatting machinery and an allocation of its own.
pub fn write_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// Appends `n` in decimal, as [`write_u64`].
pub fn write_i64(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    write_u64(out, n.unsigned_abs());
}

/// Appends `s` to `out` as a JSON string literal.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[(c as usize) >> 4]));
                out.push(char::from(HEX[(c as usize) & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Shows a string quoted and escaped as JSON (`"a\"b"`): how error messages name keys and other
/// user text. Used instead of `{:?}`, whose Unicode escaping tables cost the wasm several KB.
pub struct Quoted<'a>(pub &'a str);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::with_capacity(self.0.len() + 2);
        write_string(&mut out, self.0);
        f.write_str(&out)
    }
}

/// The validator's cursor over the bytes of a `&str`. [`crate::json_read`] reads through it too,
/// so there is one JSON grammar and one nesting limit in the crate, not two that could disagree.
pub(crate) struct Parser<'a> {
    b: &'a [u8],
    /// The byte offset of the next byte to read.
    pub(crate) i: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Parser { b: text.as_bytes(), i: 0 }
    }

    #[inline(always)]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    pub(crate) fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    #[inline(always)]
    pub(crate) fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    /// A value inside `depth` arrays and objects.
    pub(crate) fn value(&mut self, depth: usize) -> Result<(), &'static str> {
        if depth >= MAX_DEPTH && matches!(self.peek(), Some(b'{' | b'[')) {
            return Err("JSON nested too deeply");
        }
        match self.peek() {
            Some(b'{') => self.container(depth, b'}', true),
            Some(b'[') => self.container(depth, b']', false),
            Some(b'"') => self.string(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err("expected a JSON value"),
        }
    }

    fn container(&mut self, depth: usize, close: u8, object: bool) -> Result<(), &'static str> {
        self.i += 1;
        self.ws();
        if self.eat(close) {
            return Ok(());
        }
        loop {
            self.ws();
            if object {
                self.string()?;
                self.ws();
                if !self.eat(b':') {
                    return Err("expected ':' in object");
                }
                self.ws();
            }
            self.value(depth + 1)?;
            self.ws();
            if self.eat(b',') {
                continue;
            }
            if self.eat(close) {
                return Ok(());
            }
            return Err("expected ',' or a closing bracket");
        }
    }

    pub(crate) fn literal(&mut self, word: &[u8]) -> Result<(), &'static str> {
        if self.b.get(self.i..).is_some_and(|rest| rest.starts_with(word)) {
            self.i += word.len();
            Ok(())
        } else {
            Err("invalid literal")
        }
    }

    pub(crate) fn string(&mut self) -> Result<(), &'static str> {
        if !self.eat(b'"') {
            return Err("expected a string");
        }
        loop {
            match self.peek() {
                None => return Err("unterminated string"),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            self.i += 1;
                            for _ in 0..4 {
                                if !self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                                    return Err("invalid \\u escape");
                                }
                                self.i += 1;
                            }
                        }
                        _ => return Err("invalid escape"),
                    }
                }
                Some(0..=0x1f) => return Err("control character in string"),
                // The input is a &str, so the bytes are valid UTF-8 already.
                Some(_) => self.i += 1,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    pub(crate) fn number(&mut self) -> Result<(), &'static str> {
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err("invalid number"),
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err("invalid number");
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err("invalid number");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_u64_writes_what_display_writes() {
        for n in [0, 7, 10, 99, 100, 1_733_600_000_000, 9_007_199_254_740_991, u64::MAX] {
            let mut out = String::from("x");
            write_u64(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
    }

    #[test]
    fn write_i64_writes_what_display_writes() {
        for n in [0, 5, -5, -1_733_600_000_000, i64::MAX, i64::MIN] {
            let mut out = String::new();
            write_i64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    #[test]
    fn accepts_json() {
        for ok in [
            "0", "-0", "1.5e-3", "1E+9", "-12.25", "1e400", "\"\"", "\"a\\u00e9\\n\\\"\"", "\"ünï\"", "true", "false",
            "null", "[]", "{}", " [1, [2, {\"a\": [null]}]] ", "{\"a\":1,\"b\":{\"c\":[true,false]}}", "\"\\ud800\"",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_what_is_not_json() {
        for bad in [
            "", " ", "01", "1.", ".5", "-", "+1", "1e", "0x10", "NaN", "Infinity", "undefined", "tru", "nul", "'a'",
            "\"a", "\"\\x\"", "\"\\u12\"", "\"a\u{1}\"", "[1,]", "[,1]", "{\"a\"}", "{\"a\":1,}", "{a:1}", "[1 2]",
            "1 2", "{\"a\":1}}", "[", "]", "{",
        ] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn written_strings_are_valid_json_strings() {
        for s in ["", "plain", "q\"uote", "back\\slash", "nl\nnl", "\u{0}\u{1f}\u{7f}", "ünï ✓ 🕴"] {
            let mut out = String::new();
            write_string(&mut out, s);
            assert_eq!(validate(&out), Ok(()), "{out}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert_eq!(validate(&ok), Ok(()));
        let one_more = format!("{{\"a\":{ok}}}");
        assert_eq!(validate(&one_more), Err("JSON nested too deeply"));
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert_eq!(validate(&deep), Err("JSON nested too deeply"));
    }
}
