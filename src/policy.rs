//! Correction policies: how a value's concurrent writes become one value.
//!
//! Owns the policy enum, its wire code and the merge of concurrent candidates. A merge
//! sees the candidates sorted by writer id and must be a pure function of them, so every
//! peer that holds the same writes computes the same value. It never decides *which*
//! writes are concurrent: that is the register's job.

use crate::error::Error;
use crate::value::{Value, ValueType};
use std::cmp::Ordering;
use std::sync::Arc;

/// How concurrent writes to one value are resolved. Writes that saw each other are never
/// merged: the later one simply wins, whatever the policy.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Policy {
    /// The write with the highest logical clock wins; ties go to the higher peer id.
    #[default]
    LastWriterWins,
    /// The largest value wins (numbers; strings and bytes lexicographically; vectors
    /// and colors component-wise; `true` over `false`). Not for quaternions: the
    /// component-wise largest of two rotations is not a rotation of either.
    Max,
    /// The smallest value wins, ordered as for `Max`.
    Min,
    /// The mean of the concurrent writes (integers round toward negative infinity;
    /// vectors and colors component-wise; quaternions as rotations: each normalised and
    /// moved to the hemisphere of the lowest writer's, summed, normalised). Numeric,
    /// vector and quaternion types only.
    TakeAverage,
    /// A host merge function registered under this name with
    /// [`crate::Context::register_merge`] on every peer.
    Custom(Arc<str>),
}

/// One concurrent write offered to a merge.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// Peer that wrote it.
    pub writer: u64,
    /// Logical clock of the write (higher saw more history).
    pub clock: u64,
    pub value: &'a Value,
}

/// A host merge function. It receives at least two candidates sorted by writer id and
/// returns a value of the same type, deterministically (no clocks, no randomness, no
/// state), or every peer ends up with a different value. `None` (or a value of another
/// type) means it cannot merge these: last-writer-wins decides instead, on every peer
/// alike. Called on the thread that runs `tick`.
pub type MergeFn = Arc<dyn Fn(&[Candidate<'_>]) -> Option<Value> + Send + Sync>;

impl Policy {
    pub fn name(&self) -> &'static str {
        match self {
            Policy::LastWriterWins => "LastWriterWins",
            Policy::Max => "Max",
            Policy::Min => "Min",
            Policy::TakeAverage => "TakeAverage",
            Policy::Custom(_) => "Custom",
        }
    }

    /// Checks that this policy can combine values of `ty`.
    pub fn check(&self, ty: ValueType) -> Result<(), Error> {
        let refused = match self {
            Policy::TakeAverage => !ty.is_numeric(),
            Policy::Max | Policy::Min => ty == ValueType::Quat,
            _ => false,
        };
        if refused {
            return Err(Error::PolicyNotSupported { policy: self.name(), ty });
        }
        Ok(())
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Policy::LastWriterWins => out.push(0),
            Policy::Max => out.push(1),
            Policy::Min => out.push(2),
            Policy::TakeAverage => out.push(3),
            Policy::Custom(name) => {
                out.push(4);
                out.extend_from_slice(name.as_bytes());
            }
        }
    }

    pub(crate) fn decode(buf: &[u8]) -> Option<Policy> {
        Some(match buf.split_first()? {
            (0, []) => Policy::LastWriterWins,
            (1, []) => Policy::Max,
            (2, []) => Policy::Min,
            (3, []) => Policy::TakeAverage,
            (4, name) => Policy::Custom(Arc::from(std::str::from_utf8(name).ok()?)),
            _ => return None,
        })
    }
}

/// Total order used by Max and Min. Floats use IEEE total order so NaN cannot make two
/// peers disagree.
fn order(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::I64(x), Value::I64(y)) => x.cmp(y),
        (Value::F64(x), Value::F64(y)) => x.total_cmp(y),
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

