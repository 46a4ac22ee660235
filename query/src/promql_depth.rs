//! A bound on how deep a PromQL text can nest before it reaches the parser.
//!
//! `promql-parser` and the plan built from its AST recurse once per nesting level and per
//! binary operator of a chain (`a + b + c + ...` is a left-deep tree), so a long enough
//! query overflows the thread's stack and aborts the process: a chain of 1,600 `+` did on
//! a 2 MiB thread (found while fuzzing `parse_promql`; the regression test is
//! `tests/promql_deep_nesting_is_an_error_not_a_stack_overflow.rs` at the root). A cheap scan
//! of the text refuses such queries first. It skips string literals and comments and
//! over-counts operators (a `-` in `1e-3` counts), which only matters far past anything a
//! dashboard sends.

use crate::error::{Error, Result};

/// Deepest nesting of `(`, `[`, `{` accepted.
pub const NESTING_MAX: usize = 256;
/// Most operator characters (`+ - * / % ^ = ! < >`) and `and`/`or`/`unless` accepted
/// outside label matchers.
pub const OPERATORS_MAX: usize = 256;

/// Refuses a query that nests or chains deeper than the bounds above.
pub fn check(query: &str) -> Result<()> {
    let b = query.as_bytes();
    let (mut depth, mut deepest, mut braces, mut ops) = (0usize, 0usize, 0usize, 0usize);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' && q != b'`' { 2 } else { 1 };
                }
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            c @ (b'(' | b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
                braces += usize::from(c == b'{');
            }
            c @ (b')' | b']' | b'}') => {
                depth = depth.saturating_sub(1);
                braces = braces.saturating_sub(usize::from(c == b'}'));
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'=' | b'!' | b'<' | b'>' if braces == 0 => ops += 1,
            c if c.is_ascii_alphabetic() => {
                let start = i;
                while i + 1 < b.len() && (b[i + 1].is_ascii_alphanumeric() || b[i + 1] == b'_') {
                    i += 1;
                }
                let word = &query[start..=i];
                let boundary = start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
                if boundary && braces == 0 && ["and", "or", "unless"].iter().any(|w| word.eq_ignore_ascii_case(w)) {
                    ops += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if deepest > NESTING_MAX {
        return Err(Error::InvalidQuery(format!(
            "the query nests {deepest} levels deep; at most {NESTING_MAX} are accepted"
        )));
    }
    if ops > OPERATORS_MAX {
        return Err(Error::InvalidQuery(format!(
            "the query has {ops} operators; at most {OPERATORS_MAX} are accepted"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outside_strings_comments_and_matchers() {
        assert!(check(r#"sum(rate(http{code=~"5..",path!="/a+b"}[5m])) by (job) # a + b + c"#).is_ok());
        let many_in_string = format!("label_replace(up, \"x\", \"{}\", \"y\", \"(.*)\")", "+".repeat(1000));
        assert!(check(&many_in_string).is_ok());
        assert!(check(&"(".repeat(NESTING_MAX)).is_ok());
        assert!(check(&"(".repeat(NESTING_MAX + 1)).is_err());
        let chain = |n: usize| (0..=n).map(|_| "up").collect::<Vec<_>>().join(" or ");
        assert!(check(&chain(OPERATORS_MAX)).is_ok());
        assert!(check(&chain(OPERATORS_MAX + 1)).is_err());
        assert!(check("upper + orange").is_ok(), "words containing or/and are not operators");
    }
}
