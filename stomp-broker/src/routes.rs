//! Which topic subscriptions a destination reaches: literal destinations in a map, patterns in
//! a trie of segments. A SEND costs one map look-up plus a walk of the trie that is linear in
//! the destination's segments (each step visits each trie node at most once), whatever the
//! number of subscriptions that cannot match.

use std::collections::BTreeSet;

use foldhash::HashMap;

use crate::ids::SubscriberKey;

/// The topic subscriptions of the broker, by destination.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    exact: HashMap<String, BTreeSet<SubscriberKey>>,
    patterns: Trie,
}

impl Routes {
    /// Routes `destination` (literal, or a pattern when `pattern`) to `key`.
    pub(crate) fn insert(&mut self, destination: &str, pattern: bool, key: SubscriberKey) {
        if pattern {
            self.patterns.insert(destination, key);
        } else {
            self.exact
                .entry(destination.to_owned())
                .or_default()
                .insert(key);
        }
    }

    /// Undoes [`insert`](Self::insert); what no subscription uses any more is freed.
    pub(crate) fn remove(&mut self, destination: &str, pattern: bool, key: SubscriberKey) {
        if pattern {
            self.patterns.remove(destination, key);
        } else if let Some(keys) = self.exact.get_mut(destination) {
            keys.remove(&key);
            if keys.is_empty() {
                self.exact.remove(destination);
            }
        }
    }

    /// Every subscription `destination` reaches, in a stable order, into `out`.
    pub(crate) fn matching(&mut self, destination: &str, out: &mut Vec<SubscriberKey>) {
        if let Some(keys) = self.exact.get(destination) {
            out.extend(keys.iter().copied());
        }
        self.patterns.matching(destination, out);
    }

    /// Literal destinations with subscribers.
    pub(crate) fn topics(&self) -> usize {
        self.exact.len()
    }

    /// Trie nodes in use below the root: what pattern subscriptions cost in memory.
    pub(crate) fn pattern_nodes(&self) -> usize {
        self.patterns.nodes.len() - self.patterns.free.len() - 1
    }
}

/// One segment of a pattern: the edge from a node's parent to it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Edge {
    Root,
    Literal(Box<str>),
    /// `*`: exactly one segment.
    Star,
    /// `**`: any number of segments, none included.
    Globstar,
}

#[derive(Debug)]
struct Node {
    parent: usize,
    edge: Edge,
    literal: HashMap<Box<str>, usize>,
    star: Option<usize>,
    globstar: Option<usize>,
    subscribers: BTreeSet<SubscriberKey>,
}

impl Node {
    fn new(parent: usize, edge: Edge) -> Node {
        Node {
            parent,
            edge,
            literal: HashMap::default(),
            star: None,
            globstar: None,
            subscribers: BTreeSet::new(),
        }
    }

    fn is_unused(&self) -> bool {
        self.subscribers.is_empty()
            && self.literal.is_empty()
            && self.star.is_none()
            && self.globstar.is_none()
    }
}

/// Pattern subscriptions as a trie of segments, walked as a set of states (an NFA), so that
/// `**` never backtracks.
#[derive(Debug)]
struct Trie {
    /// Node 0 is the root; freed nodes are reused.
    nodes: Vec<Node>,
    free: Vec<usize>,
    /// The walk step that last reached each node, so each node joins a step once.
    marks: Vec<u64>,
    step: u64,
}

impl Default for Trie {
    fn default() -> Trie {
        Trie {
            nodes: vec![Node::new(0, Edge::Root)],
            free: Vec::new(),
            marks: vec![0],
            step: 0,
        }
    }
}

/// A pattern's segments, consecutive `**` taken as one (they match the same).
fn edges(pattern: &str) -> impl Iterator<Item = Edge> + '_ {
    let mut last_globstar = false;
    pattern.split('/').filter_map(move |segment| {
        let edge = match segment {
            "**" => Edge::Globstar,
            "*" => Edge::Star,
            literal => Edge::Literal(literal.into()),
        };
        let repeated = last_globstar && edge == Edge::Globstar;
        last_globstar = edge == Edge::Globstar;
        (!repeated).then_some(edge)
    })
}

impl Trie {
    fn child(&self, node: usize, edge: &Edge) -> Option<usize> {
        let node = &self.nodes[node];
        match edge {
            Edge::Root => None,
            Edge::Literal(segment) => node.literal.get(segment).copied(),
            Edge::Star => node.star,
            Edge::Globstar => node.globstar,
        }
    }

