//! Condition operators, set operators and the missing-key rules.

use crate::cases;
use crate::support::{ctx, strs};
use ferrokms_policy::{ContextValue, Number, Timestamp};
use std::net::IpAddr;

fn ip(s: &str) -> ContextValue {
    ContextValue::Ip(s.parse::<IpAddr>().unwrap_or_else(|_| panic!("{s}")))
}
fn date(s: &str) -> ContextValue {
    ContextValue::Date(s.parse::<Timestamp>().unwrap_or_else(|_| panic!("{s}")))
}
fn num(s: &str) -> ContextValue {
    ContextValue::Number(s.parse::<Number>().unwrap_or_else(|_| panic!("{s}")))
}

// ---- String operators ------------------------------------------------------------------
cases! {
    string_equals_matches_exact_value:
        r#"{"StringEquals":{"aws:PrincipalTag/team":"blue"}}"#, ctx().with("aws:PrincipalTag/team", "blue") => true;
    string_equals_is_case_sensitive_for_values:
        r#"{"StringEquals":{"aws:PrincipalTag/team":"blue"}}"#, ctx().with("aws:PrincipalTag/team", "Blue") => false;
    string_equals_does_not_treat_star_as_wildcard:
        r#"{"StringEquals":{"aws:PrincipalTag/team":"b*"}}"#, ctx().with("aws:PrincipalTag/team", "blue") => false;
    string_equals_multiple_values_are_ored:
        r#"{"StringEquals":{"aws:PrincipalTag/team":["red","blue"]}}"#, ctx().with("aws:PrincipalTag/team", "blue") => true;
    string_equals_missing_key_is_false:
        r#"{"StringEquals":{"aws:PrincipalTag/team":"blue"}}"#, ctx() => false;
    string_not_equals_differs_from_all_values_is_true:
        r#"{"StringNotEquals":{"aws:PrincipalTag/team":["red","blue"]}}"#, ctx().with("aws:PrincipalTag/team", "green") => true;
    string_not_equals_multiple_values_are_nored:
        r#"{"StringNotEquals":{"aws:PrincipalTag/team":["red","blue"]}}"#, ctx().with("aws:PrincipalTag/team", "blue") => false;
    string_not_equals_missing_key_is_true:
        r#"{"StringNotEquals":{"aws:PrincipalTag/team":"blue"}}"#, ctx() => true;
    string_equals_ignore_case_ignores_case:
        r#"{"StringEqualsIgnoreCase":{"aws:PrincipalTag/team":"BLUE"}}"#, ctx().with("aws:PrincipalTag/team", "blue") => true;
    string_equals_ignore_case_still_requires_equal_text:
        r#"{"StringEqualsIgnoreCase":{"aws:PrincipalTag/team":"BLUE"}}"#, ctx().with("aws:PrincipalTag/team", "blues") => false;
    string_not_equals_ignore_case_same_text_other_case_is_false:
        r#"{"StringNotEqualsIgnoreCase":{"aws:PrincipalTag/team":"BLUE"}}"#, ctx().with("aws:PrincipalTag/team", "blue") => false;
    string_not_equals_ignore_case_missing_key_is_true:
        r#"{"StringNotEqualsIgnoreCase":{"aws:PrincipalTag/team":"BLUE"}}"#, ctx() => true;
    string_like_star_matches_any_run:
        r#"{"StringLike":{"kms:ViaService":"*.us-east-1.amazonaws.com"}}"#, ctx().with("kms:ViaService", "ec2.us-east-1.amazonaws.com") => true;
    string_like_question_mark_matches_one_character:
        r#"{"StringLike":{"aws:PrincipalTag/team":"bl?e"}}"#, ctx().with("aws:PrincipalTag/team", "blue") => true;
    string_like_question_mark_does_not_match_zero_characters:
        r#"{"StringLike":{"aws:PrincipalTag/team":"blue?"}}"#, ctx().with("aws:PrincipalTag/team", "blue") => false;
    string_like_is_case_sensitive:
        r#"{"StringLike":{"aws:PrincipalTag/team":"BL*"}}"#, ctx().with("aws:PrincipalTag/team", "blue") => false;
    string_like_star_spans_colons:
        r#"{"StringLike":{"aws:SourceArn":"arn:*"}}"#, ctx().with("aws:SourceArn", "arn:aws:s3:::bucket") => true;
    string_like_without_wildcards_is_exact:
        r#"{"StringLike":{"aws:PrincipalTag/team":"blu"}}"#, ctx().with("aws:PrincipalTag/team", "blue") => false;
    string_like_missing_key_is_false:
        r#"{"StringLike":{"aws:PrincipalTag/team":"*"}}"#, ctx() => false;
    string_not_like_matching_value_is_false:
        r#"{"StringNotLike":{"aws:PrincipalTag/team":"bl*"}}"#, ctx().with("aws:PrincipalTag/team", "blue") => false;
    string_not_like_non_matching_value_is_true:
        r#"{"StringNotLike":{"aws:PrincipalTag/team":["re*","gr*"]}}"#, ctx().with("aws:PrincipalTag/team", "blue") => true;
    string_not_like_missing_key_is_true:
        r#"{"StringNotLike":{"aws:PrincipalTag/team":"bl*"}}"#, ctx() => true;
    string_operators_compare_numbers_as_text:
        r#"{"StringEquals":{"aws:MultiFactorAuthAge":"10"}}"#, ctx().with("aws:MultiFactorAuthAge", 10i64) => true;
    json_number_policy_value_is_compared_as_text:
        r#"{"StringEquals":{"aws:PrincipalTag/n":7}}"#, ctx().with("aws:PrincipalTag/n", "7") => true;
}