fn componentwise(cands: &[Candidate], pick: impl Fn(f32, f32) -> f32) -> Option<Value> {
    let first = cands[0].value;
    let mut acc: Vec<f32> = first.components()?.to_vec();
    for c in &cands[1..] {
        for (a, b) in acc.iter_mut().zip(c.value.components()?) {
            *a = pick(*a, *b);
        }
    }
    Some(with_components(first, &acc))
}

fn with_components(like: &Value, c: &[f32]) -> Value {
    match like {
        Value::Vec2(_) => Value::Vec2([c[0], c[1]]),
        Value::Vec3(_) => Value::Vec3([c[0], c[1], c[2]]),
        Value::Vec4(_) => Value::Vec4([c[0], c[1], c[2], c[3]]),
        Value::Quat(_) => Value::Quat([c[0], c[1], c[2], c[3]]),
        _ => Value::Color([c[0], c[1], c[2], c[3]]),
    }
}

fn f32_max(a: f32, b: f32) -> f32 {
    if b.total_cmp(&a) == Ordering::Greater {
        b
    } else {
        a
    }
}

fn f32_min(a: f32, b: f32) -> f32 {
    if b.total_cmp(&a) == Ordering::Less {
        b
    } else {
        a
    }
}

/// LWW winner: highest clock, then highest writer id.
pub(crate) fn lww<'a>(cands: &[Candidate<'a>]) -> &'a Value {
    cands.iter().max_by_key(|c| (c.clock, c.writer)).map(|c| c.value).expect("non-empty")
}

/// Merges at least one candidate, all of one type, sorted by writer. `custom` is the
/// registered function for `Policy::Custom`, if any; a missing or misbehaving custom
/// merge falls back to LWW (the caller counts it).
pub(crate) fn merge(policy: &Policy, cands: &[Candidate], custom: Option<&MergeFn>) -> (Value, bool) {
    if cands.len() == 1 {
        return (cands[0].value.clone(), true);
    }
    let ty = cands[0].value.value_type();
    let merged = match policy {
        Policy::LastWriterWins => Some(lww(cands).clone()),
        // Refused at creation (`check`); a peer's stored policy could still say so.
        Policy::Max | Policy::Min if ty == ValueType::Quat => None,
        Policy::Max if cands[0].value.components().is_some() => componentwise(cands, f32_max),
        Policy::Min if cands[0].value.components().is_some() => componentwise(cands, f32_min),
        Policy::Max => cands.iter().map(|c| c.value).max_by(|a, b| order(a, b)).cloned(),
        Policy::Min => cands.iter().map(|c| c.value).min_by(|a, b| order(a, b)).cloned(),
        Policy::TakeAverage => average(cands),
        Policy::Custom(_) => custom
            .and_then(|f| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(cands))).ok().flatten())
            .filter(|v| v.value_type() == ty),
    };
    match merged {
        Some(v) => (v, true),
        None => (lww(cands).clone(), false),
    }
}

fn average(cands: &[Candidate]) -> Option<Value> {
    let n = cands.len();
    match cands[0].value {
        Value::Quat(_) => rotation_average(cands),
        Value::I64(_) => {
            let sum: i128 =
                cands.iter().map(|c| if let Value::I64(v) = c.value { *v as i128 } else { 0 }).sum();
            Some(Value::I64(sum.div_euclid(n as i128) as i64))
        }
        Value::F64(_) => {
            // Summed in writer order, so every peer rounds identically.
            let sum: f64 = cands.iter().map(|c| if let Value::F64(v) = c.value { *v } else { 0.0 }).sum();
            Some(Value::F64(sum / n as f64))
        }
        v if v.components().is_some() => {
            let mut acc = vec![0f64; v.components()?.len()];
            for c in cands {
                for (a, x) in acc.iter_mut().zip(c.value.components()?) {
                    *a += *x as f64;
                }
            }
            let mean: Vec<f32> = acc.iter().map(|a| (a / n as f64) as f32).collect();
            Some(with_components(v, &mean))
        }
        _ => None,
    }
}

