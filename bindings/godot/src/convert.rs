//! Godot values and zen-crdt values, both ways.
//!
//! The math builtins (`Vector2/3/4`, `Quaternion`, `Color`) are plain Rust in gdext and
//! convert without the engine, so they are unit-tested here; `real` is f32, or f64 under
//! Godot's `double-precision` builds, hence the casts. `Variant`, `GString` and
//! `PackedByteArray` need a running engine: `to_value` / `to_variant` are only reached
//! from the node.

use godot::builtin::{Color, Quaternion, Vector2, Vector3, Vector4};
use godot::prelude::*;
use zen_crdt::{Key, Value, ValueType};

// `real` may be f64 (double-precision builds); the wire carries f32.
#[allow(clippy::unnecessary_cast)]
fn f(x: real) -> f32 {
    x as f32
}

#[allow(clippy::unnecessary_cast)]
fn r(x: f32) -> real {
    x as real
}

pub fn from_vector2(v: Vector2) -> Value {
    Value::Vec2([f(v.x), f(v.y)])
}
pub fn from_vector3(v: Vector3) -> Value {
    Value::Vec3([f(v.x), f(v.y), f(v.z)])
}
pub fn from_vector4(v: Vector4) -> Value {
    Value::Vec4([f(v.x), f(v.y), f(v.z), f(v.w)])
}
pub fn from_quaternion(q: Quaternion) -> Value {
    Value::Quat([f(q.x), f(q.y), f(q.z), f(q.w)])
}
pub fn from_color(c: Color) -> Value {
    Value::Color([c.r, c.g, c.b, c.a])
}

/// A math value back as its Godot type: `None` for the types that need the engine
/// (bool, numbers and text go straight into a `Variant`).
pub enum Math {
    Vector2(Vector2),
    Vector3(Vector3),
    Vector4(Vector4),
    Quaternion(Quaternion),
    Color(Color),
}

pub fn to_math(v: &Value) -> Option<Math> {
    Some(match *v {
        Value::Vec2([x, y]) => Math::Vector2(Vector2::new(r(x), r(y))),
        Value::Vec3([x, y, z]) => Math::Vector3(Vector3::new(r(x), r(y), r(z))),
        Value::Vec4([x, y, z, w]) => Math::Vector4(Vector4::new(r(x), r(y), r(z), r(w))),
        Value::Quat([x, y, z, w]) => Math::Quaternion(Quaternion::new(r(x), r(y), r(z), r(w))),
        Value::Color([cr, cg, cb, ca]) => Math::Color(Color::from_rgba(cr, cg, cb, ca)),
        _ => return None,
    })
}

/// The zen-crdt type a Godot `Variant.Type` is stored as, or why it cannot be.
pub fn value_type_of(t: VariantType) -> Result<ValueType, String> {
    Ok(match t {
        VariantType::BOOL => ValueType::Bool,
        VariantType::INT => ValueType::I64,
        VariantType::FLOAT => ValueType::F64,
        VariantType::STRING | VariantType::STRING_NAME => ValueType::Str,
        VariantType::PACKED_BYTE_ARRAY => ValueType::Bytes,
        VariantType::VECTOR2 => ValueType::Vec2,
        VariantType::VECTOR3 => ValueType::Vec3,
        VariantType::VECTOR4 => ValueType::Vec4,
        VariantType::QUATERNION => ValueType::Quat,
        VariantType::COLOR => ValueType::Color,
        other => {
            return Err(format!(
                "zen-crdt stores bool, int, float, String, StringName, PackedByteArray, Vector2, Vector3, \
                 Vector4, Quaternion and Color; not {other:?}"
            ))
        }
    })
}

/// A Variant as a zen-crdt value (engine needed).
pub fn to_value(v: &Variant) -> Result<Value, String> {
    let t = v.get_type();
    value_type_of(t)?;
    let bad = |e| format!("cannot read the {t:?}: {e:?}");
    Ok(match t {
        VariantType::BOOL => Value::Bool(v.try_to::<bool>().map_err(bad)?),
        VariantType::INT => Value::I64(v.try_to::<i64>().map_err(bad)?),
        VariantType::FLOAT => Value::F64(v.try_to::<f64>().map_err(bad)?),
        VariantType::STRING => Value::Str(v.try_to::<GString>().map_err(bad)?.to_string()),
        VariantType::STRING_NAME => Value::Str(v.try_to::<StringName>().map_err(bad)?.to_string()),
        VariantType::PACKED_BYTE_ARRAY => Value::Bytes(v.try_to::<PackedByteArray>().map_err(bad)?.to_vec()),
        VariantType::VECTOR2 => from_vector2(v.try_to::<Vector2>().map_err(bad)?),
        VariantType::VECTOR3 => from_vector3(v.try_to::<Vector3>().map_err(bad)?),
        VariantType::VECTOR4 => from_vector4(v.try_to::<Vector4>().map_err(bad)?),
        VariantType::QUATERNION => from_quaternion(v.try_to::<Quaternion>().map_err(bad)?),
        _ => from_color(v.try_to::<Color>().map_err(bad)?),
    })
}

