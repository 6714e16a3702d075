//! Positions of sequence items: strings whose byte order is the sequence's order, so a
//! sequence is a table keyed by position (see `collection`).
//!
//! Inserting between two items makes a string strictly between their positions
//! (fractional indexing over the base-62 digits `0-9A-Za-z`, whose byte order is their
//! value order), followed by a suffix unique to the writer and the insertion. Two peers
//! inserting at the same place at once pick the same midpoint, and the suffixes keep
//! both items, in one order on every peer. A position never ends with the digit 0, so
//! there is always room between two of them.

const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE: u32 = 62;

fn digit(b: u8) -> u32 {
    match b {
        b'0'..=b'9' => (b - b'0') as u32,
        b'A'..=b'Z' => (b - b'A') as u32 + 10,
        b'a'..=b'z' => (b - b'a') as u32 + 36,
        // Not one of ours (a peer's malformed key): ordered as the nearest digit.
        _ if b < b'0' => 0,
        _ => BASE - 1,
    }
}

/// A string strictly between `a` and `b` (`None`: no bound above), both of base-62
/// digits, `a < b`, neither ending with `0` (`a` may be empty: the lowest bound).
fn midpoint(a: &[u8], b: Option<&[u8]>) -> Vec<u8> {
    if let Some(b) = b {
        // Shared prefix: keep it and look after it.
        let n = b.iter().zip(a.iter().chain(std::iter::repeat(&b'0'))).take_while(|(x, y)| x == y).count();
        if n > 0 {
            let mut out = b[..n].to_vec();
            out.extend(midpoint(&a[n.min(a.len())..], Some(&b[n..])));
            return out;
        }
    }
    let da = a.first().map_or(0, |&c| digit(c));
    let db = b.map_or(BASE, |b| b.first().map_or(BASE, |&c| digit(c)));
    if db - da > 1 {
        return vec![DIGITS[((da + db) / 2) as usize]];
    }
    match b {
        // Consecutive digits and `b` goes on: `b`'s first digit alone is between.
        Some(b) if b.len() > 1 => vec![b[0]],
        // Else after `a`'s first digit, anything above the rest of `a`.
        _ => {
            let mut out = vec![DIGITS[da as usize]];
            out.extend(midpoint(a.get(1..).unwrap_or(&[]), None));
            out
        }
    }
}

/// Fixed-width base-62 digits of `x` (`width` digits, high first).
fn fixed(mut x: u64, width: usize) -> Vec<u8> {
    let mut out = vec![b'0'; width];
    for d in out.iter_mut().rev() {
        *d = DIGITS[(x % BASE as u64) as usize];
        x /= BASE as u64;
    }
    out
}

/// A position strictly between `a` and `b` (`None`: the start or the end), unique to
/// `writer` and its insertion number `n`: the same `(writer, n)` never makes two
/// positions, and two writers never make the same one.
pub(crate) fn between(a: Option<&str>, b: Option<&str>, writer: u64, n: u64) -> String {
    let a = a.unwrap_or("").as_bytes();
    let b = b.map(str::as_bytes);
    // Writer (53 bits: 9 digits) and number (6 digits, wrapping), then a digit that is
    // not 0 so the position never ends with 0.
    let mut suffix = fixed(writer, 9);
    suffix.extend(fixed(n % 62u64.pow(6), 6));
    suffix.push(b'V');
    let mut lo = a.to_vec();
    // Each round lengthens the candidate by a digit of `b`; positions are short, so a
    // few rounds do (the bound only keeps a malformed neighbour from looping).
    for _ in 0..256 {
        let mut m = midpoint(&lo, b);
        let mid_len = m.len();
        m.extend_from_slice(&suffix);
        if b.is_none_or(|b| m.as_slice() < b) {
            return String::from_utf8(m).expect("base-62 digits");
        }
        // The midpoint was a prefix of `b`: look between it and `b`.
        m.truncate(mid_len);
        lo = m;
    }
    let mut m = a.to_vec();
    m.extend_from_slice(&suffix);
    String::from_utf8(m).unwrap_or_default()
}

/// Whether `s` is a position `between` could have made: base-62 digits, not ending with
/// 0 (a peer's entry with another key in a sequence is refused).
pub(crate) fn is_position(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()) && !s.ends_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn at_the_ends_and_between_neighbours() {
        let first = between(None, None, 7, 0);
        let after = between(Some(&first), None, 7, 1);
        let before = between(None, Some(&first), 7, 2);
        let mid = between(Some(&before), Some(&first), 7, 3);
        assert!(before < mid && mid < first && first < after, "{before} {mid} {first} {after}");
        // The same place, two writers: two positions, one order.
        let x = between(Some(&first), Some(&after), 1, 0);
        let y = between(Some(&first), Some(&after), 2, 0);
        assert!(x != y && first < x.clone().min(y.clone()) && x.max(y) < after);
    }

    proptest! {
        /// Any run of insertions at random places keeps the positions strictly ordered,
        /// distinct and free of a trailing 0, however deep they nest.
        #[test]
        fn insertions_keep_order(places in prop::collection::vec((0usize..1000, 1u64..4), 1..200)) {
            let mut list: Vec<String> = Vec::new();
            for (n, (at, writer)) in places.into_iter().enumerate() {
                let i = at % (list.len() + 1);
                let a = i.checked_sub(1).map(|k| list[k].as_str());
                let b = list.get(i).map(String::as_str);
                let p = between(a, b, writer, n as u64);
                prop_assert!(a.is_none_or(|a| a < p.as_str()) && b.is_none_or(|b| p.as_str() < b), "{a:?} {p} {b:?}");
                prop_assert!(is_position(&p));
                list.insert(i, p);
            }
        }
    }
}
