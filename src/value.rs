//! Typed values a game replicates, and their compact binary payload.
//!
//! Owns the closed set of value types, the `Value` enum and the payload codec that the
//! storage layer puts inside yrs. It must never know about peers, modes or the network.
//! Vector and color types are `f32` per component, as games store them and as they
//! travel on the wire.

/// The type of a value, fixed when the value is created; stored with the value so every
/// peer decodes it the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ValueType {
    Bool = 1,
    I64 = 2,
    F64 = 3,
    Str = 4,
    Bytes = 5,
    Vec2 = 6,
    Vec3 = 7,
    /// Four components (x, y, z, w) with no meaning beyond that.
    Vec4 = 8,
    /// RGBA, each component normally 0.0..=1.0 (not clamped).
    Color = 9,
    /// A rotation as a quaternion (x, y, z, w): the payload of `Vec4`, its own type so
    /// every peer knows it is a rotation (TakeAverage averages rotations, Max and Min
    /// are refused). Not normalised on write: what is written is what is read.
    Quat = 10,
}

impl ValueType {
    pub fn from_u8(tag: u8) -> Option<ValueType> {
        Some(match tag {
            1 => ValueType::Bool,
            2 => ValueType::I64,
            3 => ValueType::F64,
            4 => ValueType::Str,
            5 => ValueType::Bytes,
            6 => ValueType::Vec2,
            7 => ValueType::Vec3,
            8 => ValueType::Vec4,
            9 => ValueType::Color,
            10 => ValueType::Quat,
            _ => return None,
        })
    }

    /// Whether `TakeAverage` can combine values of this type.
    pub fn is_numeric(self) -> bool {
        !matches!(self, ValueType::Bool | ValueType::Str | ValueType::Bytes)
    }

    /// The value every register of this type holds before anything was written.
    pub fn zero(self) -> Value {
        match self {
            ValueType::Bool => Value::Bool(false),
            ValueType::I64 => Value::I64(0),
            ValueType::F64 => Value::F64(0.0),
            ValueType::Str => Value::Str(String::new()),
            ValueType::Bytes => Value::Bytes(Vec::new()),
            ValueType::Vec2 => Value::Vec2([0.0; 2]),
            ValueType::Vec3 => Value::Vec3([0.0; 3]),
            ValueType::Vec4 => Value::Vec4([0.0; 4]),
            ValueType::Color => Value::Color([0.0; 4]),
            // The identity rotation, so a never-written rotation is usable as one.
            ValueType::Quat => Value::Quat([0.0, 0.0, 0.0, 1.0]),
        }
    }
}

/// One typed value. Strings are UTF-8; bytes are opaque.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    I64(i64),
    F64(f64),
    Str(String),
    Bytes(Vec<u8>),
    Vec2([f32; 2]),
    Vec3([f32; 3]),
    Vec4([f32; 4]),
    Color([f32; 4]),
    /// A rotation (x, y, z, w); see `ValueType::Quat`.
    Quat([f32; 4]),
}

