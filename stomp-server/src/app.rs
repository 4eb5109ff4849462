//! [`App`]: the application's handlers and hooks, by destination, as Spring's
//! `@MessageMapping`, `@SubscribeMapping` and channel interceptors are.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use stomp_broker::Authorizer;
use stomp_session::{Command, ConnectRequest, FrameBuf, Refused};

use crate::context::Context;
use crate::handler::{Erased, Handler, bind, erase};
use crate::lifecycle::SessionEvent;
use crate::login::{Admit, Login};
use crate::route::{Params, Template};

/// What a client learns when a handler fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failures {
    /// An ERROR frame carrying the failure's message, and the close (the application's
    /// default).
    #[default]
    Error,
    /// An answer at the context's [reply destination](Context::reply_destination), as
    /// [`Failure::with_reply`](crate::Failure::with_reply) sets it or `{"error": message}`;
    /// the session goes on (Spring's `@MessageExceptionHandler` with `@SendToUser`).
    Reply,
}

/// An inbound SEND or SUBSCRIBE, as interceptors see it before its RECEIPT.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Inbound<'a, S = ()> {
    /// `SEND` or `SUBSCRIBE`.
    pub command: Command,
    /// The user the session acts as.
    pub user: Option<&'a str>,
    /// The frame's destination.
    pub destination: &'a str,
    /// The whole frame.
    pub frame: &'a FrameBuf,
    /// The application's state.
    pub state: &'a S,
}

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;
pub(crate) type Authenticate<S> =
    Arc<dyn Fn(Login<S>) -> Boxed<Result<Admit, Refused>> + Send + Sync>;
type Interceptor<S> = Arc<dyn Fn(&Inbound<'_, S>) -> Result<(), Refused> + Send + Sync>;
pub(crate) type Hook<S> = Arc<dyn Fn(Context<S>, SessionEvent) -> Boxed<()> + Send + Sync>;

/// A registered handler, and what its failures do if it chose.
pub(crate) struct Route<S> {
    pub(crate) handler: Erased<S>,
    pub(crate) failures: Option<Failures>,
}

impl<S> Clone for Route<S> {
    fn clone(&self) -> Self {
        Route {
            handler: self.handler.clone(),
            failures: self.failures,
        }
    }
}

/// Handlers by destination: literal ones in a map, templates tried in the order registered.
struct Routes<S> {
    exact: HashMap<String, Route<S>>,
    templates: Vec<(Template, Route<S>)>,
}

impl<S> Default for Routes<S> {
    fn default() -> Self {
        Routes {
            exact: HashMap::new(),
            templates: Vec::new(),
        }
    }
}

impl<S> Routes<S> {
    fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.exact.keys().map(String::as_str).collect();
        names.extend(self.templates.iter().map(|(t, _)| t.as_str()));
        names
    }
}

impl<S: 'static> Routes<S> {
    fn add(&mut self, template: &str, route: Route<S>) {
        let template = Template::parse(template);
        if template.is_literal() {
            self.exact.insert(template.as_str().to_owned(), route);
        } else {
            self.templates.push((template, route));
        }
    }

    fn find(&self, destination: &str) -> Option<(Route<S>, Params)> {
        if let Some(route) = self.exact.get(destination) {
            return Some((route.clone(), Params::new()));
        }
        self.templates
            .iter()
            .find_map(|(t, r)| t.matches(destination).map(|params| (r.clone(), params)))
    }

    /// The same routes, their handlers given `state`.
    fn bind(self, state: &S) -> Routes<()>
    where
        S: Clone + Send + Sync,
    {
        let bound = |route: Route<S>| Route {
            handler: bind(route.handler, state.clone()),
            failures: route.failures,
        };
        Routes {
            exact: self.exact.into_iter().map(|(d, r)| (d, bound(r))).collect(),
            templates: self
                .templates
                .into_iter()
                .map(|(t, r)| (t, bound(r)))
                .collect(),
        }
    }
}

