//! Serialisation back to policy JSON.
//!
//! Element order follows the conventional layout (Version, Id, Statement; Sid, Effect,
//! Principal, Action, Resource, Condition) and one-or-many elements keep the form they were
//! written in, so parse → serialise → parse gives back an equal [`Policy`]. Condition values
//! are written as strings: IAM compares them as text anyway, and it keeps numbers exact.

use super::{
    ActionElement, Form, Policy, PrincipalElement, PrincipalEntry, PrincipalSpec, ResourceElement,
    Statement,
};
use crate::condition::{Condition, OperatorBlock};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// A list written either as its only member or as an array.
struct OneOrMany<'a, T>(&'a [T], Form);

impl<T: Serialize> Serialize for OneOrMany<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.1, self.0) {
            (Form::Single, [one]) => one.serialize(s),
            _ => {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for v in self.0 {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
        }
    }
}

macro_rules! serialize_as_text {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    )*};
}

serialize_as_text!(
    super::ActionPattern,
    super::ResourcePattern,
    super::PrincipalValue,
    crate::condition::ConditionValue
);

impl Serialize for Policy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(v) = self.version {
            m.serialize_entry("Version", v.as_str())?;
        }
        if let Some(id) = &self.id {
            m.serialize_entry("Id", id)?;
        }
        m.serialize_entry(
            "Statement",
            &OneOrMany(&self.statements, self.statement_form),
        )?;
        m.end()
    }
}

impl Serialize for Statement {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(sid) = &self.sid {
            m.serialize_entry("Sid", sid)?;
        }
        m.serialize_entry("Effect", self.effect.as_str())?;
        if let Some(p) = &self.principal {
            let name = if p.negated {
                "NotPrincipal"
            } else {
                "Principal"
            };
            m.serialize_entry(name, p)?;
        }
        if let Some(a) = &self.action {
            let name = if a.negated { "NotAction" } else { "Action" };
            m.serialize_entry(name, a)?;
        }
        if let Some(r) = &self.resource {
            let name = if r.negated { "NotResource" } else { "Resource" };
            m.serialize_entry(name, r)?;
        }
        if let Some(c) = &self.condition {
            m.serialize_entry("Condition", c)?;
        }
        m.end()
    }
}

impl Serialize for PrincipalElement {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.spec {
            PrincipalSpec::Wildcard => s.serialize_str("*"),
            PrincipalSpec::Typed(entries) => {
                let mut m = s.serialize_map(Some(entries.len()))?;
                for PrincipalEntry { kind, values, form } in entries {
                    m.serialize_entry(kind.as_str(), &OneOrMany(values, *form))?;
                }
                m.end()
            }
        }
    }
}

impl Serialize for ActionElement {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        OneOrMany(&self.patterns, self.form).serialize(s)
    }
}

impl Serialize for ResourceElement {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        OneOrMany(&self.patterns, self.form).serialize(s)
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.blocks.len()))?;
        for block in &self.blocks {
            m.serialize_entry(&block.operator.to_string(), &Keys(block))?;
        }
        m.end()
    }
}

struct Keys<'a>(&'a OperatorBlock);

impl Serialize for Keys<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.entries.len()))?;
        for e in &self.0.entries {
            m.serialize_entry(e.key.as_str(), &OneOrMany(&e.values, e.form))?;
        }
        m.end()
    }
}
