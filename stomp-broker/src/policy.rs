//! Where clients may subscribe and send: the prefixes served, the shape of destinations, the
//! isolation of user destinations, and the application's [`Authorizer`].

use std::sync::Arc;

use stomp_session::{FrameBuf, Refused, SendCheck};

use crate::config::{Authorizer, BrokerConfig};

/// What a subscription's destination is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A literal topic destination.
    Topic,
    /// A topic pattern with `*` or `**` segments.
    Pattern,
    /// A queue: its messages go to one consumer each.
    Queue,
    /// The session's own user destination.
    User,
    /// An application destination: answered by the application alone.
    App,
    /// A broker destination served by another broker, through the relay.
    Relayed,
    /// A queue another shard of the server owns: its consumer is here, its messages there.
    Remote,
}

/// The destination rules, shared by the broker (SUBSCRIBE) and every session (SEND).
pub(crate) struct Policy {
    broker_prefixes: Vec<String>,
    app_prefixes: Vec<String>,
    queue_prefix: String,
    user_prefix: String,
    max_length: usize,
    max_segments: usize,
    drop_unserved: bool,
    pub(crate) authorizer: Arc<dyn Authorizer>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy").finish_non_exhaustive()
    }
}

fn starts_with_any(destination: &str, prefixes: &[String]) -> bool {
    prefixes.iter().any(|p| destination.starts_with(p.as_str()))
}

/// Whether a destination has wildcard segments.
pub(crate) fn is_pattern(destination: &str) -> bool {
    // Every SEND asks: most destinations have no `*` to split on at all.
    destination.contains('*') && destination.split('/').any(|s| s == "*" || s == "**")
}

impl Policy {
    pub(crate) fn new(config: &BrokerConfig, authorizer: Arc<dyn Authorizer>) -> Policy {
        Policy {
            broker_prefixes: config.broker_prefixes.clone(),
            app_prefixes: config.app_prefixes.clone(),
            queue_prefix: config.queue_prefix.clone(),
            user_prefix: config.user_prefix.clone(),
            max_length: config.max_destination_length,
            max_segments: config.max_destination_segments,
            drop_unserved: config.drop_unserved_sends,
            authorizer,
        }
    }

    pub(crate) fn is_app(&self, destination: &str) -> bool {
        starts_with_any(destination, &self.app_prefixes)
    }

    pub(crate) fn is_queue(&self, destination: &str) -> bool {
        destination.starts_with(self.queue_prefix.as_str())
    }

    pub(crate) fn is_served(&self, destination: &str) -> bool {
        starts_with_any(destination, &self.broker_prefixes)
    }

    fn check_shape(&self, destination: &str) -> Result<(), Refused> {
        if destination.len() > self.max_length {
            return Err(format!("destination longer than {} octets", self.max_length).into());
        }
        // One segment more than separators. Counting them all is cheap: the length is
        // bounded already.
        if destination.bytes().filter(|&b| b == b'/').count() >= self.max_segments {
            return Err(format!("destination of more than {} segments", self.max_segments).into());
        }
        Ok(())
    }

    /// Whether `login` may subscribe to `destination`, and what it is.
    pub(crate) fn subscribe(
        &self,
        user: Option<&str>,
        destination: &str,
        frame: &FrameBuf,
    ) -> Result<Kind, Refused> {
        self.check_shape(destination)?;
        let pattern = is_pattern(destination);
        let kind = if destination.starts_with(self.user_prefix.as_str()) {
            if pattern {
                return Err(format!(
                    "patterns are not allowed on user destinations: {destination}"
                )
                .into());
            }
            // `/user/queue/x` is the session's own `/queue/x`: what follows the prefix must be
            // a destination the broker serves, so `/user/bob/queue/x` (another user's) is not.
            let inner = &destination[self.user_prefix.trim_end_matches('/').len()..];
            if !self.is_served(inner) {
                return Err(format!("no such user destination: {destination}").into());
            }
            Kind::User
        } else if self.is_app(destination) {
            if pattern {
                return Err(format!(
                    "patterns are not allowed on application destinations: {destination}"
                )
                .into());
            }
            Kind::App
        } else if !self.is_served(destination) {
            return Err(format!("no such destination: {destination}").into());
        } else if self.is_queue(destination) {
            if pattern {
                // A queue has consumers, each message taken by one, not observers.
                return Err(format!(
                    "patterns are not allowed on queue destinations: {destination}"
                )
                .into());
            }
            Kind::Queue
        } else if pattern {
            Kind::Pattern
        } else {
            Kind::Topic
        };
        self.authorizer.subscribe(user, destination, frame)?;
        Ok(kind)
    }
}

impl SendCheck for Policy {
    fn check(
        &self,
        user: Option<&str>,
        destination: &str,
        frame: &FrameBuf,
    ) -> Result<(), Refused> {
        self.check_shape(destination)?;
        if destination.starts_with(self.user_prefix.as_str()) {
            return Err(format!("clients may not send to user destinations: {destination}").into());
        }
        if !self.is_app(destination) {
            if !self.is_served(destination) {
                if self.drop_unserved {
                    return Ok(());
                }
                return Err(format!("no such destination: {destination}").into());
            }
            if is_pattern(destination) {
                return Err(
                    format!("a SEND's destination may not hold wildcards: {destination}").into(),
                );
            }
        }
        self.authorizer.send(user, destination, frame)
    }
}
