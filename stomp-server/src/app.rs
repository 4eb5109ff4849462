//! [`App`]: the application's handlers and hooks, by destination, as Spring's
//! `@MessageMapping`, `@SubscribeMapping` and channel interceptors are.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use stomp_broker::Authorizer;
use stomp_session::{Command, ConnectRequest, FrameBuf, Refused};

use crate::context::Context;
use crate::message::{Failure, IntoReply, Message, Payload};
use crate::route::{Params, Template};

/// What a handler's future gives: its answer, if any, or its failure.
pub type Outcome = Result<Option<Payload>, Failure>;

/// An async function of a [`Context`] and a [`Message`] that answers with anything
/// [`IntoReply`] (`()`, a [`Payload`], a `String`, a [`Json`](crate::Json)) or fails with a
/// [`Failure`]. Every `async fn(Context, Message) -> Result<R, Failure>` is one.
pub trait Handler: Send + Sync + 'static {
    /// Handles one message.
    fn call(
        &self,
        context: Context,
        message: Message,
    ) -> Pin<Box<dyn Future<Output = Outcome> + Send>>;
}

impl<F, Fut, R> Handler for F
where
    F: Fn(Context, Message) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, Failure>> + Send + 'static,
    R: IntoReply,
{
    fn call(
        &self,
        context: Context,
        message: Message,
    ) -> Pin<Box<dyn Future<Output = Outcome> + Send>> {
        let future = self(context, message);
        Box::pin(async move { future.await?.into_reply() })
    }
}

/// What a client learns when a handler fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failures {
    /// An ERROR frame carrying the failure's message, and the close (the default).
    #[default]
    Error,
    /// An answer at the context's [reply destination](Context::reply_destination), as
    /// [`Failure::with_reply`] sets it or `{"error": message}`; the session goes on.
    Reply,
}

/// An inbound SEND or SUBSCRIBE, as interceptors see it before its RECEIPT.
#[derive(Clone, Copy, Debug)]
pub struct Inbound<'a> {
    /// `SEND` or `SUBSCRIBE`.
    pub command: Command,
    /// The user the session acts as.
    pub user: Option<&'a str>,
    /// The frame's destination.
    pub destination: &'a str,
    /// The whole frame.
    pub frame: &'a FrameBuf,
}

type Authenticate = dyn Fn(&ConnectRequest) -> Result<Option<String>, Refused> + Send + Sync;
type Interceptor = dyn Fn(&Inbound<'_>) -> Result<(), Refused> + Send + Sync;

/// Handlers by destination: literal ones in a map, templates tried in the order registered.
#[derive(Default)]
struct Routes {
    exact: HashMap<String, Arc<dyn Handler>>,
    templates: Vec<(Template, Arc<dyn Handler>)>,
}

impl Routes {
    fn add(&mut self, template: &str, handler: Arc<dyn Handler>) {
        let template = Template::parse(template);
        if template.is_literal() {
            self.exact.insert(template.as_str().to_owned(), handler);
        } else {
            self.templates.push((template, handler));
        }
    }

    fn find(&self, destination: &str) -> Option<(Arc<dyn Handler>, Params)> {
        if let Some(handler) = self.exact.get(destination) {
            return Some((handler.clone(), Params::new()));
        }
        self.templates
            .iter()
            .find_map(|(t, h)| t.matches(destination).map(|params| (h.clone(), params)))
    }

    fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.exact.keys().map(String::as_str).collect();
        names.extend(self.templates.iter().map(|(t, _)| t.as_str()));
        names
    }
}