/// A table key from a Variant (engine needed): an int, or a String / StringName.
pub fn to_key(v: &Variant) -> Result<Key, String> {
    let t = v.get_type();
    let bad = |e| format!("cannot read the {t:?} key: {e:?}");
    match t {
        VariantType::INT => Ok(Key::Int(v.try_to::<i64>().map_err(bad)?)),
        VariantType::STRING => Ok(Key::Str(v.try_to::<GString>().map_err(bad)?.to_string())),
        VariantType::STRING_NAME => Ok(Key::Str(v.try_to::<StringName>().map_err(bad)?.to_string())),
        other => Err(format!("a table key is an int or a String, not {other:?}")),
    }
}

/// A table key as a Variant (engine needed): an int or a String.
pub fn key_variant(k: &Key) -> Variant {
    match k {
        Key::Int(n) => n.to_variant(),
        Key::Str(s) => GString::from(s.as_str()).to_variant(),
    }
}

/// A zen-crdt value as a Variant (engine needed); `None` (no value) is `null`.
pub fn to_variant(v: Option<&Value>) -> Variant {
    let Some(v) = v else { return Variant::nil() };
    if let Some(m) = to_math(v) {
        return match m {
            Math::Vector2(x) => x.to_variant(),
            Math::Vector3(x) => x.to_variant(),
            Math::Vector4(x) => x.to_variant(),
            Math::Quaternion(x) => x.to_variant(),
            Math::Color(x) => x.to_variant(),
        };
    }
    match v {
        Value::Bool(b) => b.to_variant(),
        Value::I64(i) => i.to_variant(),
        Value::F64(x) => x.to_variant(),
        Value::Str(s) => GString::from(s.as_str()).to_variant(),
        Value::Bytes(b) => PackedByteArray::from(b.as_slice()).to_variant(),
        _ => Variant::nil(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn math_builtins_round_trip_without_the_engine() {
        let v3 = Vector3::new(1.5, -2.0, 3.25);
        assert_eq!(from_vector3(v3), Value::Vec3([1.5, -2.0, 3.25]));
        assert!(matches!(to_math(&from_vector3(v3)), Some(Math::Vector3(x)) if x == v3));
        let v2 = Vector2::new(0.5, 4.0);
        assert!(matches!(to_math(&from_vector2(v2)), Some(Math::Vector2(x)) if x == v2));
        let v4 = Vector4::new(1.0, 2.0, 3.0, 4.0);
        assert!(matches!(to_math(&from_vector4(v4)), Some(Math::Vector4(x)) if x == v4));
        let q = Quaternion::new(0.0, 0.70710677, 0.0, 0.70710677);
        assert_eq!(from_quaternion(q), Value::Quat([0.0, 0.70710677, 0.0, 0.70710677]));
        assert!(matches!(to_math(&from_quaternion(q)), Some(Math::Quaternion(x)) if x == q));
        let c = Color::from_rgba(1.0, 0.5, 0.25, 1.0);
        assert!(matches!(to_math(&from_color(c)), Some(Math::Color(x)) if x == c));
        assert!(to_math(&Value::I64(3)).is_none());
    }

    #[test]
    fn variant_types_map_to_zen_types_and_the_rest_is_refused_with_a_reason() {
        assert_eq!(value_type_of(VariantType::QUATERNION), Ok(ValueType::Quat));
        assert_eq!(value_type_of(VariantType::STRING_NAME), Ok(ValueType::Str));
        assert_eq!(value_type_of(VariantType::PACKED_BYTE_ARRAY), Ok(ValueType::Bytes));
        let err = value_type_of(VariantType::DICTIONARY).unwrap_err();
        assert!(err.contains("DICTIONARY") && err.contains("Quaternion"), "{err}");
        assert!(value_type_of(VariantType::OBJECT).is_err());
        assert!(value_type_of(VariantType::TRANSFORM3D).is_err());
    }
}