    fn add_child(&mut self, parent: usize, edge: Edge) -> usize {
        let fresh = Node::new(parent, edge.clone());
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id] = fresh;
                id
            }
            None => {
                self.nodes.push(fresh);
                self.marks.push(0);
                self.nodes.len() - 1
            }
        };
        let node = &mut self.nodes[parent];
        match edge {
            Edge::Root => {}
            Edge::Literal(segment) => {
                node.literal.insert(segment, id);
            }
            Edge::Star => node.star = Some(id),
            Edge::Globstar => node.globstar = Some(id),
        }
        id
    }

    fn insert(&mut self, pattern: &str, key: SubscriberKey) {
        let mut at = 0;
        for edge in edges(pattern) {
            at = match self.child(at, &edge) {
                Some(next) => next,
                None => self.add_child(at, edge),
            };
        }
        self.nodes[at].subscribers.insert(key);
    }

    fn remove(&mut self, pattern: &str, key: SubscriberKey) {
        let mut at = 0;
        for edge in edges(pattern) {
            match self.child(at, &edge) {
                Some(next) => at = next,
                None => return,
            }
        }
        self.nodes[at].subscribers.remove(&key);
        // Free the nodes no pattern needs any more, from the leaf up.
        while at != 0 && self.nodes[at].is_unused() {
            let parent = self.nodes[at].parent;
            let edge = std::mem::replace(&mut self.nodes[at].edge, Edge::Root);
            let node = &mut self.nodes[parent];
            match edge {
                Edge::Root => {}
                Edge::Literal(segment) => {
                    node.literal.remove(&segment);
                }
                Edge::Star => node.star = None,
                Edge::Globstar => node.globstar = None,
            }
            self.free.push(at);
            at = parent;
        }
        if self.free.len() + 1 == self.nodes.len() {
            // No pattern left: give the arena's memory back.
            *self = Trie::default();
        }
    }

    /// Adds `node`, and the `**` below it that may match no segment, to this step's states.
    fn enter(&mut self, mut node: usize, states: &mut Vec<usize>) {
        loop {
            if self.marks[node] == self.step {
                return;
            }
            self.marks[node] = self.step;
            states.push(node);
            match self.nodes[node].globstar {
                Some(globstar) => node = globstar,
                None => return,
            }
        }
    }

    fn matching(&mut self, destination: &str, out: &mut Vec<SubscriberKey>) {
        if self.nodes[0].is_unused() {
            return;
        }
        self.step += 1;
        let mut states = Vec::new();
        self.enter(0, &mut states);
        let mut next = Vec::new();
        for segment in destination.split('/') {
            if states.is_empty() {
                return;
            }
            self.step += 1;
            for &state in &states {
                let node = &self.nodes[state];
                let stay = (node.edge == Edge::Globstar).then_some(state);
                let literal = node.literal.get(segment).copied();
                let star = node.star;
                for target in [stay, literal, star].into_iter().flatten() {
                    self.enter(target, &mut next);
                }
            }
            std::mem::swap(&mut states, &mut next);
            next.clear();
        }
        let start = out.len();
        for state in states {
            out.extend(self.nodes[state].subscribers.iter().copied());
        }
        // A subscription sits in one node only, but keep the order stable for callers.
        out[start..].sort_unstable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pattern;

    const CASES: [(&str, &str); 15] = [
        ("/topic/a", "/topic/a"),
        ("/topic/a", "/topic/b"),
        ("/topic/*", "/topic/a"),
        ("/topic/*", "/topic"),
        ("/topic/*", "/topic/a/b"),
        ("/topic/**", "/topic"),
        ("/topic/**", "/topic/a/b/c"),
        ("/**", "/anything/at/all"),
        ("/topic/**/eu", "/topic/prices/eu"),
        ("/topic/**/eu", "/topic/eu"),
        ("/topic/**/eu", "/topic/a/b/us"),
        ("/chat/*/typing", "/chat/r1/typing"),
        ("/chat/*/typing", "/chat/r1/r2/typing"),
        ("/a/**/b/**/c", "/a/x/b/y/z/c"),
        ("/a/**/**/b/**/c", "/a/x/y/c"),
    ];

    #[test]
    fn the_trie_agrees_with_the_pattern_matcher() {
        for (pattern, destination) in CASES {
            let mut routes = Routes::default();
            routes.insert(pattern, true, SubscriberKey(1));
            let mut found = Vec::new();
            routes.matching(destination, &mut found);
            assert_eq!(
                !found.is_empty(),
                Pattern::new(pattern).matches(destination),
                "{pattern} {destination}"
            );
        }
    }

    #[test]
    fn removing_frees_every_node() {
        let mut routes = Routes::default();
        for (n, (pattern, _)) in CASES.iter().enumerate() {
            routes.insert(pattern, true, SubscriberKey(n as u64));
            routes.insert(pattern, false, SubscriberKey(n as u64));
        }
        for (n, (pattern, _)) in CASES.iter().enumerate() {
            routes.remove(pattern, true, SubscriberKey(n as u64));
            routes.remove(pattern, false, SubscriberKey(n as u64));
        }
        assert_eq!(routes.pattern_nodes(), 0, "only the root is left");
        assert!(routes.exact.is_empty());
    }

    #[test]
    fn many_globstars_do_not_multiply_the_work() {
        // 200 patterns of many `**` and a destination of 8000 segments: every step visits each
        // node at most once, so this is quick where backtracking took seconds.
        let mut routes = Routes::default();
        for n in 0..200 {
            let pattern = format!("/topic{}/x{n}", "/**/a".repeat(30));
            routes.insert(&pattern, true, SubscriberKey(n));
        }
        let destination = format!("/topic{}", "/a".repeat(8000));
        let mut found = Vec::new();
        routes.matching(&destination, &mut found);
        assert!(found.is_empty());
        routes.matching(&format!("{destination}/x7"), &mut found);
        assert_eq!(found, [SubscriberKey(7)]);
    }
}
