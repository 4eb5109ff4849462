//! [`Path`]: a destination template's parameters, deserialized, as axum's `Path` is. A
//! struct or map takes them by name, a tuple in order, and a lone value the only one; numbers
//! and booleans are parsed from their text.

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

use crate::context::Context;
use crate::handler::FromMessage;
use crate::message::{Failure, Message};
use crate::route::Params;

/// The destination's parameters as `T`: with `.message("/app/rooms/{room}/{seat}", ..)`, a
/// handler may take `Path((room, seat)): Path<(String, u32)>` or a
/// `Path(Seat { room, seat })`. A destination whose parameters do not fit `T` fails the
/// message as bad input, saying which.
///
/// ```
/// use stomp_server::{App, Failure, Path};
///
/// #[derive(serde::Deserialize)]
/// struct Seat { room: String, seat: u32 }
///
/// async fn book(Path(seat): Path<Seat>) -> Result<String, Failure> {
///     Ok(format!("{} in {}", seat.seat, seat.room))
/// }
///
/// let app = App::new().message("/app/rooms/{room}/{seat}", book);
/// # drop(app);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Path<T>(pub T);

impl<S, T: DeserializeOwned> FromMessage<S> for Path<T> {
    fn from_message(context: &Context<S>, message: &Message) -> Result<Self, Failure> {
        T::deserialize(ParamsDeserializer(&context.source.params))
            .map(Path)
            .map_err(|e: de::value::Error| {
                Failure::bad_input(format!("destination {}: {e}", message.destination()))
            })
    }
}

/// Every parameter: a map by name, a sequence in order, or the one value there is.
struct ParamsDeserializer<'a>(&'a Params);

impl<'de> Deserializer<'de> for ParamsDeserializer<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0.as_slice() {
            [(_, value)] => Text(value).deserialize_any(visitor),
            _ => self.deserialize_map(visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let pairs = self.0.iter().map(|(n, v)| (n.as_str(), Text(v)));
        visitor.visit_map(MapDeserializer::new(pairs))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let values = self.0.iter().map(|(_, v)| Text(v));
        visitor.visit_seq(SeqDeserializer::new(values))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    lone! {
        deserialize_bool, deserialize_i8, deserialize_i16, deserialize_i32, deserialize_i64,
        deserialize_i128, deserialize_u8, deserialize_u16, deserialize_u32, deserialize_u64,
        deserialize_u128, deserialize_f32, deserialize_f64, deserialize_char, deserialize_str,
        deserialize_string, deserialize_option,
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.lone()?.deserialize_enum(name, variants, visitor)
    }

    forward_to_deserialize_any! {
        bytes byte_buf unit unit_struct identifier ignored_any
    }
}

impl<'a> ParamsDeserializer<'a> {
    /// The one parameter, for a lone value.
    fn lone(&self) -> Result<Text<'a>, de::value::Error> {
        match self.0.as_slice() {
            [(_, value)] => Ok(Text(value)),
            params => Err(de::Error::invalid_length(params.len(), &"one parameter")),
        }
    }
}

/// A lone value is read from the one parameter's text.
macro_rules! lone {
    ($($method:ident),+ $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                self.lone()?.$method(visitor)
            }
        )+
    };
}
use lone;

/// One parameter's text, read as whatever type is asked for.
#[derive(Clone, Copy)]
struct Text<'a>(&'a str);

impl<'de> IntoDeserializer<'de, de::value::Error> for Text<'_> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

/// Parses the text as the number or boolean asked for.
macro_rules! parsed {
    ($($method:ident => $visit:ident),+ $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                match self.0.parse() {
                    Ok(value) => visitor.$visit(value),
                    Err(_) => Err(de::Error::invalid_value(de::Unexpected::Str(self.0), &visitor)),
                }
            }
        )+
    };
}

impl<'de> Deserializer<'de> for Text<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_str(self.0)
    }

    parsed! {
        deserialize_bool => visit_bool,
        deserialize_i8 => visit_i8,
        deserialize_i16 => visit_i16,
        deserialize_i32 => visit_i32,
        deserialize_i64 => visit_i64,
        deserialize_i128 => visit_i128,
        deserialize_u8 => visit_u8,
        deserialize_u16 => visit_u16,
        deserialize_u32 => visit_u32,
        deserialize_u64 => visit_u64,
        deserialize_u128 => visit_u128,
        deserialize_f32 => visit_f32,
        deserialize_f64 => visit_f64,
        deserialize_char => visit_char,
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn read<T: DeserializeOwned>(pairs: &[(&str, &str)]) -> Result<T, de::value::Error> {
        T::deserialize(ParamsDeserializer(&params(pairs)))
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Seat {
        room: String,
        seat: u32,
        vip: Option<bool>,
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Public,
        Private,
    }

    #[test]
    fn structs_tuples_and_lone_values() {
        let seat: Seat = read(&[("room", "lobby"), ("seat", "12")]).unwrap();
        assert_eq!(
            seat,
            Seat {
                room: "lobby".into(),
                seat: 12,
                vip: None
            }
        );
        let pair: (String, u32) = read(&[("room", "lobby"), ("seat", "12")]).unwrap();
        assert_eq!(pair, ("lobby".to_owned(), 12));
        let room: String = read(&[("room", "lobby")]).unwrap();
        assert_eq!(room, "lobby");
        let seat: u64 = read(&[("seat", "7")]).unwrap();
        assert_eq!(seat, 7);
        let kind: Kind = read(&[("kind", "private")]).unwrap();
        assert_eq!(kind, Kind::Private);
        let map: std::collections::HashMap<String, String> =
            read(&[("a", "1"), ("b", "2")]).unwrap();
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn what_does_not_fit_says_why() {
        let error = read::<u32>(&[("seat", "twelve")]).unwrap_err();
        assert!(error.to_string().contains("twelve"), "{error}");
        let error = read::<Seat>(&[("room", "lobby")]).unwrap_err();
        assert!(error.to_string().contains("seat"), "{error}");
        assert!(read::<Kind>(&[("kind", "secret")]).is_err());
    }
}
