//! The X-Job character rule.

/// Makes a campaign name usable as a PowerMTA job id (`X-Job` header value).
///
/// PowerMTA refuses job ids with whitespace or non-printable characters, so the article's
/// helper keeps the printable ASCII characters `!` (33) through `~` (126) and replaces every
/// other character — space (32), DEL (127), and everything from 128 to 255 — with `_`. Each
/// input character becomes exactly one output character, so lengths are preserved and two
/// names that differ only in unsafe characters map to the same id (as they would in
/// PowerMTA's reports). Characters above 255 are treated like those above 127.
pub fn job_id_safe(input: &str) -> String {
    input
        .chars()
        .map(|c| if ('!'..='~').contains(&c) { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_character_from_32_to_255() {
        for code in 32u32..=255 {
            let c = char::from_u32(code).unwrap();
            let out = job_id_safe(&c.to_string());
            let expected = if (33..=126).contains(&code) {
                c.to_string()
            } else {
                "_".to_string()
            };
            assert_eq!(out, expected, "character {code}");
        }
    }

    #[test]
    fn campaign_names() {
        assert_eq!(job_id_safe("Spring Sale 2026"), "Spring_Sale_2026");
        assert_eq!(job_id_safe("café-news"), "caf_-news");
        assert_eq!(job_id_safe("tab\there"), "tab_here");
        assert_eq!(job_id_safe(""), "");
    }
}
