//! [`Handler`]: an async function whose arguments are taken from the message and its
//! [`Context`] ([`FromMessage`]), as axum's handlers take theirs from the request.

use std::future::{Future, ready};
use std::pin::Pin;
use std::sync::Arc;

use crate::context::Context;
use crate::message::{Failure, IntoReply, Json, Message, Payload};

/// What a handler's future gives: its answer, if any, or its failure.
pub type Outcome = Result<Option<Payload>, Failure>;

/// A boxed handler future.
pub(crate) type Running = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// A value a handler takes as an argument, drawn from the message and its context: the
/// [`Context`] and [`Message`] themselves, [`State`], [`Path`](crate::Path),
/// [`Json`](crate::Json), [`Extension`]. When it cannot be drawn, the handler is not called
/// and the [`Failure`] says why.
pub trait FromMessage<S>: Sized {
    /// Draws the value.
    fn from_message(context: &Context<S>, message: &Message) -> Result<Self, Failure>;
}

impl<S: Clone> FromMessage<S> for Context<S> {
    fn from_message(context: &Context<S>, _: &Message) -> Result<Self, Failure> {
        Ok(context.clone())
    }
}

impl<S> FromMessage<S> for Message {
    fn from_message(_: &Context<S>, message: &Message) -> Result<Self, Failure> {
        Ok(message.clone())
    }
}

/// The application's state ([`App::with_state`](crate::App::with_state)) as an argument, as
/// axum's `State` is: its type is the application's, checked when the handler is registered.
#[derive(Clone, Copy, Debug, Default)]
pub struct State<S>(pub S);

impl<S: Clone> FromMessage<S> for State<S> {
    fn from_message(context: &Context<S>, _: &Message) -> Result<Self, Failure> {
        Ok(State(context.state().clone()))
    }
}

impl<S, T: serde::de::DeserializeOwned> FromMessage<S> for Json<T> {
    fn from_message(_: &Context<S>, message: &Message) -> Result<Self, Failure> {
        message.json().map(Json)
    }
}

/// A value the login put in the session ([`Admit::extension`](crate::Admit::extension)); a
/// session without one is a failure of the application, not of the client.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extension<T>(pub T);

impl<S, T: Clone + Send + Sync + 'static> FromMessage<S> for Extension<T> {
    fn from_message(context: &Context<S>, _: &Message) -> Result<Self, Failure> {
        context
            .extensions()
            .get::<T>()
            .cloned()
            .map(Extension)
            .ok_or_else(|| {
                Failure::new(format!(
                    "the session has no {} (set none at login)",
                    std::any::type_name::<T>()
                ))
            })
    }
}

/// An async function of arguments drawn from the message ([`FromMessage`]), answering with
/// anything [`IntoReply`] (`()`, a [`Payload`], a `String`, a [`Json`](crate::Json)) or
/// failing with a [`Failure`]. Every `async fn(Context, Message) -> Result<R, Failure>` is
/// one, and so is `async fn(State<Db>, Path<Room>, Json<Order>) -> Result<R, Failure>`.
pub trait Handler<S, Args>: Send + Sync + 'static {
    /// Handles one message.
    fn call(&self, context: Context<S>, message: Message) -> Running;
}

macro_rules! handler_of {
    ($($arg:ident),+) => {
        impl<F, Fut, R, S, $($arg),+> Handler<S, ($($arg,)+)> for F
        where
            F: Fn($($arg),+) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<R, Failure>> + Send + 'static,
            R: IntoReply,
            $($arg: FromMessage<S>,)+
        {
            #[allow(non_snake_case)]
            fn call(&self, context: Context<S>, message: Message) -> Running {
                $(
                    let $arg = match $arg::from_message(&context, &message) {
                        Ok(value) => value,
                        Err(failure) => return Box::pin(ready(Err(failure))),
                    };
                )+
                let future = self($($arg),+);
                Box::pin(async move { future.await?.into_reply() })
            }
        }
    };
}

handler_of!(A);
handler_of!(A, B);
handler_of!(A, B, C);
handler_of!(A, B, C, D);
handler_of!(A, B, C, D, E);
handler_of!(A, B, C, D, E, G);

/// A handler with its argument types forgotten.
pub(crate) type Erased<S> = Arc<dyn Fn(Context<S>, Message) -> Running + Send + Sync>;

/// Forgets `handler`'s argument types.
pub(crate) fn erase<S: 'static, Args>(handler: impl Handler<S, Args>) -> Erased<S> {
    Arc::new(move |context, message| handler.call(context, message))
}

/// Gives an erased handler its state once and for all.
pub(crate) fn bind<S: Clone + Send + Sync + 'static>(handler: Erased<S>, state: S) -> Erased<()> {
    Arc::new(move |context: Context, message| handler(context.with_state(state.clone()), message))
}
