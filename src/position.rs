//! Positions of sequence items: strings whose byte order is the sequence's order, so a
//! sequence is a table keyed by position (see `collection`).
//!
//! A position is an *integer part* and a *fraction* over the base-62 digits `0-9A-Za-z`
//! (whose byte order is their value order): the integer part's first character says its
//! length (`a`..`z`: 2..27 characters, counting up; `Z`..`A`: the same, counting down),
//! so adding at either end steps the integer (a key stays a few bytes long however many
//! items are appended) and inserting between two neighbours with the same integer takes
//! the midpoint of their fractions (fractional indexing, as the `fractional-indexing`
//! library does it). Every position then ends with a suffix unique to the writer and the
//! insertion: two peers inserting at the same place at once pick the same key, and the
//! suffixes keep both items, in one order on every peer. A position never ends with the
//! digit 0, so there is always room between two of them.

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

/// The length of an integer part whose first character is `head` (`None`: not a head).
fn integer_len(head: u8) -> Option<usize> {
    match head {
        b'a'..=b'z' => Some((head - b'a') as usize + 2),
        b'A'..=b'Z' => Some((b'Z' - head) as usize + 2),
        _ => None,
    }
}

/// The integer part of `key` (`None` when `key` has none: a peer's malformed key).
fn integer_part(key: &[u8]) -> Option<&[u8]> {
    let len = integer_len(*key.first()?)?;
    key.get(..len)
}

/// The next integer (`None` past the largest).
fn increment(int: &[u8]) -> Option<Vec<u8>> {
    let (head, mut digits) = (int[0], int[1..].to_vec());
    for d in digits.iter_mut().rev() {
        let v = digit(*d) + 1;
        if v < BASE {
            *d = DIGITS[v as usize];
            let mut out = vec![head];
            out.extend(digits);
            return Some(out);
        }
        *d = b'0';
    }
    // Every digit carried: one more digit (or, from the negative side, one fewer).
    match head {
        b'Z' => Some(b"a0".to_vec()),
        b'z' => None,
        _ => {
            let h = head + 1;
            if h > b'a' {
                digits.push(b'0');
            } else {
                digits.pop();
            }
            let mut out = vec![h];
            out.extend(digits);
            Some(out)
        }
    }
}

/// The previous integer (`None` below the smallest).
fn decrement(int: &[u8]) -> Option<Vec<u8>> {
    let (head, mut digits) = (int[0], int[1..].to_vec());
    for d in digits.iter_mut().rev() {
        let v = digit(*d);
        if v > 0 {
            *d = DIGITS[v as usize - 1];
            let mut out = vec![head];
            out.extend(digits);
            return Some(out);
        }
        *d = b'z';
    }
    match head {
        b'a' => Some(b"Zz".to_vec()),
        b'A' => None,
        _ => {
            let h = head - 1;
            if h < b'Z' {
                digits.push(b'z');
            } else {
                digits.pop();
            }
            let mut out = vec![h];
            out.extend(digits);
            Some(out)
        }
    }
}

/// A key strictly between `a` and `b` (`None`: no bound), both valid keys, `a < b`.
fn key_between(a: Option<&[u8]>, b: Option<&[u8]>) -> Vec<u8> {
    let join = |int: &[u8], frac: Vec<u8>| {
        let mut out = int.to_vec();
        out.extend(frac);
        out
    };
    match (a, b) {
        (None, None) => b"a0".to_vec(),
        (None, Some(b)) => {
            let Some(ib) = integer_part(b) else { return midpoint(b"", Some(b)) };
            match decrement(ib) {
                Some(i) => i,
                None => join(ib, midpoint(b"", Some(&b[ib.len()..]))),
            }
        }
        (Some(a), None) => {
            let Some(ia) = integer_part(a) else { return midpoint(a, None) };
            match increment(ia) {
                Some(i) => i,
                None => join(ia, midpoint(&a[ia.len()..], None)),
            }
        }
        (Some(a), Some(b)) => {
            let (Some(ia), Some(ib)) = (integer_part(a), integer_part(b)) else {
                return midpoint(a, Some(b));
            };
            let (fa, fb) = (&a[ia.len()..], &b[ib.len()..]);
            if ia == ib {
                return join(ia, midpoint(fa, Some(fb)));
            }
            match increment(ia) {
                Some(i) if i.as_slice() < b => i,
                _ => join(ia, midpoint(fa, None)),
            }
        }
    }
}