// ---- Condition key names and block logic ---------------------------------------------------
cases! {
    condition_key_names_are_case_insensitive:
        r#"{"StringEquals":{"AWS:PRINCIPALTAG/TEAM":"blue"}}"#, ctx().with("aws:principaltag/team", "blue") => true;
    encryption_context_key_suffix_is_case_insensitive:
        r#"{"StringEquals":{"kms:EncryptionContext:Department":"IT"}}"#, ctx().with("kms:encryptioncontext:department", "IT") => true;
    keys_under_one_operator_are_anded:
        r#"{"StringEquals":{"aws:PrincipalTag/a":"1","aws:PrincipalTag/b":"2"}}"#, ctx().with("aws:PrincipalTag/a", "1") => false;
    keys_under_one_operator_all_true_is_true:
        r#"{"StringEquals":{"aws:PrincipalTag/a":"1","aws:PrincipalTag/b":"2"}}"#, ctx().with("aws:PrincipalTag/a", "1").with("aws:PrincipalTag/b", "2") => true;
    operators_are_anded:
        r#"{"StringEquals":{"aws:PrincipalTag/a":"1"},"Bool":{"aws:SecureTransport":"true"}}"#, ctx().with("aws:PrincipalTag/a", "1").with("aws:SecureTransport", false) => false;
    operators_all_true_is_true:
        r#"{"StringEquals":{"aws:PrincipalTag/a":"1"},"Bool":{"aws:SecureTransport":"true"}}"#, ctx().with("aws:PrincipalTag/a", "1").with("aws:SecureTransport", true) => true;
}