/// An application: handlers for SENDs and SUBSCRIBEs to application destinations (`/app/...`
/// by default), and hooks on CONNECT and on every inbound SEND and SUBSCRIBE. Handlers are
/// async; each session's run one at a time in the order its frames came, apart from the broker
/// and from other sessions, with at most [`session_queue`](Self::session_queue) waiting.
///
/// ```
/// use stomp_server::{App, Context, Failure, Json, Message};
///
/// #[derive(serde::Deserialize)]
/// struct Greeting { name: String }
///
/// async fn greet(ctx: Context, message: Message) -> Result<Json<String>, Failure> {
///     let greeting: Greeting = message.json()?;
///     let room = ctx.param("room").unwrap_or("lobby");
///     ctx.publish(format!("/topic/{room}"), format!("{} joined", greeting.name)).await?;
///     // The return value answers the sender alone.
///     Ok(Json(format!("welcome to {room}, {}", greeting.name)))
/// }
///
/// let app = App::new()
///     .message("/app/greet/{room}", greet)
///     .subscribe("/app/rooms", |_ctx: Context, _m: Message| async { Ok(Json(["lobby", "rust"])) })
///     .authenticate(|connect| match connect.login.as_deref() {
///         Some("") | None => Err("a login is required".into()),
///         Some(login) => Ok(Some(login.to_owned())),
///     });
/// ```
pub struct App {
    sends: Routes,
    subscribes: Routes,
    authenticate: Option<Box<Authenticate>>,
    interceptors: Vec<Box<Interceptor>>,
    failures: Failures,
    reply_destination: String,
    session_queue: usize,
}

impl Default for App {
    fn default() -> App {
        App::new()
    }
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("message", &self.sends.names())
            .field("subscribe", &self.subscribes.names())
            .field("interceptors", &self.interceptors.len())
            .field("failures", &self.failures)
            .field("reply_destination", &self.reply_destination)
            .field("session_queue", &self.session_queue)
            .finish_non_exhaustive()
    }
}

impl App {
    /// An application with no handlers: every login is let in as itself, failures are ERRORs,
    /// answers go to `/user/queue/replies` and each session may have 64 messages waiting for
    /// its handlers.
    pub fn new() -> App {
        App {
            sends: Routes::default(),
            subscribes: Routes::default(),
            authenticate: None,
            interceptors: Vec::new(),
            failures: Failures::Error,
            reply_destination: "/user/queue/replies".into(),
            session_queue: 64,
        }
    }

    /// Handles SENDs to `destination`, a template whose `{name}` segments are parameters
    /// ([`Context::param`]) and whose last segment may be `{*rest}`. Literal destinations are
    /// found first, then templates in the order registered. What the handler returns answers
    /// the sender ([`Context::reply`]). A SEND to an application destination no handler serves
    /// is an ERROR before its RECEIPT.
    ///
    /// # Panics
    /// If the template is malformed: a parameter without a name, sharing its segment with
    /// text, named twice, or `{*rest}` before the end.
    pub fn message(mut self, destination: &str, handler: impl Handler) -> App {
        self.sends.add(destination, Arc::new(handler));
        self
    }

    /// Answers SUBSCRIBEs to `destination` (a template, as for [`message`](Self::message)):
    /// what the handler returns reaches the subscriber on that subscription, as Spring's
    /// `@SubscribeMapping` does, and later [`Context::reply_on`] calls reach it until it
    /// unsubscribes. A SUBSCRIBE to an application destination no handler serves is an ERROR.
    pub fn subscribe(mut self, destination: &str, handler: impl Handler) -> App {
        self.subscribes.add(destination, Arc::new(handler));
        self
    }

    /// Decides every CONNECT: `Ok(Some(user))` lets it in as `user` (CONNECTED carries
    /// `user-name`, and [`Handle::send_to_user`](crate::Handle::send_to_user) reaches it),
    /// `Ok(None)` anonymously, an `Err` ([`Refused`], or text `.into()` one) refuses it with an
    /// ERROR carrying its message
    /// (after the login failure delay). It runs on the broker task: keep it quick. Without it,
    /// every CONNECT is let in as its `login`.
    pub fn authenticate(
        mut self,
        check: impl Fn(&ConnectRequest) -> Result<Option<String>, Refused> + Send + Sync + 'static,
    ) -> App {
        self.authenticate = Some(Box::new(check));
        self
    }