/// A position strictly between `a` and `b` (`None`: the start or the end), unique to
/// `writer` and its insertion number `n`: the same `(writer, n)` never makes two
/// positions, and two writers never make the same one.
pub(crate) fn between(a: Option<&str>, b: Option<&str>, writer: u64, n: u64) -> String {
    let b = b.map(str::as_bytes);
    // Writer (53 bits: 9 digits) and number (6 digits, wrapping), each low digit first
    // (fixed widths keep suffixes prefix-free; low digits first keep a later midpoint
    // short, leading zeros would lengthen it), then a digit that is not 0 so the position
    // never ends with 0.
    let mut suffix: Vec<u8> = fixed(writer, 9).into_iter().rev().collect();
    suffix.extend(fixed(n % 62u64.pow(6), 6).into_iter().rev());
    suffix.push(b'V');
    let mut k = key_between(a.map(str::as_bytes), b);
    if let Some(b) = b.filter(|b| b.starts_with(&k)) {
        // The key is a prefix of `b`, so the suffix could sort it after `b`: step below
        // `b` at its next digit that is not 0 (`b` does not end with 0, so there is one).
        // The key stays above `a`, which sorts below the prefix it extends.
        let rest = &b[k.len()..];
        let at = rest.iter().position(|&d| digit(d) > 0).unwrap_or(rest.len());
        k.extend_from_slice(&rest[..at]);
        if let Some(&d) = rest.get(at) {
            k.push(DIGITS[digit(d) as usize - 1]);
        }
    }
    k.extend_from_slice(&suffix);
    String::from_utf8(k).unwrap_or_default()
}

/// Whether `s` is a position `between` could have made: an integer part of the length
/// its head says, base-62 digits, not ending with 0 (a peer's entry with another key in
/// a sequence is refused).
pub(crate) fn is_position(s: &str) -> bool {
    let b = s.as_bytes();
    integer_part(b).is_some_and(|i| i.len() < b.len())
        && b.iter().all(|c| c.is_ascii_alphanumeric())
        && !s.ends_with('0')
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

    #[test]
    fn appends_and_prepends_stay_short() {
        let (mut last, mut first) = (between(None, None, 9, 0), between(None, None, 9, 1));
        if first > last {
            std::mem::swap(&mut first, &mut last);
        }
        for n in 2..100_000u64 {
            let next = between(Some(&last), None, 9, n);
            assert!(next > last && is_position(&next));
            last = next;
        }
        for n in 0..10_000u64 {
            let prev = between(None, Some(&first), 9, 200_000 + n);
            assert!(prev < first && is_position(&prev), "{prev} {first}");
            first = prev;
        }
        assert!(last.len() <= 24 && first.len() <= 24, "{last} {first}");
    }

    #[test]
    fn inserts_at_one_spot_grow_about_a_byte_per_three() {
        let (a, mut b) = (between(None, None, 3, 0), None::<String>);
        b = Some(between(Some(&a), b.as_deref(), 3, 1));
        let mut longest = 0;
        for n in 2..1002u64 {
            // Always right after `a`: the gap halves each time.
            let k = between(Some(&a), b.as_deref(), 3, n);
            assert!(a < k && b.as_deref().is_none_or(|b| k.as_str() < b), "{n}: {a} {k} {b:?}");
            longest = longest.max(k.len());
            b = Some(k);
        }
        // Fractional indexing's known cost: about a byte per three inserts at one spot
        // (appends and prepends stay short, see above).
        assert!(longest < 400, "{longest}");
        eprintln!("1000 inserts at one spot: longest position {longest} bytes");
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
