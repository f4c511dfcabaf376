//! Text that reaches people: names printed in reports, logs and terminals, and words from the wire printed on a
//! terminal. A name may not hold what would make it lie about itself (control characters, bidirectional overrides
//! such as U+202E that reverse what follows, line and paragraph separators that start a new line in some viewers);
//! text from a peer is printed with such characters escaped, so it can neither move the cursor nor clear the screen.

/// Whether `c` may not appear in a name: a control character (C0, DEL, C1), a bidirectional formatting character
/// (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069) or a line or paragraph separator (U+2028, U+2029).
pub fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// `text` with every [`is_deceptive`] character written as a `\u{..}` escape (tab and newline too: a line from the
/// wire stays one line).
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_deceptive(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// [`escaped`], but a newline stays a newline: for messages of several lines (a plan's located errors) whose
/// words may come from a peer.
pub fn escaped_lines(text: &str) -> String {
    text.split('\n').map(escaped).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_sequences_and_bidi_overrides_are_escaped() {
        // Regression (issue 20): RunEvent text from a coordinator was printed raw (clear screen, OSC title).
        let hostile = "\u{1b}[2J\u{1b}]0;owned\u{7}done\u{202e}gnp.exe\u{2028}next\r\n";
        let shown = escaped(hostile);
        assert!(!shown.chars().any(is_deceptive), "{shown:?}");
        assert_eq!(
            shown,
            "\\u{1b}[2J\\u{1b}]0;owned\\u{7}done\\u{202e}gnp.exe\\u{2028}next\\u{d}\\u{a}"
        );
        assert_eq!(escaped("plain, ünïcode ✓"), "plain, ünïcode ✓");
        assert_eq!(escaped_lines("a\u{1b}[2J\nb\r"), "a\\u{1b}[2J\nb\\u{d}");
    }
}