/// The mean rotation of quaternion candidates: each is normalised and, since `q` and
/// `-q` are the same rotation, flipped into the hemisphere of the first (lowest writer),
/// so the sum does not cancel; the normalised sum is the rotation that minimises the
/// chordal distance to all of them (the exact midpoint for two). Summed in f64 in writer
/// order so every peer rounds alike. `None` (LWW decides) if a candidate has no
/// direction (zero or not finite) or the sum vanishes.
fn rotation_average(cands: &[Candidate]) -> Option<Value> {
    let unit = |v: &Value| -> Option<[f64; 4]> {
        let c = v.components()?;
        let q = [c[0] as f64, c[1] as f64, c[2] as f64, c[3] as f64];
        let norm = q.iter().map(|x| x * x).sum::<f64>().sqrt();
        (norm.is_finite() && norm > 1e-12).then(|| q.map(|x| x / norm))
    };
    let reference = unit(cands[0].value)?;
    let mut sum = [0f64; 4];
    for c in cands {
        let q = unit(c.value)?;
        let dot: f64 = q.iter().zip(&reference).map(|(a, b)| a * b).sum();
        let sign = if dot < 0.0 { -1.0 } else { 1.0 };
        for (s, x) in sum.iter_mut().zip(q) {
            *s += sign * x;
        }
    }
    let norm = sum.iter().map(|x| x * x).sum::<f64>().sqrt();
    if !(norm.is_finite() && norm > 1e-12) {
        return None;
    }
    Some(Value::Quat(sum.map(|x| (x / norm) as f32)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(vals: &[Value]) -> Vec<Candidate<'_>> {
        vals.iter()
            .enumerate()
            .map(|(i, v)| Candidate { writer: i as u64 + 1, clock: 10 - i as u64, value: v })
            .collect()
    }

    #[test]
    fn each_policy_merges_as_documented() {
        let ints = [Value::I64(3), Value::I64(-4)];
        let c = cands(&ints);
        assert_eq!(merge(&Policy::LastWriterWins, &c, None).0, Value::I64(3));
        assert_eq!(merge(&Policy::Max, &c, None).0, Value::I64(3));
        assert_eq!(merge(&Policy::Min, &c, None).0, Value::I64(-4));
        assert_eq!(merge(&Policy::TakeAverage, &c, None).0, Value::I64(-1));
        let vecs = [Value::Vec3([0.0, 4.0, 1.0]), Value::Vec3([2.0, 0.0, 1.0])];
        let c = cands(&vecs);
        assert_eq!(merge(&Policy::TakeAverage, &c, None).0, Value::Vec3([1.0, 2.0, 1.0]));
        assert_eq!(merge(&Policy::Max, &c, None).0, Value::Vec3([2.0, 4.0, 1.0]));
        assert_eq!(merge(&Policy::Min, &c, None).0, Value::Vec3([0.0, 0.0, 1.0]));
    }

    /// A rotation of `deg` degrees about the unit axis `axis`, as (x, y, z, w).
    fn rot(axis: [f64; 3], deg: f64) -> Value {
        let h = deg.to_radians() / 2.0;
        let (s, c) = h.sin_cos();
        Value::Quat([(axis[0] * s) as f32, (axis[1] * s) as f32, (axis[2] * s) as f32, c as f32])
    }

    fn close(a: &Value, b: &Value) -> bool {
        let (x, y) = (a.components().unwrap(), b.components().unwrap());
        // q and -q are the same rotation.
        let d = x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
        let e = x.iter().zip(y).map(|(p, q)| (p + q).abs()).fold(0f32, f32::max);
        a.value_type() == b.value_type() && d.min(e) < 1e-5
    }

    #[test]
    fn take_average_of_quaternions_is_a_rotation_average() {
        let z = [0.0, 0.0, 1.0];
        let avg = |vals: &[Value]| merge(&Policy::TakeAverage, &cands(vals), None);
        // Identity and 90 degrees about Z: 45 degrees about Z.
        let (v, ok) = avg(&[rot(z, 0.0), rot(z, 90.0)]);
        assert!(ok && close(&v, &rot(z, 45.0)), "{v:?}");
        // 10 and 50 degrees about X: 30 degrees about X.
        let x = [1.0, 0.0, 0.0];
        assert!(close(&avg(&[rot(x, 10.0), rot(x, 50.0)]).0, &rot(x, 30.0)));
        // The same rotation written as q and -q averages to itself, not to zero.
        let q = rot([0.0, 1.0, 0.0], 70.0);
        let neg =
            Value::Quat(q.components().unwrap().iter().map(|c| -c).collect::<Vec<_>>().try_into().unwrap());
        assert!(close(&avg(&[q.clone(), neg.clone()]).0, &q));
        // Hemisphere alignment: averaging with -q2 is averaging with q2.
        let (q1, q2) = (rot(z, 20.0), rot(z, 80.0));
        let neg2 =
            Value::Quat(q2.components().unwrap().iter().map(|c| -c).collect::<Vec<_>>().try_into().unwrap());
        assert!(close(&avg(&[q1.clone(), neg2]).0, &rot(z, 50.0)));
        // Unnormalised input counts by direction only: 2 * identity and 90 about Z.
        let (v, _) = avg(&[Value::Quat([0.0, 0.0, 0.0, 2.0]), rot(z, 90.0)]);
        assert!(close(&v, &rot(z, 45.0)), "{v:?}");
        // The result is a unit quaternion.
        let (v, _) = avg(&[rot(x, 33.0), rot(z, 71.0), rot([0.0, 1.0, 0.0], 150.0)]);
        let n: f32 = v.components().unwrap().iter().map(|c| c * c).sum();
        assert!((n - 1.0).abs() < 1e-5);
        // A zero quaternion has no direction: last-writer-wins decides, counted.
        let (v, ok) = avg(&[Value::Quat([0.0; 4]), rot(z, 90.0)]);
        assert!(!ok && v == Value::Quat([0.0; 4]), "LWW picks the higher clock (writer 1 here)");
    }

    #[test]
    fn max_and_min_are_refused_for_quaternions() {
        assert_eq!(
            Policy::Max.check(ValueType::Quat),
            Err(Error::PolicyNotSupported { policy: "Max", ty: ValueType::Quat })
        );
        assert!(Policy::Min.check(ValueType::Quat).is_err());
        assert!(Policy::TakeAverage.check(ValueType::Quat).is_ok());
        assert!(Policy::Max.check(ValueType::Vec4).is_ok());
        // A stored policy that says Max anyway (an older or hostile peer) falls back to LWW.
        let vals = [rot([0.0, 0.0, 1.0], 10.0), rot([0.0, 0.0, 1.0], 20.0)];
        let (v, ok) = merge(&Policy::Max, &cands(&vals), None);
        assert!(!ok && v == vals[0]);
    }

    #[test]
    fn custom_merge_wrong_type_falls_back_to_lww() {
        let vals = [Value::I64(1), Value::I64(2)];
        let f: MergeFn = Arc::new(|_| Some(Value::Bool(true)));
        let (v, ok) = merge(&Policy::Custom("x".into()), &cands(&vals), Some(&f));
        assert_eq!((v, ok), (Value::I64(1), false));
        let sum: MergeFn = Arc::new(|c| {
            Some(Value::I64(c.iter().map(|c| if let Value::I64(v) = c.value { *v } else { 0 }).sum()))
        });
        assert_eq!(merge(&Policy::Custom("x".into()), &cands(&vals), Some(&sum)).0, Value::I64(3));
    }

    #[test]
    fn policy_codes_roundtrip_and_average_rejects_strings() {
        for p in [
            Policy::LastWriterWins,
            Policy::Max,
            Policy::Min,
            Policy::TakeAverage,
            Policy::Custom("hp".into()),
        ] {
            let mut b = Vec::new();
            p.encode(&mut b);
            assert_eq!(Policy::decode(&b), Some(p));
        }
        assert!(Policy::TakeAverage.check(ValueType::Str).is_err());
        assert!(Policy::TakeAverage.check(ValueType::Color).is_ok());
    }
}
