//! How a raw event's JSON is kept in the `events` table: LZ4 (pure Rust, `lz4_flex`) with
//! a fixed dictionary of the field names and values SparkPost events repeat, so a ~600-byte
//! event object takes about a third of that. Events are compressed one by one (a search or
//! a message's history reads single rows), which is why the dictionary matters: without it
//! an event is too short for LZ4 to find much to repeat.
//!
//! The dictionary is part of the database layout: rows written with it can only be read
//! with it, so changing it needs a new `LAYOUT_VERSION` (see `mod.rs`).

use lz4_flex::block::{compress_prepend_size_with_dict, decompress_size_prepended_with_dict};

/// Field names and common values of SparkPost events (spec §2), in roughly the order they
/// appear: LZ4 matches against the end of the dictionary cheapest, so the most frequent
/// strings come last.
const DICTIONARY: &[u8] = br#"{"type":"generation_failure","generation_rejection","policy_rejection","spam_complaint","out_of_band","list_unsubscribe","link_unsubscribe","amp_click","amp_open","amp_initial_open","sms_status","relay_injection","relay_delivery","bounce","delay","injection","delivery","open","initial_open","click","ab_test_id":"","ab_test_version":"","amp_enabled":false,"customer_id":"","delv_method":"esmtp","device_token":"","error_code":"","fbtype":"abuse","geo_ip":{"country":"","region":"","city":"","latitude":0,"longitude":0},"initial_pixel":true,"ip_pool":"","mailbox_provider":"","mailbox_provider_region":"Global","machine":"image-proxy","num_retries":"0","outbound_tls":"1","queue_time":"","raw_rcpt_to":"","rcpt_hash":"","rcpt_meta":{},"rcpt_tags":[],"rcpt_type":"","recv_method":"esmtp","reason":"550 5.1.1 ","raw_reason":"550 5.1.1 ","bounce_class":"10","report_by":"","report_to":"","routing_domain":"","scheduled_time":"","sending_domain":"","sms_coding":"","target_link_name":"","target_link_url":"https://","template_version":"0","transactional":"0","transmission_id":"","user_agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64)","ip_address":"","injection_time":"","msg_size":"","open_tracking":true,"click_tracking":true,"binding":"","binding_group":"","sending_ip":"","subaccount_id":0,"msg_from":"","friendly_from":"","subject":"","campaign_id":"","template_id":"","rcpt_to":"","timestamp":"","message_id":"","event_id":""}"#;

/// The stored form of an event's JSON text.
pub(super) fn pack(json: &str) -> Vec<u8> {
    compress_prepend_size_with_dict(json.as_bytes(), DICTIONARY)
}

/// The JSON text of a stored event, `None` when the bytes are not a packed event (a
/// damaged row).
pub(super) fn unpack(stored: &[u8]) -> Option<String> {
    // The size prefix of a damaged row could ask for gigabytes; no event is larger than an
    // ingest batch.
    let size = u32::from_le_bytes(stored.get(..4)?.try_into().ok()?);
    if size as usize > crate::ingest::MAX_BATCH_BYTES {
        return None;
    }
    let bytes = decompress_size_prepended_with_dict(stored, DICTIONARY).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_size() {
        let json = r#"{"type":"delivery","event_id":"4812739012764551233","message_id":"0000000000a1b2c3","timestamp":"1767225611","injection_time":"1767225608","rcpt_to":"u1234@d17.example","routing_domain":"d17.example","campaign_id":"campaign-12","template_id":"template-12","subject":"Spring offers, week 0","msg_from":"bounces@mail.brand2.example","friendly_from":"news@brand2.example","binding_group":"pool-12","binding":"vmta-30","sending_ip":"10.0.0.30","subaccount_id":2,"recv_method":"esmtp","open_tracking":true,"click_tracking":true,"num_retries":"0","queue_time":"3000","msg_size":"21401"}"#;
        let packed = pack(json);
        assert_eq!(unpack(&packed).as_deref(), Some(json));
        assert!(
            packed.len() * 2 < json.len(),
            "{} of {}",
            packed.len(),
            json.len()
        );
        assert_eq!(unpack(b"\xff\xff\xff\x7fjunk"), None);
        // A size prefix over the largest batch is refused before anything is allocated.
        let mut huge = packed.clone();
        huge[..4].copy_from_slice(&(crate::ingest::MAX_BATCH_BYTES as u32 + 1).to_le_bytes());
        assert_eq!(unpack(&huge), None);
        assert_eq!(unpack(b""), None);
    }
}
