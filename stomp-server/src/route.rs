//! Destination templates with path parameters, as handlers are registered: `/app/chat/{room}`
//! matches `/app/chat/lobby` with `room` = `lobby`. A parameter takes one whole segment; a
//! last parameter written `{*rest}` takes the rest of the destination, slashes included.

use std::fmt;

/// One segment of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    /// The rest of the destination, at least one octet.
    Rest(String),
}

/// A destination template, such as `/app/chat/{room}`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Template {
    text: String,
    segments: Vec<Segment>,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The values a destination gave a template's parameters, in order.
pub(crate) type Params = Vec<(String, String)>;

impl Template {
    /// Parses a template. Panics, as a route table written wrong is a programming error, when
    /// a parameter is unnamed or unclosed, shares its segment with text, is named twice, or
    /// `{*rest}` is not last.
    pub(crate) fn parse(text: &str) -> Template {
        let mut segments = Vec::new();
        let parts: Vec<&str> = text.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => {
                    let (rest, name) = match name.strip_prefix('*') {
                        Some(name) => (true, name),
                        None => (false, name),
                    };
                    assert!(
                        !name.is_empty() && !name.contains(['{', '}', '*']),
                        "destination template {text:?}: a parameter needs a name"
                    );
                    assert!(
                        !rest || i + 1 == parts.len(),
                        "destination template {text:?}: {{*{name}}} must be the last segment"
                    );
                    let named = |s: &Segment| matches!(s, Segment::Param(n) | Segment::Rest(n) if n == name);
                    assert!(
                        !segments.iter().any(named),
                        "destination template {text:?}: parameter {name:?} named twice"
                    );
                    if rest {
                        Segment::Rest(name.to_owned())
                    } else {
                        Segment::Param(name.to_owned())
                    }
                }
                None => {
                    assert!(
                        !part.contains(['{', '}']),
                        "destination template {text:?}: a parameter must be a whole segment"
                    );
                    Segment::Literal((*part).to_owned())
                }
            };
            segments.push(segment);
        }
        Template {
            text: text.to_owned(),
            segments,
        }
    }

    /// The template as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the template has no parameters.
    pub(crate) fn is_literal(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// The parameters `destination` gives, if it matches. A parameter never matches an empty
    /// segment.
    pub(crate) fn matches(&self, destination: &str) -> Option<Params> {
        let mut params = Params::new();
        let mut rest = destination;
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 {
                rest = rest.strip_prefix('/')?;
            }
            if let Segment::Rest(name) = segment {
                if rest.is_empty() {
                    return None;
                }
                params.push((name.clone(), rest.to_owned()));
                return Some(params);
            }
            let end = rest.find('/').unwrap_or(rest.len());
            let (part, after) = rest.split_at(end);
            match segment {
                Segment::Literal(text) if text == part => {}
                Segment::Param(name) if !part.is_empty() => {
                    params.push((name.clone(), part.to_owned()));
                }
                _ => return None,
            }
            rest = after;
        }
        rest.is_empty().then_some(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(template: &str, destination: &str) -> Option<Vec<(String, String)>> {
        Template::parse(template).matches(destination)
    }

    fn pairs(list: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            list.iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn literals_match_exactly() {
        assert_eq!(params("/app/chat-api", "/app/chat-api"), pairs(&[]));
        assert_eq!(params("/app/chat-api", "/app/chat-api/x"), None);
        assert_eq!(params("/app/chat-api", "/app/chat"), None);
        assert_eq!(params("/app/chat-api", "/app/chat-apix"), None);
    }

    #[test]
    fn parameters_take_one_non_empty_segment() {
        assert_eq!(
            params("/app/chat/{room}/send", "/app/chat/lobby/send"),
            pairs(&[("room", "lobby")])
        );
        assert_eq!(params("/app/chat/{room}/send", "/app/chat//send"), None);
        assert_eq!(params("/app/chat/{room}", "/app/chat/a/b"), None);
        assert_eq!(
            params("/app/{a}/{b}", "/app/x/y"),
            pairs(&[("a", "x"), ("b", "y")])
        );
    }

    #[test]
    fn a_rest_parameter_takes_the_rest() {
        assert_eq!(
            params("/app/files/{*path}", "/app/files/a/b/c"),
            pairs(&[("path", "a/b/c")])
        );
        assert_eq!(params("/app/files/{*path}", "/app/files/"), None);
        assert_eq!(params("/app/files/{*path}", "/app/files"), None);
    }

    #[test]
    #[should_panic(expected = "whole segment")]
    fn a_parameter_inside_text_is_refused() {
        Template::parse("/app/chat-{room}");
    }

    #[test]
    #[should_panic(expected = "named twice")]
    fn a_name_used_twice_is_refused() {
        Template::parse("/app/{a}/{a}");
    }
}
