//! A serde `Deserializer` that reads from a borrowed `Value`.

use serde::de::value::{
    BorrowedStrDeserializer, MapAccessDeserializer, MapDeserializer, SeqDeserializer,
};
use serde::de::{self, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

use crate::{Value, ValueError};

#[derive(Clone, Copy)]
pub(super) struct ValueDeserializer<'de>(pub(super) &'de Value);

impl<'de> IntoDeserializer<'de, ValueError> for ValueDeserializer<'de> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

fn visit_array<'de, V: Visitor<'de>>(
    items: &'de [Value],
    visitor: V,
) -> Result<V::Value, ValueError> {
    let mut seq = SeqDeserializer::new(items.iter().map(ValueDeserializer));
    let out = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(out)
}

fn visit_byte_array<'de, V: Visitor<'de>>(
    bytes: &'de [u8],
    visitor: V,
) -> Result<V::Value, ValueError> {
    let mut seq = SeqDeserializer::new(bytes.iter().copied());
    let out = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(out)
}

fn map_access<'de>(
    fields: &'de crate::Object,
) -> MapDeserializer<
    'de,
    impl Iterator<
        Item = (
            BorrowedStrDeserializer<'de, ValueError>,
            ValueDeserializer<'de>,
        ),
    >,
    ValueError,
> {
    MapDeserializer::new(fields.iter().map(|(k, v)| {
        (
            BorrowedStrDeserializer::new(k.as_str()),
            ValueDeserializer(v),
        )
    }))
}

/// An integral float64 as i64, if it is exactly one. JS clients send every number as float64, so an
/// integer field in a domain struct has to accept `5` arriving as `5.0`.
fn integral(f: f64) -> Option<i64> {
    // 2^63 is exactly representable, so the range check is exact.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f)).then_some(f as i64)
}

macro_rules! lenient_integer {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
                match self.0 {
                    Value::Float64(f) => match integral(*f) {
                        Some(i) => visitor.visit_i64(i),
                        None => visitor.visit_f64(*f),
                    },
                    _ => self.deserialize_any(visitor),
                }
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for ValueDeserializer<'de> {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Int64(i) => visitor.visit_i64(*i),
            Value::Float64(f) => visitor.visit_f64(*f),
            Value::Boolean(b) => visitor.visit_bool(*b),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Bytes(b) => visitor.visit_borrowed_bytes(b),
            Value::Array(items) => visit_array(items, visitor),
            Value::Object(fields) => {
                let mut map = map_access(fields);
                let out = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(out)
            }
        }
    }

    lenient_integer! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    /// A plain `Vec<u8>` asks for a sequence; give it the bytes of a bytes value.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::Bytes(b) => visit_byte_array(b, visitor),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    /// Externally tagged: a unit variant is `"Name"`, any other is `{"Name": content}`.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(BorrowedStrDeserializer::new(s.as_str())),
            Value::Object(fields) if fields.len() == 1 => {
                visitor.visit_enum(MapAccessDeserializer::new(map_access(fields)))
            }
            other => Err(ValueError::Invalid(format!(
                "Expected enum {name} as a string or an object with one field, found {}",
                other.type_name()
            ))),
        }
    }

    forward_to_deserialize_any! {
        bool f32 f64 char str string bytes byte_buf unit unit_struct
        tuple_struct map struct identifier ignored_any
    }
}
