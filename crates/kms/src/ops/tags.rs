//! TagResource, UntagResource, ListResourceTags.

use ferrokms_policy::{Context, ContextValue};

use crate::api::*;
use crate::ids::Accepts;
use crate::model::Tag;
use crate::ops::keys::{merge_tags, validate_new_tags, validate_request_tags};
use crate::ops::{page, require_not_pending_deletion};
use crate::{Caller, Kms, KmsError};

/// The condition keys of tags a request sets: `aws:RequestTag/<key>` for
/// each, and `aws:TagKeys` (TagResource, and CreateKey and ReplicateKey
/// when they are given tags).
pub(crate) fn insert_request_tags(cond: &mut Context, tags: &[Tag]) {
    for t in tags {
        cond.insert(&format!("aws:RequestTag/{}", t.key), t.value.as_str());
    }
    cond.insert_multi(
        "aws:TagKeys",
        tags.iter()
            .map(|t| ContextValue::String(t.key.clone()))
            .collect(),
    );
}

impl Kms {
    /// TagResource: adds tags, replacing the value of keys already present.
    pub fn tag_resource(
        &self,
        caller: &Caller,
        req: TagResourceRequest,
    ) -> Result<Empty, KmsError> {
        // Before the key is looked up, as on AWS; and before the request
        // context is built: two spellings of one key would be one
        // aws:RequestTag/<key> entry.
        validate_request_tags(&req.tags)?;
        let mut cond = Context::new();
        insert_request_tags(&mut cond, &req.tags);
        let key = self.resolve_with(caller, &req.key_id, Accepts::KeyOnly, "TagResource", cond)?;
        self.update_key(&key.record.addr, |r| {
            crate::ops::require_customer_managed(r)?;
            require_not_pending_deletion(r)?;
            validate_new_tags(&r.tags, &req.tags)?;
            r.tags = merge_tags(std::mem::take(&mut r.tags), req.tags);
            Ok(())
        })?;
        Ok(Empty {})
    }

    /// UntagResource: keys that are not present are ignored.
    pub fn untag_resource(
        &self,
        caller: &Caller,
        req: UntagResourceRequest,
    ) -> Result<Empty, KmsError> {
        let mut cond = Context::new();
        cond.insert_multi(
            "aws:TagKeys",
            req.tag_keys
                .iter()
                .map(|k| ContextValue::String(k.clone()))
                .collect(),
        );
        let key =
            self.resolve_with(caller, &req.key_id, Accepts::KeyOnly, "UntagResource", cond)?;
        self.update_key(&key.record.addr, |r| {
            crate::ops::require_customer_managed(r)?;
            require_not_pending_deletion(r)?;
            r.tags.retain(|t| !req.tag_keys.contains(&t.key));
            Ok(())
        })?;
        Ok(Empty {})
    }

    /// ListResourceTags
    pub fn list_resource_tags(
        &self,
        caller: &Caller,
        req: ListResourceTagsRequest,
    ) -> Result<ListResourceTagsResponse, KmsError> {
        let key = self.resolve(caller, &req.key_id, Accepts::KeyOnly, "ListResourceTags")?;
        // Tags page in insertion order: the sort key is the position.
        let indexed: Vec<(usize, crate::model::Tag)> =
            key.record.tags.iter().cloned().enumerate().collect();
        let (tags, next) = page(
            indexed,
            |(i, _)| format!("{i:08}"),
            req.limit,
            50,
            50,
            req.marker.as_deref(),
        )?;
        Ok(ListResourceTagsResponse {
            tags: tags.into_iter().map(|(_, t)| t).collect(),
            truncated: next.is_some(),
            next_marker: next,
        })
    }
}
