//! Request validation driven by AWS's service model.
//!
//! The model (trimmed to types and constraints, see `tools/trim_model.py`)
//! says for every operation which members exist, which are required, and
//! their lengths, ranges, patterns and enum values. Checking requests
//! against it gives every operation, implemented or not, the same
//! SerializationException / ValidationException answers as AWS, in AWS's
//! wording, without hand-written checks per field.

use std::collections::HashMap;

use regex::Regex;
use serde_json::Value;

/// Why a request body does not fit the operation's input shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The body is not JSON of the right types (`SerializationException`).
    Serialization(String),
    /// Constraint violations (`ValidationException`), in AWS's wording.
    Validation(String),
}

#[derive(Debug)]
enum Kind {
    Structure {
        members: Vec<(String, usize)>,
        required: Vec<String>,
    },
    List {
        member: usize,
    },
    Map {
        key: usize,
        value: usize,
    },
    String {
        enumeration: Option<Vec<String>>,
        pattern: Option<(String, Regex)>,
    },
    Blob,
    Integer,
    Long,
    Double,
    Boolean,
    Timestamp,
}

#[derive(Debug)]
struct Shape {
    kind: Kind,
    min: Option<i64>,
    max: Option<i64>,
    sensitive: bool,
}

/// A loaded model: operation name -> input shape, and the shapes.
#[derive(Debug)]
pub struct Model {
    operations: foldhash::HashMap<String, Option<usize>>,
    shapes: Vec<Shape>,
}