/// An application: handlers for SENDs and SUBSCRIBEs to application destinations (`/app/...`
/// by default), its login, hooks on every session's life and on every inbound SEND and
/// SUBSCRIBE, and its state `S`, which every handler and hook reaches typed
/// ([`Context::state`], the [`State`](crate::State) argument). Handlers are async; each
/// session's handlers and hooks run one at a time in the order its frames came, apart from
/// the broker and from other sessions, with at most [`session_queue`](Self::session_queue)
/// waiting.
///
/// ```
/// use stomp_server::{App, Context, Failure, Json, Path, State};
///
/// #[derive(Clone)]
/// struct Rooms { names: Vec<String> }
///
/// #[derive(serde::Deserialize)]
/// struct Greeting { name: String }
///
/// async fn greet(
///     ctx: Context<Rooms>,
///     Path(room): Path<String>,
///     Json(greeting): Json<Greeting>,
/// ) -> Result<Json<String>, Failure> {
///     ctx.publish(format!("/topic/{room}"), format!("{} joined", greeting.name)).await?;
///     // The return value answers the sender alone.
///     Ok(Json(format!("welcome to {room}, {}", greeting.name)))
/// }
///
/// async fn rooms(State(rooms): State<Rooms>) -> Result<Json<Vec<String>>, Failure> {
///     Ok(Json(rooms.names))
/// }
///
/// let app = App::with_state(Rooms { names: vec!["lobby".into()] })
///     .message("/app/greet/{room}", greet)
///     .subscribe("/app/rooms", rooms);
/// # drop(app);
/// ```
pub struct App<S = ()> {
    state: S,
    sends: Routes<S>,
    subscribes: Routes<S>,
    authenticate: Option<Authenticate<S>>,
    interceptors: Vec<Interceptor<S>>,
    hook: Option<Hook<S>>,
    failures: Failures,
    reply_destination: String,
    session_queue: usize,
    logins: usize,
    login_timeout: Duration,
}

impl Default for App {
    fn default() -> App {
        App::new()
    }
}

impl<S> fmt::Debug for App<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("message", &self.sends.names())
            .field("subscribe", &self.subscribes.names())
            .field("authenticate", &self.authenticate.is_some())
            .field("interceptors", &self.interceptors.len())
            .field("on_session", &self.hook.is_some())
            .field("failures", &self.failures)
            .field("reply_destination", &self.reply_destination)
            .field("session_queue", &self.session_queue)
            .field("logins", &self.logins)
            .field("login_timeout", &self.login_timeout)
            .finish_non_exhaustive()
    }
}

impl App {
    /// An application with no state and no handlers: every login is let in as itself,
    /// failures are ERRORs, answers go to `/user/queue/replies` and each session may have 64
    /// messages waiting for its handlers.
    pub fn new() -> App {
        App::with_state(())
    }
}

