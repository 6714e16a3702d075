//! Lists the inputs in the directories given that make something panic (contained or
//! not), smallest first per panic site: candidates for fuzz/regressions.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
fn main() {
    let site: Arc<Mutex<Option<String>>> = Arc::default();
    let s = site.clone();
    std::panic::set_hook(Box::new(move |info| {
        let bt = std::backtrace::Backtrace::force_capture().to_string();
        // The innermost zen-crdt function on the stack: where yrs was called from.
        let ours = bt
            .lines()
            .find(|l| l.contains("zen_crdt::") && !l.contains("zen_crdt_fuzz"))
            .map(|l| l.trim().to_string())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!("{}:{} via {ours}", l.file().rsplit('/').next().unwrap_or(""), l.line()));
        *s.lock().unwrap() = at;
    }));
    let mut best: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for dir in std::env::args().skip(1) {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let data = std::fs::read(&p).unwrap();
            *site.lock().unwrap() = None;
            let escaped = std::panic::catch_unwind(|| zen_crdt_fuzz::run(&data)).is_err();
            if let Some(at) = site.lock().unwrap().take() {
                let key = format!("{at}{}", if escaped { " ESCAPED" } else { "" });
                let e = best.entry(key).or_insert((usize::MAX, String::new()));
                if data.len() < e.0 {
                    *e = (data.len(), p.display().to_string());
                }
            }
        }
    }
    for (at, (len, path)) in best {
        println!("{at}\t{len} bytes\t{path}");
    }
}