// ---- Numeric operators ---------------------------------------------------------------------
cases! {
    numeric_equals_compares_numerically:
        r#"{"NumericEquals":{"kms:RotationPeriodInDays":"90"}}"#, ctx().with("kms:RotationPeriodInDays", "090.0") => true;
    numeric_equals_accepts_json_numbers_in_policy:
        r#"{"NumericEquals":{"kms:RotationPeriodInDays":90}}"#, ctx().with("kms:RotationPeriodInDays", 90i64) => true;
    numeric_equals_different_value_is_false:
        r#"{"NumericEquals":{"kms:RotationPeriodInDays":90}}"#, ctx().with("kms:RotationPeriodInDays", 91i64) => false;
    numeric_equals_is_exact_for_large_integers:
        r#"{"NumericEquals":{"x:n":"9007199254740993"}}"#, ctx().with("x:n", "9007199254740992") => false;
    numeric_not_equals_different_value_is_true:
        r#"{"NumericNotEquals":{"x:n":[1,2]}}"#, ctx().with("x:n", 3i64) => true;
    numeric_not_equals_listed_value_is_false:
        r#"{"NumericNotEquals":{"x:n":[1,2]}}"#, ctx().with("x:n", 2i64) => false;
    numeric_not_equals_missing_key_is_true:
        r#"{"NumericNotEquals":{"x:n":1}}"#, ctx() => true;
    numeric_less_than_is_strict:
        r#"{"NumericLessThan":{"x:n":10}}"#, ctx().with("x:n", 10i64) => false;
    numeric_less_than_smaller_is_true:
        r#"{"NumericLessThan":{"x:n":10}}"#, ctx().with("x:n", num("9.99")) => true;
    numeric_less_than_equals_includes_equal:
        r#"{"NumericLessThanEquals":{"x:n":10}}"#, ctx().with("x:n", 10i64) => true;
    numeric_greater_than_is_strict:
        r#"{"NumericGreaterThan":{"x:n":10}}"#, ctx().with("x:n", 10i64) => false;
    numeric_greater_than_larger_is_true:
        r#"{"NumericGreaterThan":{"x:n":"-5"}}"#, ctx().with("x:n", "-4.5") => true;
    numeric_greater_than_equals_includes_equal:
        r#"{"NumericGreaterThanEquals":{"x:n":7}}"#, ctx().with("x:n", "7") => true;
    numeric_missing_key_is_false:
        r#"{"NumericLessThan":{"x:n":10}}"#, ctx() => false;
    numeric_operator_with_non_numeric_request_value_is_false:
        r#"{"NumericLessThan":{"x:n":10}}"#, ctx().with("x:n", "ten") => false;
    negated_numeric_operator_with_non_numeric_request_value_is_false:
        r#"{"NumericNotEquals":{"x:n":10}}"#, ctx().with("x:n", "ten") => false;
}

// ---- Date operators ------------------------------------------------------------------------
cases! {
    date_less_than_compares_instants:
        r#"{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}"#, ctx().with("aws:CurrentTime", date("2029-12-31T23:59:59Z")) => true;
    date_less_than_is_strict:
        r#"{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}"#, ctx().with("aws:CurrentTime", date("2030-01-01T00:00:00Z")) => false;
    date_less_than_equals_includes_equal:
        r#"{"DateLessThanEquals":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}"#, ctx().with("aws:CurrentTime", date("2030-01-01T00:00:00Z")) => true;
    date_greater_than_later_is_true:
        r#"{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01"}}"#, ctx().with("aws:CurrentTime", date("2020-01-01T00:00:01Z")) => true;
    date_greater_than_equals_includes_equal:
        r#"{"DateGreaterThanEquals":{"aws:CurrentTime":"2020-01-01"}}"#, ctx().with("aws:CurrentTime", date("2020-01-01T00:00:00Z")) => true;
    date_equals_accepts_epoch_seconds_in_policy:
        r#"{"DateEquals":{"aws:TokenIssueTime":"1577836800"}}"#, ctx().with("aws:TokenIssueTime", "2020-01-01T00:00:00Z") => true;
    date_equals_compares_across_time_zones:
        r#"{"DateEquals":{"aws:TokenIssueTime":"2020-01-01T02:00:00+02:00"}}"#, ctx().with("aws:TokenIssueTime", date("2020-01-01T00:00:00Z")) => true;
    date_operator_accepts_epoch_seconds_in_request:
        r#"{"DateLessThan":{"kms:ValidTo":"2030-01-01T00:00:00Z"}}"#, ctx().with("kms:ValidTo", "1700000000") => true;
    date_not_equals_other_instant_is_true:
        r#"{"DateNotEquals":{"aws:CurrentTime":"2020-01-01"}}"#, ctx().with("aws:CurrentTime", date("2021-01-01")) => true;
    date_not_equals_missing_key_is_true:
        r#"{"DateNotEquals":{"aws:CurrentTime":"2020-01-01"}}"#, ctx() => true;
    date_missing_key_is_false:
        r#"{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01"}}"#, ctx() => false;
    date_operator_with_unparseable_request_value_is_false:
        r#"{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01"}}"#, ctx().with("aws:CurrentTime", "tomorrow") => false;
}

