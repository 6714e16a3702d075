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
    /// and colors component-wise; `true` over `false`).
    Max,
    /// The smallest value wins, ordered as for `Max`.
    Min,
    /// The mean of the concurrent writes (integers round toward negative infinity;
    /// vectors and colors component-wise). Numeric and vector types only.
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
        if *self == Policy::TakeAverage && !ty.is_numeric() {
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
