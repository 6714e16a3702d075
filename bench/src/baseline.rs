//! Shared by the core and soak benches: timing and memory helpers, and the plain-yrs
//! baseline they compare against (one Doc, one Map, one key per value, a state-vector
//! diff per tick).

use yrs::updates::decoder::Decode;
use yrs::{Any, Doc, Map, MapRef, ReadTxn, StateVector, Transact, Update};

pub use crate::alloc_count::Counting;
pub use crate::arg;
use zen_crdt::{Context, Options};

/// Live heap bytes of the whole process.
pub fn heap() -> i64 {
    crate::alloc_count::live_bytes()
}

/// Two contexts (peer ids 1 and 2) that are members of each other, default options.
pub fn pair() -> (Context, Context) {
    let mut a = Context::new(1, Options::default()).expect("valid");
    let mut b = Context::new(2, Options::default()).expect("valid");
    a.add_peer(2).expect("valid");
    b.add_peer(1).expect("valid");
    (a, b)
}

pub fn mb(bytes: i64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Two peers of the naive layout: one Doc and one Map each.
pub struct Baseline {
    pub a: Doc,
    pub am: MapRef,
    pub b: Doc,
    /// B's state vector as last sent to A (the diff is computed against it).
    pub b_sv: StateVector,
    pub keys: Vec<std::sync::Arc<str>>,
}

impl Baseline {
    pub fn new(values: usize) -> Baseline {
        let a = Doc::with_client_id(1);
        let am = a.get_or_insert_map("m");
        let b = Doc::with_client_id(2);
        b.get_or_insert_map("m");
        let keys = (0..values).map(|i| std::sync::Arc::from(format!("unit/{i}/pos"))).collect();
        Baseline { a, am, b, b_sv: StateVector::default(), keys }
    }

    pub fn write(&self, i: usize, v: [f32; 3]) {
        let mut txn = self.a.transact_mut();
        let buf: Vec<u8> = v.iter().flat_map(|c| c.to_le_bytes()).collect();
        self.am.insert(&mut txn, self.keys[i].clone(), Any::Buffer(buf.into()));
    }

    /// A's state-vector diff against B, applied on B. Returns the diff's size.
    pub fn sync(&mut self) -> usize {
        let diff = self.a.transact().encode_state_as_update_v1(&self.b_sv);
        {
            let mut txn = self.b.transact_mut();
            txn.apply_update(Update::decode_v1(&diff).unwrap()).unwrap();
        }
        self.b_sv = self.b.transact().state_vector();
        diff.len()
    }
}