impl Value {
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Bool(_) => ValueType::Bool,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
            Value::Str(_) => ValueType::Str,
            Value::Bytes(_) => ValueType::Bytes,
            Value::Vec2(_) => ValueType::Vec2,
            Value::Vec3(_) => ValueType::Vec3,
            Value::Vec4(_) => ValueType::Vec4,
            Value::Color(_) => ValueType::Color,
            Value::Quat(_) => ValueType::Quat,
        }
    }

    /// Float components of vector-like values (vectors, color, quaternion), `None`
    /// otherwise.
    pub fn components(&self) -> Option<&[f32]> {
        match self {
            Value::Vec2(v) => Some(v),
            Value::Vec3(v) => Some(v),
            Value::Vec4(v) | Value::Color(v) | Value::Quat(v) => Some(v),
            _ => None,
        }
    }

    /// Bitwise equality: the notion peers use to decide whether two replicas agree
    /// (NaN equals NaN with the same bits, 0.0 differs from -0.0).
    pub fn same_bits(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::F64(a), Value::F64(b)) => a.to_bits() == b.to_bits(),
            (a, b) if a.components().is_some() => {
                let (x, y) = (a.components().unwrap_or(&[]), b.components().unwrap_or(&[]));
                a.value_type() == b.value_type() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
            }
            (a, b) => a == b,
        }
    }

    /// Appends the payload (without type tag) to `out`.
    pub(crate) fn encode_payload(&self, out: &mut Vec<u8>) {
        match self {
            Value::Bool(b) => out.push(*b as u8),
            Value::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::Str(s) => out.extend_from_slice(s.as_bytes()),
            Value::Bytes(b) => out.extend_from_slice(b),
            Value::Vec2(v) => v.iter().for_each(|c| out.extend_from_slice(&c.to_le_bytes())),
            Value::Vec3(v) => v.iter().for_each(|c| out.extend_from_slice(&c.to_le_bytes())),
            Value::Vec4(v) | Value::Color(v) | Value::Quat(v) => {
                v.iter().for_each(|c| out.extend_from_slice(&c.to_le_bytes()))
            }
        }
    }

    /// Decodes a payload of type `ty` that fills all of `buf`.
    /// The value a payload of type `ty` holds; the error says what is wrong with it.
    pub(crate) fn decode_payload(ty: ValueType, buf: &[u8]) -> Result<Value, String> {
        let bad = || format!("{ty:?} payload of {} bytes is malformed", buf.len());
        fn floats<const N: usize>(buf: &[u8]) -> Option<[f32; N]> {
            if buf.len() != N * 4 {
                return None;
            }
            let mut v = [0f32; N];
            for (i, c) in buf.chunks_exact(4).enumerate() {
                v[i] = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
            Some(v)
        }
        Ok(match ty {
            ValueType::Bool => match buf {
                [0] => Value::Bool(false),
                [1] => Value::Bool(true),
                _ => return Err(bad()),
            },
            ValueType::I64 => Value::I64(i64::from_le_bytes(buf.try_into().map_err(|_| bad())?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(buf.try_into().map_err(|_| bad())?)),
            ValueType::Str => Value::Str(
                std::str::from_utf8(buf).map_err(|_| "string payload is not UTF-8".to_string())?.to_owned(),
            ),
            ValueType::Bytes => Value::Bytes(buf.to_vec()),
            ValueType::Vec2 => Value::Vec2(floats::<2>(buf).ok_or_else(bad)?),
            ValueType::Vec3 => Value::Vec3(floats::<3>(buf).ok_or_else(bad)?),
            ValueType::Vec4 => Value::Vec4(floats::<4>(buf).ok_or_else(bad)?),
            ValueType::Color => Value::Color(floats::<4>(buf).ok_or_else(bad)?),
            ValueType::Quat => Value::Quat(floats::<4>(buf).ok_or_else(bad)?),
        })
    }
}

macro_rules! value_from {
    ($($t:ty => $v:ident),*) => { $(impl From<$t> for Value { fn from(x: $t) -> Self { Value::$v(x.into()) } })* };
}
value_from!(bool => Bool, i64 => I64, f64 => F64, String => Str, &str => Str, Vec<u8> => Bytes, [f32; 2] => Vec2, [f32; 3] => Vec3);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_roundtrip_every_type() {
        let all = [
            Value::Bool(true),
            Value::I64(-7),
            Value::F64(1.5),
            Value::Str("héllo".into()),
            Value::Bytes(vec![0, 255]),
            Value::Vec2([1.0, 2.0]),
            Value::Vec3([1.0, 2.0, 3.0]),
            Value::Vec4([1.0, 2.0, 3.0, 4.0]),
            Value::Color([0.1, 0.2, 0.3, 1.0]),
            Value::Quat([0.0, 0.0, 0.70710677, 0.70710677]),
        ];
        for v in all {
            let mut buf = Vec::new();
            v.encode_payload(&mut buf);
            assert!(Value::decode_payload(v.value_type(), &buf).unwrap().same_bits(&v));
        }
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert!(Value::decode_payload(ValueType::Vec3, &[0; 11]).is_err());
        assert!(Value::decode_payload(ValueType::Bool, &[2]).is_err());
        assert!(Value::decode_payload(ValueType::Str, &[0xff, 0xfe]).is_err());
        assert!(Value::decode_payload(ValueType::I64, &[1, 2]).is_err());
    }
}
