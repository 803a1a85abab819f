//! An in-memory rules backend for tests of the rules API (no Kafka).

use std::collections::BTreeMap;
use std::sync::Mutex;

use tickflow::alerts::api::RuleBackend;
use tickflow::alerts::rule::RuleDef;
use tickflow::alerts::store::StoreError;

/// Rules kept in a map, by id.
#[derive(Default)]
pub struct Memory(Mutex<BTreeMap<String, RuleDef>>);

impl RuleBackend for Memory {
    fn list(&self) -> Vec<RuleDef> {
        self.0.lock().unwrap().values().cloned().collect()
    }
    fn get(&self, id: &str) -> Option<RuleDef> {
        self.0.lock().unwrap().get(id).cloned()
    }
    fn put(&self, rule: &RuleDef) -> Result<(), StoreError> {
        self.0.lock().unwrap().insert(rule.id.clone(), rule.clone());
        Ok(())
    }
    fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.0.lock().unwrap().remove(id);
        Ok(())
    }
}
