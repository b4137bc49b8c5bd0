//! `VecMap` behaves as a `BTreeMap` of the same entries: lookups, order, equality, ordering
//! and serialized form.

use std::collections::BTreeMap;

use iade_intent::VecMap;

/// A small deterministic generator, so a failure reproduces.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[test]
fn a_vec_map_answers_every_operation_as_a_btree_map_does() {
    let mut rng = Lcg(7);
    for round in 0..200 {
        let mut ours: VecMap<String, u64> = VecMap::new();
        let mut theirs: BTreeMap<String, u64> = BTreeMap::new();
        for step in 0..(round % 40) {
            let key = format!("k{}", rng.next(12));
            match rng.next(5) {
                0 | 1 => assert_eq!(ours.insert(key.clone(), step), theirs.insert(key.clone(), step)),
                2 => assert_eq!(ours.remove(&key), theirs.remove(&key)),
                3 => {
                    if let Some(v) = ours.get_mut(key.as_str()) {
                        *v += 100;
                    }
                    if let Some(v) = theirs.get_mut(key.as_str()) {
                        *v += 100;
                    }
                }
                _ => {
                    ours.retain(|k, _| !k.ends_with('3'));
                    theirs.retain(|k, _| !k.ends_with('3'));
                }
            }
            assert_eq!(ours.get(key.as_str()), theirs.get(key.as_str()));
            assert_eq!(ours.contains_key(&key), theirs.contains_key(&key));
            assert_eq!(ours.len(), theirs.len());
            assert!(ours.iter().eq(theirs.iter()), "the entries differ in content or order");
            assert_eq!(ours.first_key_value(), theirs.first_key_value());
            assert_eq!(ours.last_key_value(), theirs.last_key_value());
        }
        let rebuilt: VecMap<String, u64> = theirs.clone().into();
        assert_eq!(rebuilt, ours);
        assert_eq!(serde_json::to_string(&ours).ok(), serde_json::to_string(&theirs).ok());
    }
}

#[test]
fn collecting_entries_out_of_order_sorts_them_and_keeps_the_last_of_a_repeated_key() {
    let entries = [("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5)];
    let ours: VecMap<&str, i32> = entries.into_iter().collect();
    let theirs: BTreeMap<&str, i32> = entries.into_iter().collect();
    assert!(ours.iter().eq(theirs.iter()));
    assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
}

#[test]
fn vec_maps_compare_and_deserialize_as_btree_maps_do() {
    let maps: Vec<BTreeMap<String, i64>> = vec![
        BTreeMap::new(),
        BTreeMap::from([("a".into(), 1)]),
        BTreeMap::from([("a".into(), 2)]),
        BTreeMap::from([("a".into(), 1), ("b".into(), 0)]),
        BTreeMap::from([("b".into(), 0)]),
    ];
    for x in &maps {
        for y in &maps {
            let (vx, vy): (VecMap<String, i64>, VecMap<String, i64>) = (x.clone().into(), y.clone().into());
            assert_eq!(vx.cmp(&vy), x.cmp(y), "{x:?} against {y:?}");
        }
    }
    // An object whose keys are out of order and repeated reads as a BTreeMap reads it.
    let text = r#"{"b": 1, "a": 2, "b": 3}"#;
    let ours: Result<VecMap<String, i64>, _> = serde_json::from_str(text);
    let theirs: Result<BTreeMap<String, i64>, _> = serde_json::from_str(text);
    assert_eq!(
        ours.ok().map(|m| m.into_iter().collect::<Vec<_>>()),
        theirs.ok().map(|m| m.into_iter().collect())
    );
}
