//! The public page's JSON sample must survive a parse and a render unchanged:
//! same keys, same order, same values, down to the 100 ns digits.

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use siemgate_model::{Detection, KEYS};

const SAMPLE: &str = include_str!("fixtures/reference-sample.json");

/// The keys of each object of a JSON array, in the order they appear.
fn key_orders(json: &str) -> Vec<Vec<String>> {
    struct Objects;
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                keys.push(k);
            }
            Ok(keys)
        }
    }
    struct Object(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Object {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(Keys).map(Object)
        }
    }
    impl<'de> Visitor<'de> for Objects {
        type Value = Vec<Vec<String>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut all = Vec::new();
            while let Some(Object(keys)) = seq.next_element()? {
                all.push(keys);
            }
            Ok(all)
        }
    }
    serde_json::Deserializer::from_str(json).deserialize_seq(Objects).unwrap()
}

#[test]
fn the_reference_sample_renders_back_identically() {
    let original: Vec<serde_json::Value> = serde_json::from_str(SAMPLE).unwrap();
    let records: Vec<serde_json::Value> = serde_json::from_str(SAMPLE).unwrap();
    assert_eq!(records.len(), 1);

    let mut rendered = String::from("[");
    for record in &records {
        let detection = Detection::from_json(&record.to_string()).unwrap();
        rendered.push_str(std::str::from_utf8(&detection.render()).unwrap());
    }
    rendered.push(']');

    let back: Vec<serde_json::Value> = serde_json::from_str(&rendered).unwrap();
    assert_eq!(back, original, "values differ");
    assert_eq!(key_orders(&rendered), key_orders(SAMPLE), "key order differs");
    assert_eq!(key_orders(SAMPLE)[0], KEYS, "the sample carries the 50 keys in order");
    assert!(rendered.contains(r#""LastProcessedTimeUtc":"2020-09-30T14:11:44.0779765Z""#));
    assert!(rendered.contains(r#""AlertTime":"2020-09-30T14:09:20.35743Z""#));
    assert!(rendered.contains(r#""ReportID":1053729833,"#));
    assert!(rendered.contains(r#""RemediationIsSuccess":null,"#));
}
