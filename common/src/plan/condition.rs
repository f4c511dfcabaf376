//! The one SQL a plan may write: a pagination scenario's `where`, reduced to a condition over the table's own
//! columns (literals, operators, a few pure functions) by a small lexer, so it can neither write, wait, read other
//! tables or files, nor quote data into an error message.

/// The most characters a `where` may have.
const MAX_WHERE_CHARS: usize = 1000;

/// Words a `where` may call as functions (besides AND, OR, NOT, IN and the like before a parenthesis): pure ones,
/// the same on every backend. Anything else followed by `(` is refused: a function may write (`nextval`,
/// `set_config`, `lo_import`), wait (`pg_sleep`, `SLEEP`) or read files (`LOAD_FILE`). No cast either: a failed
/// cast's error quotes the value, which would put data in the report.
pub const WHERE_FUNCTIONS: &[&str] = &[
    "abs",
    "ceil",
    "ceiling",
    "coalesce",
    "floor",
    "greatest",
    "least",
    "length",
    "lower",
    "mod",
    "now",
    "nullif",
    "round",
    "substr",
    "substring",
    "trim",
    "upper",
];

/// Words that may stand before `(` as SQL syntax rather than a call.
const WHERE_SYNTAX: &[&str] = &["and", "or", "not", "in", "is", "between", "like", "as"];

/// Words a `where` may not hold at all (outside quotes): they would turn the condition into another statement or
/// a query of other tables.
const WHERE_FORBIDDEN: &[&str] = &[
    "select",
    "union",
    "intersect",
    "except",
    "into",
    "outfile",
    "dumpfile",
    "from",
    "insert",
    "update",
    "delete",
    "drop",
    "alter",
    "create",
    "grant",
    "copy",
    "call",
    "do",
    "exec",
    "execute",
    "prepare",
    "handler",
    "limit",
    "order",
    "group",
    "having",
    "window",
    "returning",
    "with",
    "table",
    "values",
    "next",
];

/// What is wrong with a `where` condition, if anything. It must be one condition over the table's own columns:
/// literals, operators, AND/OR/NOT/IN/BETWEEN/LIKE/IS, balanced parentheses, and the functions in
/// [`WHERE_FUNCTIONS`]; no comment, no `;`, no backslash (MySQL reads one inside quotes differently), no
/// subquery, no other function.
pub fn where_problem(text: &str) -> Option<String> {
    if text.is_empty() {
        return Some("`where` is empty: leave it out to page through every row".to_owned());
    }
    if text.chars().count() > MAX_WHERE_CHARS {
        return Some(format!(
            "`where` may be at most {MAX_WHERE_CHARS} characters"
        ));
    }
    let rule = "`where` is one condition over the table's columns: literals, operators, AND/OR/NOT/IN/BETWEEN/LIKE/IS, \
                parentheses and the functions abs, ceil, coalesce, floor, greatest, least, length, lower, mod, now, \
                nullif, round, substr, substring, trim, upper";
    let chars: Vec<char> = text.chars().collect();
    let mut depth = 0usize;
    let mut i = 0;
    let mut last_word: Option<String> = None;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' | '`' => {
                // A quoted literal or name: up to the same quote, a doubled quote inside it kept.
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Some(format!("`where` has an unterminated {c} quote")),
                        Some(q) if *q == c && chars.get(j + 1) == Some(&c) => j += 2,
                        Some(q) if *q == c => break,
                        Some('\\') => return Some(format!("{rule}: no backslash")),
                        Some(_) => j += 1,
                    }
                }
                i = j + 1;
                // A quoted name is never called: `"set_config"(..)` would skip the list of functions.
                let mut k = i;
                while chars.get(k).is_some_and(|c| c.is_whitespace()) {
                    k += 1;
                }
                if chars.get(k) == Some(&'(') {
                    return Some(format!("{rule}: no call of a quoted name"));
                }
                last_word = None;
                continue;
            }
            ';' | '#' | '\\' | '{' | '}' | '[' | ']' | '$' | '?' | ':' | '@' => {
                return Some(format!("{rule}: no `{c}`"));
            }
            '-' if chars.get(i + 1) == Some(&'-') => return Some(format!("{rule}: no comments")),
            '/' if chars.get(i + 1) == Some(&'*') => return Some(format!("{rule}: no comments")),
            '(' => {
                if let Some(word) = &last_word
                    && !WHERE_FUNCTIONS.contains(&word.as_str())
                    && !WHERE_SYNTAX.contains(&word.as_str())
                {
                    return Some(format!("{rule}: `{word}(` is not one of them"));
                }
                depth += 1;
            }
            ')' => {
                if depth == 0 {
                    return Some(format!("{rule}: a `)` closes nothing"));
                }
                depth -= 1;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut j = i;
                while chars
                    .get(j)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                {
                    j += 1;
                }
                let word: String = chars[i..j].iter().collect::<String>().to_ascii_lowercase();
                if WHERE_FORBIDDEN.contains(&word.as_str()) {
                    return Some(format!("{rule}: no `{word}`"));
                }
                // A call is a word then `(`, spaces between allowed.
                let mut k = j;
                while chars.get(k).is_some_and(|c| c.is_whitespace()) {
                    k += 1;
                }
                let calls = chars.get(k) == Some(&'(');
                i = if calls { k } else { j };
                last_word = calls.then_some(word);
                continue;
            }
            c if !c.is_ascii() => return Some(format!("{rule}: ASCII only outside quotes")),
            _ => {}
        }
        last_word = None;
        i += 1;
    }
    (depth != 0).then(|| format!("{rule}: a `(` is never closed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_where_is_one_condition_over_the_columns() {
        for good in [
            "status = 'open'",
            "status IN ('open', 'held') AND total >= 10.5",
            "lower(name) LIKE 'a%' OR (score BETWEEN 1 AND 9 AND NOT archived)",
            "created_at > now() AND note IS NOT NULL",
            "name = 'it''s (fine); -- really'",
            "coalesce (region, 'none') <> 'eu'",
        ] {
            assert_eq!(where_problem(good), None, "{good}");
        }
        for bad in [
            "1=1) INTO OUTFILE '/tmp/x' #",
            "set_config('default_transaction_read_only','off',false) IS NOT NULL",
            "nextval('s') > 0",
            "pg_sleep (5) IS NULL",
            "1=1) UNION SELECT 1,2,3 WHERE (1=1",
            "id IN (SELECT id FROM other)",
            "x = 1 -- comment",
            "x = 1 /* c */",
            "x = 'a\\' OR 1=1",
            "x = $$a$$",
            "x::int = 1",
            "CAST((TABLE secrets) AS int) = 1",
            "id IN (TABLE other)",
            "CAST(pw AS int) = 0",
            "id = NEXT VALUE FOR s",
            "@v := 1",
            "(x = 1",
            "x = 1)",
            "x = 'open",
            "[(] = 1",
            "n\u{0430}me = 1",
            "x = 1; DELETE FROM t",
            "\"set_config\"('a','b',false) IS NOT NULL",
            "pg_catalog.\"pg_sleep\" (1) IS NULL",
            "`load_file`('/etc/hostname') IS NULL",
            "pg_catalog.lower(x) = 'a'",
        ] {
            assert!(where_problem(bad).is_some(), "{bad}");
        }
    }

    proptest::proptest! {
        /// Any text gets an answer: no panic, no endless loop (the lexer always moves forward).
        #[test]
        fn any_text_gets_an_answer(text in "[ -~\\t\\n\\u{a0}é\"'`()]{0,80}") {
            let _ = where_problem(&text);
        }
    }
}
