//! What handlers receive ([`Message`]), what they send ([`Payload`]), and how they fail
//! ([`Failure`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use stomp_session::FrameBuf;

use crate::error::{PublishError, Stopped};

/// The content type of JSON payloads, as Spring writes it.
pub const JSON: &str = "application/json;charset=UTF-8";
/// The content type of text payloads.
pub const TEXT: &str = "text/plain;charset=UTF-8";

/// A frame a client sent to an application destination: the SEND a message handler gets, or
/// the SUBSCRIBE a subscription handler gets. Cheap to clone: the body is shared.
#[derive(Clone, Debug)]
pub struct Message {
    frame: FrameBuf,
    destination: Arc<str>,
}

impl Message {
    pub(crate) fn new(frame: FrameBuf, destination: String) -> Message {
        let destination = Arc::from(destination);
        Message { frame, destination }
    }

    /// The destination the client named.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// The first header named `name`, unescaped.
    pub fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.frame.header(name)
    }

    /// The whole frame, every header in wire order.
    pub fn frame(&self) -> &FrameBuf {
        &self.frame
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        self.frame.body()
    }

    /// The body as UTF-8 text; a body that is not is a [bad input](Failure::bad_input)
    /// saying so.
    pub fn text(&self) -> Result<&str, Failure> {
        std::str::from_utf8(self.body())
            .map_err(|e| Failure::bad_input(format!("the body is not UTF-8: {e}")))
    }

    /// The body parsed as JSON into `T`; a body that does not parse is a
    /// [bad input](Failure::bad_input) saying why.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Failure> {
        serde_json::from_slice(self.body())
            .map_err(|e| Failure::bad_input(format!("invalid JSON: {e}")))
    }
}

/// A message to send: headers (a content type among them) and a body.
///
/// ```
/// use stomp_server::Payload;
///
/// let text = Payload::text("hello");
/// assert_eq!(text.body(), "hello");
/// let json = Payload::json(&serde_json::json!({"type": "MESSAGE"})).unwrap();
/// assert_eq!(json.headers()[0], ("content-type".to_owned(), "application/json;charset=UTF-8".to_owned()));
/// let custom = Payload::from(vec![1u8, 2, 3]).header("priority", "9");
/// assert_eq!(custom.headers().len(), 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Payload {
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Payload {
    /// A body with no headers.
    pub fn bytes(body: impl Into<Bytes>) -> Payload {
        Payload {
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// UTF-8 text, `content-type:text/plain;charset=UTF-8`.
    pub fn text(text: impl Into<String>) -> Payload {
        Payload::bytes(text.into()).header("content-type", TEXT)
    }

    /// `value` as JSON, `content-type:application/json;charset=UTF-8`.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Payload, Failure> {
        let body = serde_json::to_vec(value)
            .map_err(|e| Failure::new(format!("cannot write JSON: {e}")))?;
        Ok(Payload::bytes(body).header("content-type", JSON))
    }

    /// Adds a header (the first of a name wins, as STOMP 1.2 says).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Payload {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The headers, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    pub(crate) fn header_pairs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }
}

impl From<Bytes> for Payload {
    fn from(body: Bytes) -> Payload {
        Payload::bytes(body)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(body: Vec<u8>) -> Payload {
        Payload::bytes(body)
    }
}

impl From<String> for Payload {
    fn from(text: String) -> Payload {
        Payload::text(text)
    }
}

impl From<&str> for Payload {
    fn from(text: &str) -> Payload {
        Payload::text(text)
    }
}

/// JSON both ways: a handler's argument `Json(order): Json<Order>` is the body parsed (a body
/// that does not parse is a [bad input](Failure::bad_input)), and a handler that returns
/// `Ok(Json(answer))` answers with `answer` written as JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

/// What a handler's success becomes: an answer to the client ([`Context::reply`] for a SEND,
/// the subscription itself for a SUBSCRIBE), or nothing.
///
/// [`Context::reply`]: crate::Context::reply
pub trait IntoReply {
    /// The answer, if any.
    fn into_reply(self) -> Result<Option<Payload>, Failure>;
}

impl IntoReply for () {
    fn into_reply(self) -> Result<Option<Payload>, Failure> {
        Ok(None)
    }
}

impl IntoReply for Payload {
    fn into_reply(self) -> Result<Option<Payload>, Failure> {
        Ok(Some(self))
    }
}

impl IntoReply for String {
    fn into_reply(self) -> Result<Option<Payload>, Failure> {
        Ok(Some(Payload::text(self)))
    }
}

impl IntoReply for &'static str {
    fn into_reply(self) -> Result<Option<Payload>, Failure> {
        Ok(Some(Payload::text(self)))
    }
}

impl<T: Serialize> IntoReply for Json<T> {
    fn into_reply(self) -> Result<Option<Payload>, Failure> {
        Payload::json(&self.0).map(Some)
    }
}

impl<T: IntoReply> IntoReply for Option<T> {
    fn into_reply(self) -> Result<Option<Payload>, Failure> {
        match self {
            Some(value) => value.into_reply(),
            None => Ok(None),
        }
    }
}

/// A handler's failure. What the client learns is the handler's [`Failures`]: an ERROR frame
/// carrying the message and the close ([`Failures::Error`]), or the failure as an answer (
/// [`Failures::Reply`]): the payload set with [`with_reply`](Self::with_reply), or
/// `{"error": message}` as JSON. Unless the handler's registration chose, a
/// [bad input](Self::bad_input) (a body or destination that does not parse) is answered, and
/// any other failure follows [`App::failures`](crate::App::failures).
///
/// [`Failures`]: crate::Failures
/// [`Failures::Error`]: crate::Failures::Error
/// [`Failures::Reply`]: crate::Failures::Reply
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    message: String,
    reply: Option<Payload>,
    bad_input: bool,
}

impl Failure {
    /// A failure that says `message`.
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            reply: None,
            bad_input: false,
        }
    }

    /// A failure of what the client sent (a body or destination that does not parse): by
    /// default answered, not closed.
    pub fn bad_input(message: impl Into<String>) -> Failure {
        Failure {
            bad_input: true,
            ..Failure::new(message)
        }
    }

    /// Whether it is a [bad input](Self::bad_input).
    pub fn is_bad_input(&self) -> bool {
        self.bad_input
    }

    /// The answer the client gets under [`Failures::Reply`](crate::Failures::Reply).
    pub fn with_reply(mut self, reply: Payload) -> Failure {
        self.reply = Some(reply);
        self
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The answer a client gets when failures are replies.
    pub(crate) fn into_reply(self) -> Payload {
        match self.reply {
            Some(reply) => reply,
            None => Payload::json(&serde_json::json!({ "error": self.message }))
                .unwrap_or_else(|_| Payload::text(self.message)),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::new(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Failure {
        Failure::new(message)
    }
}

impl From<Stopped> for Failure {
    fn from(stopped: Stopped) -> Failure {
        Failure::new(stopped.to_string())
    }
}

impl From<PublishError> for Failure {
    fn from(error: PublishError) -> Failure {
        Failure::new(error.to_string())
    }
}