    /// Adds an interceptor of every inbound SEND and SUBSCRIBE, whatever its destination,
    /// called in the order added as the frame arrives: an `Err` ([`Refused`]) refuses the frame
    /// with an ERROR carrying its message, before any RECEIPT. It runs on the broker task: keep it quick.
    pub fn intercept(
        mut self,
        check: impl Fn(&Inbound<'_>) -> Result<(), Refused> + Send + Sync + 'static,
    ) -> App {
        self.interceptors.push(Box::new(check));
        self
    }

    /// What a client learns when a handler fails (default [`Failures::Error`]).
    pub fn failures(mut self, failures: Failures) -> App {
        self.failures = failures;
        self
    }

    /// Where [`Context::reply`] answers a SEND without a `reply-to` header (default
    /// `/user/queue/replies`: the sender's subscription there).
    pub fn reply_destination(mut self, destination: impl Into<String>) -> App {
        self.reply_destination = destination.into();
        self
    }

    /// Most messages of one session waiting for its handlers (default 64, at least 1). Past
    /// it, the session's input is not read until its handlers catch up; its heart-beats do not
    /// count meanwhile.
    pub fn session_queue(mut self, messages: usize) -> App {
        self.session_queue = messages.max(1);
        self
    }

    pub(crate) fn message_handler(&self, destination: &str) -> Option<(Arc<dyn Handler>, Params)> {
        self.sends.find(destination)
    }

    pub(crate) fn subscribe_handler(
        &self,
        destination: &str,
    ) -> Option<(Arc<dyn Handler>, Params)> {
        self.subscribes.find(destination)
    }

    pub(crate) fn failure_mode(&self) -> Failures {
        self.failures
    }

    pub(crate) fn default_reply_destination(&self) -> &str {
        &self.reply_destination
    }

    pub(crate) fn queue_size(&self) -> usize {
        self.session_queue
    }
}

/// The application as the broker's [`Authorizer`]: its CONNECT hook, its interceptors, and
/// refusals of application destinations it does not serve.
#[derive(Clone)]
pub(crate) struct Admission {
    pub(crate) app: Arc<App>,
    pub(crate) app_prefixes: Vec<String>,
}

impl Admission {
    /// Runs the interceptors, then refuses application destinations no handler serves.
    fn admit(&self, inbound: Inbound<'_>) -> Result<(), Refused> {
        let interceptors = &self.app.interceptors;
        interceptors.iter().try_for_each(|check| check(&inbound))?;
        let destination = inbound.destination;
        let is_app = self
            .app_prefixes
            .iter()
            .any(|p| destination.starts_with(p.as_str()));
        match inbound.command {
            Command::Subscribe if is_app && self.app.subscribe_handler(destination).is_none() => {
                Err(format!("no such destination: {destination}").into())
            }
            Command::Send if is_app && self.app.message_handler(destination).is_none() => {
                Err(format!("no handler for {destination}").into())
            }
            _ => Ok(()),
        }
    }
}

impl Authorizer for Admission {
    fn connect(&self, request: &ConnectRequest) -> Result<Option<String>, Refused> {
        match &self.app.authenticate {
            Some(check) => check(request),
            None => Ok(request.login.clone()),
        }
    }

    fn subscribe(
        &self,
        user: Option<&str>,
        destination: &str,
        frame: &FrameBuf,
    ) -> Result<(), Refused> {
        let command = Command::Subscribe;
        self.admit(Inbound {
            command,
            user,
            destination,
            frame,
        })
    }

    fn send(&self, user: Option<&str>, destination: &str, frame: &FrameBuf) -> Result<(), Refused> {
        let command = Command::Send;
        self.admit(Inbound {
            command,
            user,
            destination,
            frame,
        })
    }
}