impl<S: Clone + Send + Sync + 'static> App<S> {
    /// An application whose handlers and hooks share `state` (a database pool, a registry):
    /// each gets a clone, typed as `S`, so keep it cheap to clone (an `Arc` inside).
    pub fn with_state(state: S) -> App<S> {
        App {
            state,
            sends: Routes::default(),
            subscribes: Routes::default(),
            authenticate: None,
            interceptors: Vec::new(),
            hook: None,
            failures: Failures::Error,
            reply_destination: "/user/queue/replies".into(),
            session_queue: 64,
            logins: 64,
            login_timeout: Duration::from_secs(10),
        }
    }

    /// Handles SENDs to `destination`, a template whose `{name}` segments are parameters
    /// ([`Context::param`], [`Path`](crate::Path)) and whose last segment may be `{*rest}`.
    /// Literal destinations are found first, then templates in the order registered. What
    /// the handler returns answers the sender ([`Context::reply`]). A SEND to an application
    /// destination no handler serves is an ERROR before its RECEIPT.
    ///
    /// # Panics
    /// If the template is malformed: a parameter without a name, sharing its segment with
    /// text, named twice, or `{*rest}` before the end.
    pub fn message<Args>(self, destination: &str, handler: impl Handler<S, Args>) -> App<S> {
        self.message_with(destination, None, handler)
    }

    /// As [`message`](Self::message), with what the handler's failures do, whatever the
    /// failure and whatever [`failures`](Self::failures) says (`None`: as they say).
    pub fn message_with<Args>(
        mut self,
        destination: &str,
        failures: impl Into<Option<Failures>>,
        handler: impl Handler<S, Args>,
    ) -> App<S> {
        let route = Route {
            handler: erase(handler),
            failures: failures.into(),
        };
        self.sends.add(destination, route);
        self
    }

    /// Answers SUBSCRIBEs to `destination` (a template, as for [`message`](Self::message)):
    /// what the handler returns reaches the subscriber on that subscription, as Spring's
    /// `@SubscribeMapping` does, and later [`Context::reply_on`] calls reach it until it
    /// unsubscribes. A SUBSCRIBE to an application destination no handler serves is an ERROR.
    pub fn subscribe<Args>(self, destination: &str, handler: impl Handler<S, Args>) -> App<S> {
        self.subscribe_with(destination, None, handler)
    }

    /// As [`subscribe`](Self::subscribe), with what the handler's failures do.
    pub fn subscribe_with<Args>(
        mut self,
        destination: &str,
        failures: impl Into<Option<Failures>>,
        handler: impl Handler<S, Args>,
    ) -> App<S> {
        let route = Route {
            handler: erase(handler),
            failures: failures.into(),
        };
        self.subscribes.add(destination, route);
        self
    }

    /// Decides every CONNECT with an async function of its [`Login`]: every CONNECT header,
    /// the peer's address, the transport and, over WebSocket, the upgrade request (its
    /// headers, cookies, URI, and what an axum layer put in its extensions). An
    /// [`Admit`] lets the session in as its user, with the data every handler of the session
    /// reads ([`Context::extensions`], the [`Extension`](crate::Extension) argument); a
    /// [`Refused`] (or text `.into()` one) refuses it with an ERROR carrying its message,
    /// after the login failure delay.
    ///
    /// It runs apart from the broker: the session waits, the others go on. At most
    /// [`logins`](Self::logins) run at once (the others wait their turn), and a login not
    /// decided within [`login_timeout`](Self::login_timeout) or the CONNECT deadline, which
    /// comes first, is refused. Without it, every CONNECT is let in as its `login`.
    pub fn authenticate<F, Fut>(mut self, check: F) -> App<S>
    where
        F: Fn(Login<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Admit, Refused>> + Send + 'static,
    {
        self.authenticate = Some(Arc::new(move |login| Box::pin(check(login))));
        self
    }

    /// Most logins ([`authenticate`](Self::authenticate)) running at once (default 64, at
    /// least 1).
    pub fn logins(mut self, concurrent: usize) -> App<S> {
        self.logins = concurrent.max(1);
        self
    }

    /// How long one login may take (default 10 s; the CONNECT deadline bounds it too).
    pub fn login_timeout(mut self, timeout: Duration) -> App<S> {
        self.login_timeout = timeout;
        self
    }

    /// Adds an interceptor of every inbound SEND and SUBSCRIBE, whatever its destination,
    /// called in the order added as the frame arrives: an `Err` ([`Refused`]) refuses the frame
    /// with an ERROR carrying its message, before any RECEIPT. It runs on the broker task: keep
    /// it quick.
    pub fn intercept(
        mut self,
        check: impl Fn(&Inbound<'_, S>) -> Result<(), Refused> + Send + Sync + 'static,
    ) -> App<S> {
        self.interceptors.push(Arc::new(check));
        self
    }

    /// Calls `hook` as each session is let in, subscribes, unsubscribes and ends (with why),
    /// as Spring's `SessionConnectedEvent` and `SessionDisconnectEvent` are told: in order
    /// for each session, on its handlers' turn (after the handlers of frames before), never
    /// on the broker task. A session that ends is told so once, after everything else.
    pub fn on_session<F, Fut>(mut self, hook: F) -> App<S>
    where
        F: Fn(Context<S>, SessionEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.hook = Some(Arc::new(move |context, event| {
            Box::pin(hook(context, event))
        }));
        self
    }

    /// What a client learns when a handler fails (default [`Failures::Error`]), for
    /// handlers whose registration did not choose and failures that are not
    /// [bad input](crate::Failure::bad_input) (answered, by default).
    pub fn failures(mut self, failures: Failures) -> App<S> {
        self.failures = failures;
        self
    }

    /// Where [`Context::reply`] answers a SEND without a `reply-to` header (default
    /// `/user/queue/replies`: the sender's subscription there).
    pub fn reply_destination(mut self, destination: impl Into<String>) -> App<S> {
        self.reply_destination = destination.into();
        self
    }

    /// Most messages of one session waiting for its handlers (default 64, at least 1). Past
    /// it, the session's input is not read until its handlers catch up; its heart-beats do not
    /// count meanwhile.
    pub fn session_queue(mut self, messages: usize) -> App<S> {
        self.session_queue = messages.max(1);
        self
    }

    /// The same application with its state given to every handler and hook, as the server
    /// runs it.
    pub(crate) fn bind(self) -> App {
        let state = self.state;
        let authenticate = self.authenticate.map(|check| {
            let state = state.clone();
            let bound: Authenticate<()> =
                Arc::new(move |login: Login| check(login.with_state(state.clone())));
            bound
        });
        let interceptors = self
            .interceptors
            .into_iter()
            .map(|check| {
                let state = state.clone();
                let bound: Interceptor<()> = Arc::new(move |inbound: &Inbound<'_>| {
                    check(&Inbound {
                        command: inbound.command,
                        user: inbound.user,
                        destination: inbound.destination,
                        frame: inbound.frame,
                        state: &state,
                    })
                });
                bound
            })
            .collect();
        let hook = self.hook.map(|hook| {
            let state = state.clone();
            let bound: Hook<()> = Arc::new(move |context: Context, event| {
                hook(context.with_state(state.clone()), event)
            });
            bound
        });
        App {
            sends: self.sends.bind(&state),
            subscribes: self.subscribes.bind(&state),
            state: (),
            authenticate,
            interceptors,
            hook,
            failures: self.failures,
            reply_destination: self.reply_destination,
            session_queue: self.session_queue,
            logins: self.logins,
            login_timeout: self.login_timeout,
        }
    }
}

impl App {
    pub(crate) fn message_handler(&self, destination: &str) -> Option<(Route<()>, Params)> {
        self.sends.find(destination)
    }

    pub(crate) fn subscribe_handler(&self, destination: &str) -> Option<(Route<()>, Params)> {
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

    /// The login function, if the application has one, with its bounds.
    pub(crate) fn login(&self) -> Option<(Authenticate<()>, usize, Duration)> {
        let check = self.authenticate.clone()?;
        Some((check, self.logins, self.login_timeout))
    }

    /// The lifecycle hook, if any.
    pub(crate) fn hook(&self) -> Option<Hook<()>> {
        self.hook.clone()
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
        Ok(request.login.clone())
    }

    fn decides_later(&self) -> bool {
        self.app.authenticate.is_some()
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
            state: &(),
        })
    }

    fn send(&self, user: Option<&str>, destination: &str, frame: &FrameBuf) -> Result<(), Refused> {
        let command = Command::Send;
        self.admit(Inbound {
            command,
            user,
            destination,
            frame,
            state: &(),
        })
    }
}