// ---- Bool, Binary, IP, ARN ------------------------------------------------------------------
cases! {
    bool_true_matches_true:
        r#"{"Bool":{"aws:SecureTransport":"true"}}"#, ctx().with("aws:SecureTransport", true) => true;
    bool_true_does_not_match_false:
        r#"{"Bool":{"aws:SecureTransport":"true"}}"#, ctx().with("aws:SecureTransport", false) => false;
    bool_accepts_json_booleans_in_policy:
        r#"{"Bool":{"kms:GrantIsForAWSResource":true}}"#, ctx().with("kms:GrantIsForAWSResource", "true") => true;
    bool_values_are_case_insensitive:
        r#"{"Bool":{"aws:SecureTransport":"FALSE"}}"#, ctx().with("aws:SecureTransport", "False") => true;
    bool_missing_key_is_false:
        r#"{"Bool":{"aws:SecureTransport":"false"}}"#, ctx() => false;
    bool_if_exists_missing_key_is_true:
        r#"{"BoolIfExists":{"aws:MultiFactorAuthPresent":"true"}}"#, ctx() => true;
    bool_if_exists_present_key_is_compared:
        r#"{"BoolIfExists":{"aws:MultiFactorAuthPresent":"true"}}"#, ctx().with("aws:MultiFactorAuthPresent", false) => false;
    binary_equals_compares_decoded_bytes:
        r#"{"BinaryEquals":{"x:blob":"QmluYXJ5VmFsdWU="}}"#, ctx().with("x:blob", ContextValue::Binary(b"BinaryValue".to_vec())) => true;
    binary_equals_accepts_base64_text_in_request:
        r#"{"BinaryEquals":{"x:blob":"QmluYXJ5VmFsdWU="}}"#, ctx().with("x:blob", "QmluYXJ5VmFsdWU=") => true;
    binary_equals_different_bytes_is_false:
        r#"{"BinaryEquals":{"x:blob":"QmluYXJ5VmFsdWU="}}"#, ctx().with("x:blob", ContextValue::Binary(b"Other".to_vec())) => false;
    binary_equals_missing_key_is_false:
        r#"{"BinaryEquals":{"x:blob":"QQ=="}}"#, ctx() => false;
    ip_address_matches_ipv4_cidr:
        r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#, ctx().with("aws:SourceIp", ip("203.0.113.42")) => true;
    ip_address_outside_cidr_is_false:
        r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#, ctx().with("aws:SourceIp", ip("198.51.100.1")) => false;
    ip_address_without_prefix_is_a_single_host:
        r#"{"IpAddress":{"aws:SourceIp":"203.0.113.7"}}"#, ctx().with("aws:SourceIp", "203.0.113.7") => true;
    ip_address_matches_ipv6_cidr:
        r#"{"IpAddress":{"aws:SourceIp":"2001:DB8:1234:5678::/64"}}"#, ctx().with("aws:SourceIp", ip("2001:db8:1234:5678::1")) => true;
    ip_address_ipv4_request_does_not_match_ipv6_range:
        r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#, ctx().with("aws:SourceIp", ip("203.0.113.7")) => false;
    ip_address_values_are_ored:
        r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","203.0.113.0/24"]}}"#, ctx().with("aws:SourceIp", ip("10.1.2.3")) => true;
    ip_address_missing_key_is_false:
        r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#, ctx() => false;
    not_ip_address_outside_all_ranges_is_true:
        r#"{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","203.0.113.0/24"]}}"#, ctx().with("aws:SourceIp", ip("198.51.100.1")) => true;
    not_ip_address_inside_a_range_is_false:
        r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#, ctx().with("aws:SourceIp", ip("10.0.0.1")) => false;
    not_ip_address_missing_key_is_true:
        r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#, ctx() => true;
    arn_equals_matches_identical_arn:
        r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:us-east-1:111122223333:topic"}}"#, ctx().with("aws:SourceArn", ContextValue::Arn("arn:aws:sns:us-east-1:111122223333:topic".into())) => true;
    arn_equals_supports_wildcards_like_arn_like:
        r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:*:111122223333:*"}}"#, ctx().with("aws:SourceArn", "arn:aws:sns:eu-west-1:111122223333:topic") => true;
    arn_like_wildcard_does_not_span_colons_in_leading_parts:
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:*:111122223333:topic"}}"#, ctx().with("aws:SourceArn", "arn:aws:sns:us-east-1:111122223333:topic") => false;
    arn_like_matches_each_part_separately:
        r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/Admin*"}}"#, ctx().with("aws:PrincipalArn", "arn:aws:iam::111122223333:role/AdminRole") => true;
    arn_like_is_case_sensitive:
        r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/admin"}}"#, ctx().with("aws:PrincipalArn", "arn:aws:iam::111122223333:role/Admin") => false;
    arn_like_non_arn_request_value_is_false:
        r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/*"}}"#, ctx().with("aws:PrincipalArn", "not-an-arn") => false;
    arn_like_missing_key_is_false:
        r#"{"ArnLike":{"aws:SourceArn":"arn:*:*:*:*:*"}}"#, ctx() => false;
    arn_not_equals_other_arn_is_true:
        r#"{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/Admin"}}"#, ctx().with("aws:PrincipalArn", "arn:aws:iam::111122223333:role/Other") => true;
    arn_not_like_matching_arn_is_false:
        r#"{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/*"}}"#, ctx().with("aws:PrincipalArn", "arn:aws:iam::111122223333:role/Other") => false;
    arn_not_like_missing_key_is_true:
        r#"{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/*"}}"#, ctx() => true;
}

// ---- Null and IfExists ------------------------------------------------------------------------
cases! {
    null_true_with_absent_key_is_true:
        r#"{"Null":{"kms:BypassPolicyLockoutSafetyCheck":"true"}}"#, ctx() => true;
    null_true_with_present_key_is_false:
        r#"{"Null":{"kms:BypassPolicyLockoutSafetyCheck":"true"}}"#, ctx().with("kms:BypassPolicyLockoutSafetyCheck", true) => false;
    null_false_with_present_key_is_true:
        r#"{"Null":{"kms:EncryptionContextKeys":"false"}}"#, ctx().with_multi("kms:EncryptionContextKeys", strs(&["dept"])) => true;
    null_false_with_absent_key_is_false:
        r#"{"Null":{"kms:EncryptionContextKeys":"false"}}"#, ctx() => false;
    null_accepts_json_boolean:
        r#"{"Null":{"aws:TokenIssueTime":true}}"#, ctx() => true;
    null_treats_empty_multivalued_set_as_null:
        r#"{"Null":{"aws:TagKeys":"true"}}"#, ctx().with_multi("aws:TagKeys", vec![]) => true;
    if_exists_missing_key_is_true_for_positive_operator:
        r#"{"StringEqualsIfExists":{"kms:ViaService":"ec2.us-east-1.amazonaws.com"}}"#, ctx() => true;
    if_exists_present_key_is_evaluated_normally:
        r#"{"StringEqualsIfExists":{"kms:ViaService":"ec2.us-east-1.amazonaws.com"}}"#, ctx().with("kms:ViaService", "s3.us-east-1.amazonaws.com") => false;
    if_exists_missing_key_is_true_for_negated_operator:
        r#"{"StringNotEqualsIfExists":{"aws:SourceVpc":"vpc-111"}}"#, ctx() => true;
    if_exists_applies_to_numeric_operators:
        r#"{"NumericLessThanIfExists":{"aws:MultiFactorAuthAge":"3600"}}"#, ctx() => true;
    if_exists_applies_to_date_operators:
        r#"{"DateGreaterThanIfExists":{"aws:TokenIssueTime":"2020-01-01"}}"#, ctx().with("aws:TokenIssueTime", "2019-01-01") => false;
    if_exists_applies_to_ip_operators:
        r#"{"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}"#, ctx() => true;
    if_exists_applies_to_arn_operators:
        r#"{"ArnLikeIfExists":{"aws:SourceArn":"arn:aws:s3:::b"}}"#, ctx() => true;
    if_exists_applies_to_binary_operator:
        r#"{"BinaryEqualsIfExists":{"x:blob":"QQ=="}}"#, ctx() => true;
}

// ---- Set operators (multivalued keys) -----------------------------------------------------------
cases! {
    for_all_values_every_request_value_in_policy_set_is_true:
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env","team"]}}"#, ctx().with_multi("aws:TagKeys", strs(&["env"])) => true;
    for_all_values_one_request_value_outside_policy_set_is_false:
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env","team"]}}"#, ctx().with_multi("aws:TagKeys", strs(&["env","cost"])) => false;
    for_all_values_missing_key_is_true:
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env"]}}"#, ctx() => true;
    for_all_values_empty_set_is_true:
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env"]}}"#, ctx().with_multi("aws:TagKeys", vec![]) => true;
    for_all_values_string_like_applies_wildcards_per_value:
        r#"{"ForAllValues:StringLike":{"aws:TagKeys":"Created*"}}"#, ctx().with_multi("aws:TagKeys", strs(&["CreatedBy","CreatedAt"])) => true;
    for_any_value_one_matching_request_value_is_true:
        r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["env"]}}"#, ctx().with_multi("aws:TagKeys", strs(&["cost","env"])) => true;
    for_any_value_no_matching_request_value_is_false:
        r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["env"]}}"#, ctx().with_multi("aws:TagKeys", strs(&["cost"])) => false;
    for_any_value_missing_key_is_false:
        r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["env"]}}"#, ctx() => false;
    for_any_value_empty_set_is_false:
        r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["env"]}}"#, ctx().with_multi("aws:TagKeys", vec![]) => false;
    for_any_value_if_exists_missing_key_is_true:
        r#"{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":["env"]}}"#, ctx() => true;
    for_all_values_negated_operator_requires_every_value_outside_the_set:
        r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["secret"]}}"#, ctx().with_multi("aws:TagKeys", strs(&["env","secret"])) => false;
    for_all_values_negated_operator_all_outside_is_true:
        r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["secret"]}}"#, ctx().with_multi("aws:TagKeys", strs(&["env","team"])) => true;
    for_any_value_negated_operator_one_value_outside_is_true:
        r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["secret"]}}"#, ctx().with_multi("aws:TagKeys", strs(&["secret","env"])) => true;
    for_any_value_negated_operator_all_inside_is_false:
        r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["secret"]}}"#, ctx().with_multi("aws:TagKeys", strs(&["secret"])) => false;
    for_any_value_applies_to_single_valued_key_as_one_element_set:
        r#"{"ForAnyValue:StringEquals":{"aws:PrincipalTag/team":["blue"]}}"#, ctx().with("aws:PrincipalTag/team", "blue") => true;
    for_all_values_numeric_operator_checks_every_value:
        r#"{"ForAllValues:NumericLessThan":{"x:ns":10}}"#, ctx().with_multi("x:ns", vec![ContextValue::from(1i64), ContextValue::from(12i64)]) => false;
    plain_positive_operator_on_multivalued_key_matches_any_value:
        r#"{"StringEquals":{"aws:CalledVia":"athena.amazonaws.com"}}"#, ctx().with_multi("aws:CalledVia", strs(&["glue.amazonaws.com","athena.amazonaws.com"])) => true;
    plain_negated_operator_on_multivalued_key_requires_no_value_to_match:
        r#"{"StringNotEquals":{"aws:CalledVia":"athena.amazonaws.com"}}"#, ctx().with_multi("aws:CalledVia", strs(&["glue.amazonaws.com","athena.amazonaws.com"])) => false;
}
