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

/// A TLS failure in the words of the one who fixes it: rustls names a certificate that does not match the name
/// dialed as `certificate not valid for name "X"; certificate is only valid for DnsName("a"), ..` (Rust debug
/// notation); this says which names the certificate holds and what to do. Any other text is returned as it is.
pub fn tls_in_words(message: &str) -> String {
    const NOT_FOR: &str = "certificate not valid for name \"";
    const ONLY: &str = "certificate is only valid for ";
    let Some(at) = message.find(NOT_FOR) else {
        return message.to_owned();
    };
    let rest = &message[at + NOT_FOR.len()..];
    let Some(end) = rest.find('"') else {
        return message.to_owned();
    };
    let dialed = &rest[..end];
    let after = &rest[end + 1..];
    // The names the certificate holds: the quoted ones of the list, up to where the message goes on (rustls's
    // text repeated by the error's next cause, left out).
    let held = match after.find(ONLY) {
        Some(only) => {
            let list = &after[only + ONLY.len()..];
            let list = &list[..list.find(": ").unwrap_or(list.len())];
            let names: Vec<&str> = list.split('"').skip(1).step_by(2).collect();
            if names.is_empty() {
                list.to_owned()
            } else {
                names.join(", ")
            }
        }
        None => "other names".to_owned(),
    };
    // rustls's own prefix is kept out: the sentence starts with what happened.
    let head = message[..at].trim_end_matches("invalid peer certificate: ");
    format!(
        "{head}the coordinator's certificate is for {held}, not for {dialed:?}, the name dialed: dial it by a name \
         its certificate holds, or make the certificate again with `loadgrade certs --coordinator-name {dialed}`"
    )
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

    #[test]
    fn a_certificate_for_another_name_is_said_in_words() {
        let rustls = "transport error: invalid peer certificate: certificate not valid for name \"127.0.0.1\"; \
                      certificate is only valid for DnsName(\"coord.example\"), DnsName(\"box\")";
        let words = super::tls_in_words(rustls);
        assert_eq!(
            words,
            "transport error: the coordinator's certificate is for coord.example, box, not for \"127.0.0.1\", the \
             name dialed: dial it by a name its certificate holds, or make the certificate again with `loadgrade \
             certs --coordinator-name 127.0.0.1`"
        );
        assert!(!words.contains("DnsName"), "{words}");
        assert_eq!(
            super::tls_in_words("connection refused"),
            "connection refused"
        );
    }
}