impl Model {
    /// Loads a trimmed model. Panics only on a malformed built-in model,
    /// which a unit test loads on every build.
    pub fn load(json: &str) -> Result<Model, String> {
        let root: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let shapes_json = root
            .get("shapes")
            .and_then(Value::as_object)
            .ok_or("model has no shapes")?;
        let index: HashMap<&str, usize> = shapes_json
            .keys()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        let idx = |name: &Value| -> Result<usize, String> {
            let n = name.as_str().ok_or("shape reference is not a string")?;
            index
                .get(n)
                .copied()
                .ok_or_else(|| format!("unknown shape {n}"))
        };
        let mut shapes = Vec::with_capacity(shapes_json.len());
        for (name, s) in shapes_json {
            let ty = s.get("type").and_then(Value::as_str).unwrap_or("structure");
            let kind = match ty {
                "structure" => {
                    let mut members = Vec::new();
                    if let Some(m) = s.get("members").and_then(Value::as_object) {
                        for (mname, mshape) in m {
                            members.push((mname.clone(), idx(mshape)?));
                        }
                    }
                    let required = s
                        .get("required")
                        .and_then(Value::as_array)
                        .map(|r| {
                            r.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    Kind::Structure { members, required }
                }
                "list" => Kind::List {
                    member: idx(s.get("member").ok_or("list without member")?)?,
                },
                "map" => Kind::Map {
                    key: idx(s.get("key").ok_or("map without key")?)?,
                    value: idx(s.get("value").ok_or("map without value")?)?,
                },
                "string" => Kind::String {
                    enumeration: s.get("enum").and_then(Value::as_array).map(|e| {
                        e.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    }),
                    pattern: match s.get("pattern").and_then(Value::as_str) {
                        Some(p) => Regex::new(&format!("^(?:{p})$"))
                            .ok()
                            .map(|r| (p.to_string(), r)),
                        None => None,
                    },
                },
                "blob" => Kind::Blob,
                "integer" => Kind::Integer,
                "long" => Kind::Long,
                "double" | "float" => Kind::Double,
                "boolean" => Kind::Boolean,
                "timestamp" => Kind::Timestamp,
                other => return Err(format!("shape {name} has unknown type {other}")),
            };
            shapes.push(Shape {
                kind,
                min: s.get("min").and_then(Value::as_i64),
                max: s.get("max").and_then(Value::as_i64),
                sensitive: s.get("sensitive").and_then(Value::as_bool).unwrap_or(false),
            });
        }
        let mut operations = foldhash::HashMap::default();
        if let Some(ops) = root.get("operations").and_then(Value::as_object) {
            for (op, input) in ops {
                let input = if input.is_null() {
                    None
                } else {
                    Some(idx(input)?)
                };
                operations.insert(op.clone(), input);
            }
        }
        Ok(Model { operations, shapes })
    }

    /// Whether the model has the operation.
    pub fn has_operation(&self, op: &str) -> bool {
        self.operations.contains_key(op)
    }

    /// Validates a parsed request body against the operation's input shape.
    pub fn validate(&self, op: &str, body: &Value) -> Result<(), WireError> {
        let Some(Some(input)) = self.operations.get(op) else {
            return Ok(());
        };
        if !body.is_object() {
            return Err(WireError::Serialization(
                "Start of structure or map found where not expected.".into(),
            ));
        }
        let mut errors = Vec::new();
        self.check(*input, body, &Path::Root, &mut errors)?;
        match errors.len() {
            0 => Ok(()),
            1 => Err(WireError::Validation(format!(
                "1 validation error detected: {}",
                errors[0]
            ))),
            n => Err(WireError::Validation(format!(
                "{n} validation errors detected: {}",
                errors.join("; ")
            ))),
        }
    }

    fn check(
        &self,
        shape: usize,
        v: &Value,
        path: &Path<'_>,
        errors: &mut Vec<String>,
    ) -> Result<(), WireError> {
        let Some(s) = self.shapes.get(shape) else {
            return Ok(());
        };
        let type_error = |expected: &str| {
            let path = path.render();
            WireError::Serialization(format!(
                "Unexpected value at '{}': expected {expected}",
                if path.is_empty() { "(body)" } else { &path }
            ))
        };
        let shown = |text: &str| shown_value(s, text, path);
        match &s.kind {
            Kind::Structure { members, required } => {
                let obj = v.as_object().ok_or_else(|| type_error("a structure"))?;
                // A request names a handful of members: comparing names is
                // cheaper than hashing each of the shape's member names
                // (with the map's SipHash) to look it up.
                let member = |name: &str| {
                    if obj.len() <= 8 {
                        obj.iter().find_map(|(k, v)| (k == name).then_some(v))
                    } else {
                        obj.get(name)
                    }
                };
                // LocalStack's custom key material tag (--dev): its value is
                // key material, never quoted in a message.
                let secret_tag = member("TagKey").and_then(Value::as_str)
                    == Some(ferrokms_kms::given::CUSTOM_KEY_MATERIAL_TAG);
                for (name, mshape) in members {
                    let child = if secret_tag && name == "TagValue" {
                        Path::Secret(path, name)
                    } else {
                        Path::Member(path, name)
                    };
                    match member(name) {
                        None | Some(Value::Null) => {
                            if required.contains(name) {
                                errors.push(format!(
                                    "Value null at '{}' failed to satisfy constraint: Member must not be null",
                                    child.render()
                                ));
                            }
                        }
                        Some(val) => self.check(*mshape, val, &child, errors)?,
                    }
                }
            }
            Kind::List { member } => {
                let arr = v.as_array().ok_or_else(|| type_error("a list"))?;
                self.length(
                    s,
                    arr.len(),
                    || format!("Value at '{}'", path.render()),
                    errors,
                );
                for (i, item) in arr.iter().enumerate() {
                    if item.is_null() {
                        continue;
                    }
                    self.check(*member, item, &Path::Item(path, i + 1), errors)?;
                }
            }
            Kind::Map { key, value } => {
                let obj = v.as_object().ok_or_else(|| type_error("a map"))?;
                self.length(
                    s,
                    obj.len(),
                    || format!("Value at '{}'", path.render()),
                    errors,
                );
                for (k, val) in obj {
                    // Keys are strings: checked as text, without a `Value`
                    // built for each one.
                    match self.shapes.get(*key) {
                        Some(ks) if matches!(ks.kind, Kind::String { .. }) => {
                            self.check_text(ks, k, path, errors);
                        }
                        _ => self.check(*key, &Value::String(k.clone()), path, errors)?,
                    }
                    if val.is_null() {
                        continue;
                    }
                    if let Some(vs) = self.shapes.get(*value) {
                        if matches!(vs.kind, Kind::String { .. }) && !val.is_string() {
                            return Err(type_error("a string map value"));
                        }
                    }
                    self.check(*value, val, path, errors)?;
                }
            }
            Kind::String { .. } => {
                let text = v.as_str().ok_or_else(|| type_error("a string"))?;
                self.check_text(s, text, path, errors);
            }
            Kind::Blob => {
                let text = v.as_str().ok_or_else(|| type_error("a base64 string"))?;
                self.length(
                    s,
                    base64_decoded_len(text),
                    || format!("Value at '{}'", path.render()),
                    errors,
                );
            }
            Kind::Integer | Kind::Long => {
                let n = v.as_i64().ok_or_else(|| type_error("an integer"))?;
                if matches!(s.kind, Kind::Integer) && i32::try_from(n).is_err() {
                    return Err(type_error("a 32-bit integer"));
                }
                if let Some(min) = s.min {
                    if n < min {
                        errors.push(format!(
                            "{} failed to satisfy constraint: Member must have value greater than or equal to {min}",
                            shown(&n.to_string())
                        ));
                    }
                }
                if let Some(max) = s.max {
                    if n > max {
                        errors.push(format!(
                            "{} failed to satisfy constraint: Member must have value less than or equal to {max}",
                            shown(&n.to_string())
                        ));
                    }
                }
            }
            Kind::Double => {
                v.as_f64().ok_or_else(|| type_error("a number"))?;
            }
            Kind::Boolean => {
                v.as_bool().ok_or_else(|| type_error("a boolean"))?;
            }
            Kind::Timestamp => {
                if !(v.is_number() || v.is_string()) {
                    return Err(type_error("a timestamp"));
                }
            }
        }
        Ok(())
    }

    /// The constraints of a string shape (length in UTF-16 units, enum,
    /// pattern) on `text`.
    fn check_text(&self, s: &Shape, text: &str, path: &Path<'_>, errors: &mut Vec<String>) {
        let Kind::String {
            enumeration,
            pattern,
        } = &s.kind
        else {
            return;
        };
        let shown = || shown_value(s, text, path);
        let len = text.encode_utf16().count();
        self.length(s, len, shown, errors);
        if let Some(values) = enumeration {
            if !values.iter().any(|e| e == text) {
                errors.push(format!(
                    "{} failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                    shown(),
                    values.join(", ")
                ));
            }
        }
        if let Some((p, re)) = pattern {
            if !re.is_match(text) {
                errors.push(format!(
                    "{} failed to satisfy constraint: Member must satisfy regular expression pattern: {p}",
                    shown()
                ));
            }
        }
    }

    fn length(&self, s: &Shape, len: usize, shown: impl Fn() -> String, errors: &mut Vec<String>) {
        let len = len as i64;
        if let Some(min) = s.min {
            if len < min {
                errors.push(format!(
                    "{} failed to satisfy constraint: Member must have length greater than or equal to {min}",
                    shown()
                ));
            }
        }
        if let Some(max) = s.max {
            if len > max {
                errors.push(format!(
                    "{} failed to satisfy constraint: Member must have length less than or equal to {max}",
                    shown()
                ));
            }
        }
    }
}

/// Where a value sits in the request, for messages. Rendered only when a
/// message needs it: building the text for every member visited cost
/// several allocations per request on the hot path.
enum Path<'a> {
    Root,
    /// A structure member, by its model name (camelCased when rendered).
    Member(&'a Path<'a>, &'a str),
    /// The n-th (from 1) item of a list: `path.n.member`.
    Item(&'a Path<'a>, usize),
    /// A member whose value is never quoted in a message (the value of a
    /// `_custom_key_material_` tag), rendered as a member.
    Secret(&'a Path<'a>, &'a str),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Member(parent, name) | Path::Secret(parent, name) => join(&parent.render(), name),
            Path::Item(parent, n) => format!("{}.{n}.member", parent.render()),
        }
    }
}

/// AWS names members in messages in camelCase (`numberOfBytes`).
fn join(path: &str, member: &str) -> String {
    let mut chars = member.chars();
    let camel: String = match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    if path.is_empty() {
        camel
    } else {
        format!("{path}.{camel}")
    }
}

/// The decoded size of base64 text, computed without decoding (the hot path
/// decodes once, later, into the typed request).
fn base64_decoded_len(s: &str) -> usize {
    let trimmed = s.trim_end_matches('=');
    trimmed.len() * 3 / 4
}

/// How a constraint message names a value: with its text, unless the shape
/// is sensitive (plaintexts, secrets), then by its path alone.
fn shown_value(s: &Shape, text: &str, path: &Path<'_>) -> String {
    let secret = matches!(path, Path::Secret(..));
    let path = path.render();
    if s.sensitive || secret {
        format!("Value at '{path}'")
    } else {
        format!("Value '{text}' at '{path}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kms() -> Model {
        Model::load(crate::kms_api::KMS_MODEL).unwrap()
    }

    #[test]
    fn built_in_kms_model_loads_with_every_operation() {
        let m = kms();
        assert_eq!(m.operations.len(), 56);
        assert!(m.has_operation("Decapsulate"));
        assert!(m.has_operation("Encrypt"));
        assert!(m.has_operation("GenerateDataKeyPair"));
    }

    #[test]
    fn number_of_bytes_out_of_range_is_validation_error_in_aws_words() {
        let e = kms()
            .validate("GenerateRandom", &json!({"NumberOfBytes": 0}))
            .unwrap_err();
        assert_eq!(
            e,
            WireError::Validation(
                "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1".into()
            )
        );
    }

    #[test]
    fn missing_required_member_is_reported_as_null() {
        let e = kms().validate("Encrypt", &json!({})).unwrap_err();
        match e {
            WireError::Validation(m) => {
                assert!(m.starts_with("2 validation errors detected: "), "{m}");
                assert!(m.contains(
                    "Value null at 'keyId' failed to satisfy constraint: Member must not be null"
                ));
                assert!(m.contains("Value null at 'plaintext'"));
            }
            other @ WireError::Serialization(_) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn sensitive_plaintext_value_is_not_echoed_in_errors() {
        let big = "A".repeat(5468); // 4101 bytes once decoded
        let e = kms()
            .validate("Encrypt", &json!({"KeyId": "k", "Plaintext": big}))
            .unwrap_err();
        assert_eq!(
            e,
            WireError::Validation(
                "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096".into()
            )
        );
    }

    #[test]
    fn wrong_json_type_is_serialization_exception() {
        let e = kms()
            .validate("GenerateRandom", &json!({"NumberOfBytes": "ten"}))
            .unwrap_err();
        assert!(matches!(e, WireError::Serialization(_)));
        let e = kms().validate("ListKeys", &json!([1])).unwrap_err();
        assert!(matches!(e, WireError::Serialization(_)));
    }

    #[test]
    fn enum_and_pattern_violations_name_the_allowed_values() {
        let e = kms()
            .validate("CreateKey", &json!({"KeyUsage": "SIGN"}))
            .unwrap_err();
        match e {
            WireError::Validation(m) => assert!(
                m.contains("Value 'SIGN' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [SIGN_VERIFY, ENCRYPT_DECRYPT"),
                "{m}"
            ),
            other @ WireError::Serialization(_) => panic!("unexpected {other:?}"),
        }
        let e = kms()
            .validate(
                "CreateAlias",
                &json!({"AliasName": "alias/has space", "TargetKeyId": "k"}),
            )
            .unwrap_err();
        assert!(matches!(e, WireError::Validation(m) if m.contains("regular expression pattern")));
    }

    #[test]
    fn nested_list_members_are_named_with_one_based_index() {
        let e = kms()
            .validate(
                "TagResource",
                &json!({"KeyId": "k", "Tags": [{"TagKey": "a", "TagValue": "b"}, {"TagKey": "", "TagValue": "c"}]}),
            )
            .unwrap_err();
        assert!(matches!(e, WireError::Validation(m) if m.contains("at 'tags.2.member.tagKey'")));
    }
}
