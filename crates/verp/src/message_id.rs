//! The Signals `message_id` of one recipient of a spooled message.

/// The Signals `message_id` of recipient `rcpt_index` of spooled message `spool_id`: the 16
/// hex digits of the spool id followed by the recipient's index in at least 4 hex digits.
/// Every event of that recipient carries it, so later stages (tracking, out-of-band bounces
/// attributed by a VERP token) name the same recipient with it.
pub fn recipient_message_id(spool_id: u64, rcpt_index: u32) -> String {
    format!("{spool_id:016x}{rcpt_index:04x}")
}

/// Reverses [`recipient_message_id`]: the spool id and the recipient index.
pub fn parse_recipient_message_id(s: &str) -> Option<(u64, u32)> {
    if s.len() < 20 || !s.is_char_boundary(16) {
        return None;
    }
    let (id, index) = s.split_at(16);
    if !id.bytes().all(|b| b.is_ascii_hexdigit()) || !index.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((
        u64::from_str_radix(id, 16).ok()?,
        u32::from_str_radix(index, 16).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let s = recipient_message_id(0x0123_4567_89ab_cdef, 7);
        assert_eq!(s, "0123456789abcdef0007");
        assert_eq!(
            parse_recipient_message_id(&s),
            Some((0x0123_4567_89ab_cdef, 7))
        );
        let big = recipient_message_id(1, 0x12345);
        assert_eq!(big, "000000000000000112345");
        assert_eq!(parse_recipient_message_id(&big), Some((1, 0x12345)));
        assert_eq!(parse_recipient_message_id("0123456789abcdef"), None);
        assert_eq!(parse_recipient_message_id("0123456789abcdefzzzz"), None);
        assert_eq!(parse_recipient_message_id("+123456789abcdef0000"), None);
    }
}
