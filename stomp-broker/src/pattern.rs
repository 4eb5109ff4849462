//! Destination patterns, as Spring's simple broker reads them: segments split at `/`, `*`
//! matches exactly one segment and `**` any number of them (none included).

/// A subscription's destination, literal or with wildcards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    wild: bool,
    /// Octets of the literal segments before the first wildcard, without the `/` that ends
    /// them: every match starts with them, then ends or goes on with a `/`. None when the
    /// first segment is a wildcard.
    literal: Option<usize>,
}

impl Pattern {
    /// Reads a destination; `*` and `**` segments are wildcards.
    pub fn new(destination: &str) -> Pattern {
        let mut literal = None;
        let mut wild = false;
        for segment in destination.split('/') {
            if segment == "*" || segment == "**" {
                wild = true;
                break;
            }
            literal = Some(literal.map_or(0, |n: usize| n + 1) + segment.len());
        }
        Pattern {
            text: destination.to_owned(),
            wild,
            literal,
        }
    }

    /// Whether it has a `*` or `**` segment.
    pub(crate) fn is_wild(&self) -> bool {
        self.wild
    }

    /// The destination as subscribed.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `destination` matches.
    ///
    /// ```
    /// use stomp_broker::Pattern;
    ///
    /// assert!(Pattern::new("/topic/prices").matches("/topic/prices"));
    /// assert!(Pattern::new("/topic/*").matches("/topic/prices"));
    /// assert!(!Pattern::new("/topic/*").matches("/topic/prices/eu"));
    /// assert!(Pattern::new("/topic/**").matches("/topic/prices/eu"));
    /// assert!(Pattern::new("/chat/*/typing").matches("/chat/room1/typing"));
    /// ```
    pub fn matches(&self, destination: &str) -> bool {
        if !self.wild {
            return self.text == destination;
        }
        // Most destinations a pattern is tried on fail here, without splitting anything.
        if let Some(literal) = self.literal {
            let after = destination.as_bytes().get(literal);
            if !destination.starts_with(&self.text[..literal]) || after.is_some_and(|b| *b != b'/')
            {
                return false;
            }
        }
        let pattern: Vec<&str> = self.text.split('/').collect();
        let segments: Vec<&str> = destination.split('/').collect();
        matches_segments(&pattern, &segments)
    }
}

/// Glob matching over segments, `**` taking any number; iterative with one backtrack point,
/// so linear for patterns with one `**` and never exponential.
fn matches_segments(pattern: &[&str], segments: &[&str]) -> bool {
    let (mut p, mut s) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while s < segments.len() {
        match pattern.get(p) {
            Some(&"**") => {
                backtrack = Some((p, s));
                p += 1;
            }
            Some(&part) if part == "*" || part == segments[s] => {
                p += 1;
                s += 1;
            }
            _ => match backtrack {
                // Let the last `**` take one more segment.
                Some((bp, bs)) => {
                    p = bp + 1;
                    s = bs + 1;
                    backtrack = Some((bp, bs + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&part| part == "**")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        let cases = [
            ("/topic/a", "/topic/a", true),
            ("/topic/a", "/topic/b", false),
            ("/topic/*", "/topic/a", true),
            ("/topic/*", "/topic", false),
            ("/topic/*", "/topic/a/b", false),
            ("/topic/**", "/topic", true),
            ("/topic/**", "/topic/a/b/c", true),
            ("/**", "/anything/at/all", true),
            ("/topic/**/eu", "/topic/prices/eu", true),
            ("/topic/**/eu", "/topic/eu", true),
            ("/topic/**/eu", "/topic/a/b/us", false),
            ("/chat/*/typing", "/chat/r1/typing", true),
            ("/chat/*/typing", "/chat/r1/r2/typing", false),
            ("/a/**/b/**/c", "/a/x/b/y/z/c", true),
            ("/a/**/b/**/c", "/a/x/y/c", false),
            ("/chat/*", "/chatroom/x", false),
            ("/chat/*", "/chat", false),
            ("/chat/*", "/cha", false),
            ("*", "x", true),
            ("/*", "/x", true),
            ("/**", "/", true),
        ];
        for (pattern, destination, expected) in cases {
            assert_eq!(
                Pattern::new(pattern).matches(destination),
                expected,
                "{pattern} {destination}"
            );
        }
    }
}
