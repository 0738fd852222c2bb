//! A serde `Serializer` whose output is a `Value`.

use serde::ser::{self, Serialize};

use crate::json::check_field_name;
use crate::{Object, Value, ValueError};

/// `field` is set while serializing a struct field, where `None` means "leave the field out" (JS
/// `undefined`), as `v.optional(...)` expects; elsewhere `None` is null.
#[derive(Clone, Copy, Default)]
pub(super) struct ValueSerializer {
    pub(super) field: bool,
}

/// What serializing a struct field's `None` returns: not a failure, a signal to leave it out.
pub(super) const ABSENT: &str = "\u{0}absent";

fn number<T: Into<f64>>(n: T) -> Result<Value, ValueError> {
    Ok(Value::Float64(n.into()))
}

/// Integers other than `i64` are JS numbers; those too large for an f64 to hold exactly are refused
/// rather than rounded.
fn wide_number<T: TryInto<i64> + std::fmt::Display + Copy>(n: T) -> Result<Value, ValueError> {
    const EXACT: i64 = 1 << 53;
    match n.try_into() {
        Ok(i) if (-EXACT..=EXACT).contains(&i) => Ok(Value::Float64(i as f64)),
        _ => Err(ValueError::Invalid(format!(
            "Integer {n} is too large for a number; use i64 for an int64"
        ))),
    }
}

fn int<T: TryInto<i64> + std::fmt::Display + Copy>(n: T) -> Result<Value, ValueError> {
    n.try_into()
        .map(Value::Int64)
        .map_err(|_| ValueError::Invalid(format!("Integer {n} does not fit in an int64")))
}

/// `{variant: inner}`, serde's externally tagged enum form.
fn tagged(variant: &str, inner: Value) -> Value {
    Value::Object(Object::from([(variant.to_owned(), inner)]))
}

/// Map keys must end up as strings; integer keys are written in decimal as `serde_json` does.
fn key_to_string(key: Value) -> Result<String, ValueError> {
    let name = match key {
        Value::String(s) => s,
        Value::Int64(i) => i.to_string(),
        Value::Float64(f) if f.fract() == 0.0 && f.abs() <= (1u64 << 53) as f64 => {
            format!("{f:.0}")
        }
        other => {
            return Err(ValueError::Invalid(format!(
                "Object keys must be strings, found {}",
                other.type_name()
            )))
        }
    };
    check_field_name(&name)?;
    Ok(name)
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = ValueError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = SeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = MapBuilder;

    fn serialize_bool(self, v: bool) -> Result<Value, ValueError> {
        Ok(Value::Boolean(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, ValueError> {
        number(v)
    }
    fn serialize_i16(self, v: i16) -> Result<Value, ValueError> {
        number(v)
    }
    fn serialize_i32(self, v: i32) -> Result<Value, ValueError> {
        number(v)
    }
    fn serialize_i64(self, v: i64) -> Result<Value, ValueError> {
        int(v)
    }
    fn serialize_i128(self, v: i128) -> Result<Value, ValueError> {
        int(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Value, ValueError> {
        number(v)
    }
    fn serialize_u16(self, v: u16) -> Result<Value, ValueError> {
        number(v)
    }
    fn serialize_u32(self, v: u32) -> Result<Value, ValueError> {
        number(v)
    }
    fn serialize_u64(self, v: u64) -> Result<Value, ValueError> {
        wide_number(v)
    }
    fn serialize_u128(self, v: u128) -> Result<Value, ValueError> {
        int(v)
    }
    fn serialize_f32(self, v: f32) -> Result<Value, ValueError> {
        Ok(Value::Float64(f64::from(v)))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, ValueError> {
        Ok(Value::Float64(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, ValueError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, ValueError> {
        Ok(Value::String(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, ValueError> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Value, ValueError> {
        if self.field {
            return Err(ValueError::Invalid(ABSENT.to_owned()));
        }
        Ok(Value::Null)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<Value, ValueError> {
        value.serialize(ValueSerializer::default())
    }
    fn serialize_unit(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, ValueError> {
        Ok(Value::String(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        Ok(tagged(
            variant,
            value.serialize(ValueSerializer::default())?,
        ))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, ValueError> {
        Ok(SeqBuilder {
            variant: None,
            items: Vec::with_capacity(len.unwrap_or(0)),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, ValueError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, ValueError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, ValueError> {
        Ok(SeqBuilder {
            variant: Some(variant),
            items: Vec::with_capacity(len),
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapBuilder, ValueError> {
        Ok(MapBuilder {
            variant: None,
            fields: Object::new(),
            next_key: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<MapBuilder, ValueError> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<MapBuilder, ValueError> {
        Ok(MapBuilder {
            variant: Some(variant),
            fields: Object::new(),
            next_key: None,
        })
    }
}

/// Collects sequence items; `variant` is set for tuple variants, which wrap the array in `{variant: [...]}`.
pub(super) struct SeqBuilder {
    variant: Option<&'static str>,
    items: Vec<Value>,
}

impl SeqBuilder {
    fn push<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        self.items
            .push(value.serialize(ValueSerializer::default())?);
        Ok(())
    }
    fn finish(self) -> Value {
        let array = Value::Array(self.items);
        match self.variant {
            Some(variant) => tagged(variant, array),
            None => array,
        }
    }
}

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleVariant for SeqBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

/// Collects object fields; `variant` is set for struct variants, which wrap the object in `{variant: {...}}`.
pub(super) struct MapBuilder {
    variant: Option<&'static str>,
    fields: Object,
    next_key: Option<String>,
}

impl MapBuilder {
    /// A field or map entry: left out when it is a `None`.
    fn insert_field<T: ?Sized + Serialize>(
        &mut self,
        name: String,
        value: &T,
    ) -> Result<(), ValueError> {
        match value.serialize(ValueSerializer { field: true }) {
            Ok(value) => {
                self.fields.insert(name, value);
                Ok(())
            }
            Err(ValueError::Invalid(signal)) if signal == ABSENT => Ok(()),
            Err(e) => Err(e),
        }
    }
    fn finish(self) -> Value {
        let object = Value::Object(self.fields);
        match self.variant {
            Some(variant) => tagged(variant, object),
            None => object,
        }
    }
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), ValueError> {
        self.next_key = Some(key_to_string(key.serialize(ValueSerializer::default())?)?);
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        let name = self.next_key.take().ok_or_else(|| {
            ValueError::Invalid("serialize_value called before serialize_key".into())
        })?;
        // Map entries too: flattened struct fields arrive here.
        self.insert_field(name, value)
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        check_field_name(key)?;
        self.insert_field(key.to_owned(), value)
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for MapBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        check_field_name(key)?;
        self.insert_field(key.to_owned(), value)
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}
